//! Whether stored routines can complete as they are, known before running them (an import says
//! so in `notRunnable`): a version that cannot run makes every version calling it unable to
//! complete, and so does a value nothing provides (`{{context.<name>}}`, a Sequential name no
//! input or earlier step gives) — unless it feeds an input the called routine's form marks
//! optional, which is then null.
//!
//! ```text
//! version id ─▶ its graph, or why it cannot run ─▶ blockers: repeated until nothing changes
//!   (a call into a blocked version blocks its caller) ─▶ version id ─▶ why it cannot complete
//! ```

use std::collections::{BTreeMap, HashMap};

use super::check::templates_in;
use super::graph::{Graph, Kind};

/// Why each version that loads cannot complete as stored. `graphs` holds what is known: each
/// version's graph, or why it cannot run at all; a call to a version outside it is not judged.
pub(crate) fn blockers(
    graphs: &HashMap<String, Result<Graph, String>>,
) -> BTreeMap<String, String> {
    let mut blocked: BTreeMap<String, String> = BTreeMap::new();
    for (id, graph) in graphs {
        if let Ok(graph) = graph
            && let Some(why) = unprovided(graph, graphs)
        {
            blocked.insert(id.clone(), why);
        }
    }
    // A call into a version that cannot run (or complete) blocks the caller; callers of callers
    // on the next round, until nothing changes.
    loop {
        let mut found = Vec::new();
        for (id, graph) in graphs {
            let Ok(graph) = graph else { continue };
            if blocked.contains_key(id) {
                continue;
            }
            for node in &graph.nodes {
                let Kind::Subroutine { version_id, .. } = &node.kind else {
                    continue;
                };
                let why = match graphs.get(version_id) {
                    Some(Err(why)) => Some(why.as_str()),
                    _ => blocked.get(version_id).map(String::as_str),
                };
                if let Some(why) = why {
                    let message = format!(
                        "node {:?}: calls routine version {version_id}, which cannot run: {why}",
                        node.id
                    );
                    found.push((id.clone(), message));
                    break;
                }
            }
        }
        if found.is_empty() {
            return blocked;
        }
        blocked.extend(found);
    }
}

/// A value the graph needs that nothing provides: a `{{context.<name>}}` template, except as a
/// called routine's optional input.
fn unprovided(graph: &Graph, graphs: &HashMap<String, Result<Graph, String>>) -> Option<String> {
    let unprovided = |template: &str| template.starts_with("context.");
    for node in &graph.nodes {
        if let Kind::Subroutine { version_id, inputs } = &node.kind {
            let optional = match graphs.get(version_id) {
                Some(Ok(child)) => Some(&child.optional_inputs),
                // Not known here: the call is not judged.
                _ => None,
            };
            for (name, template) in inputs {
                let value = serde_json::Value::String(template.clone());
                let missing = templates_in(&value).into_iter().find(|t| unprovided(t));
                if let (Some(missing), Some(optional)) = (missing, optional)
                    && !optional.contains(name)
                {
                    let name_given = missing.trim_start_matches("context.");
                    return Some(format!(
                        "node {:?}: input {name:?} comes from {name_given:?}, which nothing provides",
                        node.id
                    ));
                }
            }
            continue;
        }
        let value = serde_json::to_value(node).unwrap_or_default();
        if let Some(missing) = templates_in(&value).into_iter().find(|t| unprovided(t)) {
            return Some(format!(
                "node {:?}: {{{{{missing}}}}} names nothing that provides it",
                node.id
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn sequential(calls: &str, input: &str) -> Graph {
        super::super::sequential::parse(&json!({"__type": "Sequential", "schema": {
            "steps": [{"id": "s1", "subroutineId": calls, "inputMap": {input: "x"}}],
            "rootContext": {"inputMap": {"given": "given"}}
        }}))
        .unwrap()
    }

    fn generate(optional: &[&str]) -> Graph {
        let mut graph = super::super::sequential::single_step(
            "RoutineGenerate",
            &json!({"callDataGenerate": {"prompt": "{{input.x}}"}}),
        )
        .unwrap();
        graph.optional_inputs = optional.iter().map(|s| (*s).to_owned()).collect();
        graph
    }

    #[test]
    fn a_call_into_what_cannot_run_blocks_its_callers_and_theirs() {
        let graphs = HashMap::from([
            ("top".to_owned(), Ok(sequential("mid", "given"))),
            ("mid".to_owned(), Ok(sequential("bad", "given"))),
            ("bad".to_owned(), Err("needs a prompt".to_owned())),
            ("fine".to_owned(), Ok(sequential("ok", "given"))),
            ("ok".to_owned(), Ok(generate(&[]))),
            ("outside".to_owned(), Ok(sequential("9999", "ghost"))),
        ]);
        let blocked = blockers(&graphs);
        assert_eq!(
            blocked.keys().collect::<Vec<_>>(),
            ["mid", "top"],
            "{blocked:?}"
        );
        assert!(blocked["top"].contains("calls routine version mid"));
        assert!(blocked["mid"].ends_with("which cannot run: needs a prompt"));
    }

    #[test]
    fn a_name_nothing_provides_blocks_unless_the_called_input_is_optional() {
        let graphs = HashMap::from([
            ("needs".to_owned(), Ok(sequential("required", "ghost"))),
            ("required".to_owned(), Ok(generate(&[]))),
            ("may".to_owned(), Ok(sequential("optional", "ghost"))),
            ("optional".to_owned(), Ok(generate(&["x"]))),
        ]);
        let blocked = blockers(&graphs);
        assert_eq!(blocked.keys().collect::<Vec<_>>(), ["needs"]);
        assert_eq!(
            blocked["needs"],
            "node \"s1\": input \"x\" comes from \"ghost\", which nothing provides"
        );
    }
}
