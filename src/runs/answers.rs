//! The keys a run's answers take (`POST /run/{id}/decision`): one per `approval` or `input`
//! node its snapshot can reach, as the executor forms them (`executor/waits.rs`): the node's
//! id, after `<node>/` for each `subroutine` step it sits inside. Parallel branches and map
//! bodies add nothing (waits are refused there at start).
//!
//! ```text
//! snapshot {graph, subroutines} ─▶ approval, input ─▶ <prefix><id>
//!                                ─▶ subroutine s ─▶ its version's graph with <prefix>s/
//! ```

use std::collections::{BTreeSet, HashMap};

use serde::Deserialize;
use serde_json::Value;

use crate::routines::graph::{Graph, Kind};

/// How deep the keys are looked for: far past `runs.max_subroutine_depth` (at most 32), and a
/// bound if a stored snapshot called itself.
const MOST_LEVELS: usize = 64;

#[derive(serde::Deserialize)]
struct Snapshot {
    graph: Graph,
    #[serde(default)]
    subroutines: HashMap<String, Graph>,
}

/// Every key an answer to the run of `snapshot` may have, sorted; none when it does not parse.
pub(crate) fn decision_keys(snapshot: &Value) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    let Ok(snapshot) = Snapshot::deserialize(snapshot) else {
        return keys;
    };
    let mut todo: Vec<(&Graph, String, usize)> = vec![(&snapshot.graph, String::new(), 0)];
    while let Some((graph, prefix, level)) = todo.pop() {
        for node in &graph.nodes {
            match &node.kind {
                Kind::Approval { .. } | Kind::Input { .. } => {
                    keys.insert(format!("{prefix}{}", node.id));
                }
                Kind::Subroutine { version_id, .. } if level < MOST_LEVELS => {
                    if let Some(child) = snapshot.subroutines.get(version_id) {
                        todo.push((child, format!("{prefix}{}/", node.id), level + 1));
                    }
                }
                _ => {}
            }
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn approvals_and_inputs_give_keys_prefixed_by_the_steps_calling_them() {
        let snapshot = json!({
            "graph": {"start": "ok", "nodes": [
                {"id": "ok", "kind": "approval", "message": "Go?"},
                {"id": "w", "kind": "wait", "durationMs": 1},
                {"id": "call", "kind": "subroutine", "versionId": "7"}]},
            "subroutines": {
                "7": {"start": "name", "nodes": [
                    {"id": "name", "kind": "input", "fields": ["name"]},
                    {"id": "again", "kind": "subroutine", "versionId": "8"}]},
                "8": {"start": "sure", "nodes": [{"id": "sure", "kind": "approval", "message": ""}]}
            }
        });
        let keys: Vec<String> = decision_keys(&snapshot).into_iter().collect();
        assert_eq!(keys, ["call/again/sure", "call/name", "ok"]);
    }

    #[test]
    fn a_snapshot_calling_itself_ends_and_one_that_does_not_parse_has_no_keys() {
        let snapshot = json!({
            "graph": {"start": "s", "nodes": [{"id": "s", "kind": "subroutine", "versionId": "1"}]},
            "subroutines": {"1": {"start": "s", "nodes": [
                {"id": "s", "kind": "subroutine", "versionId": "1"},
                {"id": "a", "kind": "approval", "message": ""}]}}
        });
        let keys = decision_keys(&snapshot);
        assert_eq!(keys.len(), MOST_LEVELS);
        assert!(keys.contains("s/a") && keys.contains("s/s/a"));
        assert!(decision_keys(&json!({"graph": 3})).is_empty());
        assert!(decision_keys(&Value::Null).is_empty());
    }
}
