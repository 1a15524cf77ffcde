//! The original's `Sequential` graphs and single-step routines, turned into our [`Graph`].
//!
//! ```text
//! graph.schema.steps[i] {id, subroutineId, inputMap, outputMap} ─▶ node `subroutine` i ─▶ i+1
//! rootContext.inputMap {routineInput: contextName}   ─▶ contextName = {{input.routineInput}}
//! step.outputMap {subroutineOutput: contextName}     ─▶ contextName = {{nodes.<step>.<output>}}
//! step.inputMap {contextName: subroutineInput}       ─▶ subroutine input = that template
//! rootContext.outputMap {contextName: routineOutput} ─▶ graph output
//! callDataGenerate {prompt, maxTokens} ─▶ one `llm` node; callDataApi {endpoint, …} ─▶ one `http`
//! ```
//!
//! The original's stored routines do not follow one convention for the maps (in about two thirds
//! of their steps neither side of a map names the subroutine's fields), and its server never ran
//! them, so names are resolved leniently: a context name may be a routine input, a name the root
//! maps an input to, or either side of an earlier step's output map. A name nothing provides
//! becomes `{{context.<name>}}`, which is missing at run time: the run fails there with
//! `MissingOutput` if the called routine's form requires the input (one marked
//! `isRequired: false` is null), instead of refusing the routine; an import lists such a routine
//! in `notRunnable` (`completes.rs`).
//!
//! Over 400 lines only with its tests (the original's routines, case by case); the code is ~300.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use super::graph::{Edge, Effect, Graph, GraphError, Kind, Node, Retry};

pub(crate) fn parse(graph: &Value) -> Result<Graph, GraphError> {
    let schema = graph.get("schema").unwrap_or(&Value::Null);
    let Some(steps) = schema.get("steps").and_then(Value::as_array) else {
        return Err(GraphError::whole("schema.steps must be a list of steps"));
    };
    if steps.is_empty() {
        return Err(GraphError::whole(
            "a Sequential graph needs at least one step",
        ));
    }
    let root = schema.get("rootContext").unwrap_or(&Value::Null);
    // Context name → the template that gives its value.
    let mut context: HashMap<String, String> = HashMap::new();
    for (input, name) in string_map(root.get("inputMap"), "rootContext.inputMap", None)? {
        context.insert(input.clone(), format!("input.{input}"));
        context.insert(name, format!("input.{input}"));
    }
    let mut nodes = Vec::with_capacity(steps.len());
    for (i, step) in steps.iter().enumerate() {
        let id = step
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| GraphError::whole(format!("step {i} has no string id")))?
            .to_owned();
        let version_id = step
            .get("subroutineId")
            .and_then(|v| match v {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .ok_or_else(|| GraphError::at(&id, "a step needs its subroutineId"))?;
        let mut inputs = BTreeMap::new();
        for (name, sub_input) in string_map(step.get("inputMap"), "inputMap", Some(&id))? {
            let source = context
                .get(&name)
                .cloned()
                .unwrap_or_else(|| format!("context.{name}"));
            inputs.insert(sub_input, format!("{{{{{source}}}}}"));
        }
        for (sub_output, name) in string_map(step.get("outputMap"), "outputMap", Some(&id))? {
            let source = format!("nodes.{id}.{sub_output}");
            context.insert(sub_output, source.clone());
            context.insert(name, source);
        }
        let retry = match step.get("retryPolicy") {
            None | Some(Value::Null) => None,
            Some(policy) => Some(
                serde_json::from_value::<Retry>(policy.clone())
                    .map_err(|e| GraphError::at(&id, format!("bad retryPolicy: {e}")))?,
            ),
        };
        nodes.push(Node {
            id,
            kind: Kind::Subroutine { version_id, inputs },
            retry,
            timeout_ms: None,
            skip_condition: None,
        });
    }
    let edges = nodes
        .windows(2)
        .map(|pair| Edge {
            from: pair[0].id.clone(),
            to: pair[1].id.clone(),
        })
        .collect();
    let mut outputs = BTreeMap::new();
    for (name, output) in string_map(root.get("outputMap"), "rootContext.outputMap", None)? {
        if let Some(source) = context.get(&name) {
            outputs.insert(output, source.clone());
        }
    }
    Ok(Graph {
        start: nodes[0].id.clone(),
        nodes,
        edges,
        outputs,
        optional_inputs: Default::default(),
    })
}

/// A `{string: string}` map, or a refusal naming where it is.
fn string_map(
    value: Option<&Value>,
    what: &str,
    node: Option<&str>,
) -> Result<Vec<(String, String)>, GraphError> {
    let refuse = || {
        let reason = format!("{what} must map names to names");
        match node {
            Some(node) => GraphError::at(node, reason),
            None => GraphError::whole(reason),
        }
    };
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| {
                v.as_str()
                    .map(|v| (k.clone(), v.to_owned()))
                    .ok_or_else(refuse)
            })
            .collect(),
        Some(_) => Err(refuse()),
    }
}

/// A routine version without a graph: the original's single-step kinds as one-node graphs.
/// `None` when the sub-type has no executor (Code, Web, InternalAction: the tools issue).
pub(crate) fn single_step(sub_type: &str, config: &Value) -> Result<Graph, GraphError> {
    let node = match sub_type {
        "RoutineGenerate" => {
            let data = call_data(config, "callDataGenerate");
            let prompt = data
                .get("prompt")
                .or_else(|| data.get("promptTemplate"))
                .and_then(Value::as_str)
                .ok_or_else(|| GraphError::at("generate", "callDataGenerate needs a prompt"))?;
            Node {
                id: "generate".into(),
                kind: Kind::Llm {
                    prompt: prompt.to_owned(),
                    model: data.get("model").and_then(Value::as_str).map(str::to_owned),
                    max_tokens: data
                        .get("maxTokens")
                        .and_then(Value::as_u64)
                        .map(|n| n.min(u64::from(u32::MAX)) as u32),
                    outputs: BTreeMap::new(),
                },
                retry: None,
                timeout_ms: None,
                skip_condition: None,
            }
        }
        "RoutineApi" => {
            let data = call_data(config, "callDataApi");
            let url = data
                .get("endpoint")
                .and_then(Value::as_str)
                .filter(|u| !u.is_empty())
                .ok_or_else(|| GraphError::at("api", "callDataApi needs an endpoint"))?;
            let headers = data
                .get("headers")
                .and_then(Value::as_object)
                .map(|h| {
                    h.iter()
                        .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                        .collect()
                })
                .unwrap_or_default();
            Node {
                id: "api".into(),
                kind: Kind::Http {
                    method: data
                        .get("method")
                        .and_then(Value::as_str)
                        .unwrap_or("GET")
                        .to_owned(),
                    url: url.to_owned(),
                    headers,
                    body: data.get("body").cloned(),
                    outputs: BTreeMap::new(),
                    // The original's Api routines say nothing; a GET is safe to repeat, anything
                    // else is treated as a call that must not be repeated blindly.
                    effect: if data.get("method").and_then(Value::as_str).unwrap_or("GET") == "GET"
                    {
                        Effect::Idempotent
                    } else {
                        Effect::NonIdempotent
                    },
                },
                retry: None,
                timeout_ms: data.get("timeoutMs").and_then(Value::as_u64),
                skip_condition: None,
            }
        }
        "RoutineInternalAction" => {
            // The original's callDataAction: {toolName, inputTemplate (JSON text with
            // {{input.x}} templates), allowedContexts, outputMapping {name: "a.b[0].c"}}.
            let data = call_data(config, "callDataAction");
            let tool = data
                .get("toolName")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
                .ok_or_else(|| GraphError::at("action", "callDataAction needs a toolName"))?;
            let input = match data.get("inputTemplate") {
                None | Some(Value::Null) => None,
                Some(Value::String(text)) => Some(serde_json::from_str(text).map_err(|e| {
                    GraphError::at(
                        "action",
                        format!("callDataAction.inputTemplate is not JSON: {e}"),
                    )
                })?),
                Some(other) => Some(other.clone()),
            };
            Node {
                id: "action".into(),
                kind: Kind::Action {
                    tool: tool.to_owned(),
                    input,
                    outputs: output_mapping(data.get("outputMapping"), "action")?,
                },
                retry: None,
                timeout_ms: None,
                skip_condition: None,
            }
        }
        "RoutineCode" => {
            // The original's callDataCode: {inputTemplate, outputMappings: [{schemaIndex,
            // mapping}]}, its script in a linked code version. There are no code resources
            // here: the script is `code` beside them (ADR 23).
            let data = call_data(config, "callDataCode");
            let code = data
                .get("code")
                .and_then(Value::as_str)
                .filter(|c| !c.trim().is_empty())
                .ok_or_else(|| {
                    GraphError::at(
                        "code",
                        "callDataCode needs its script as `code` (a function body)",
                    )
                })?;
            let mut outputs = BTreeMap::new();
            for mapping in data
                .get("outputMappings")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                outputs.extend(output_mapping(mapping.get("mapping"), "code")?);
            }
            Node {
                id: "code".into(),
                kind: Kind::Code {
                    code: code.to_owned(),
                    input: data.get("inputTemplate").cloned().filter(|v| !v.is_null()),
                    outputs,
                },
                retry: None,
                timeout_ms: data.get("timeoutMs").and_then(Value::as_u64),
                skip_condition: None,
            }
        }
        "RoutineWeb" => {
            return Err(GraphError::Unavailable {
                node: "routine".into(),
                kind: sub_type.to_owned(),
            });
        }
        other => {
            return Err(GraphError::whole(format!(
                "a routine without a graph has a single-step sub-type (RoutineGenerate, RoutineApi, RoutineCode, RoutineInternalAction), not {other:?}"
            )));
        }
    };
    Ok(Graph {
        start: node.id.clone(),
        nodes: vec![node],
        edges: Vec::new(),
        outputs: BTreeMap::new(),
        optional_inputs: Default::default(),
    })
}

/// An output mapping of the original (`{name: "a.b[0].c"}`, paths into the result) as our
/// declared outputs (`{name: "$.a.b.0.c"}`).
fn output_mapping(
    value: Option<&Value>,
    node: &str,
) -> Result<BTreeMap<String, String>, GraphError> {
    Ok(string_map(value, "outputMapping", Some(node))?
        .into_iter()
        .map(|(name, path)| {
            let path = path.replace('[', ".").replace(']', "");
            let path = match path.strip_prefix('$') {
                Some(_) => path,
                None => format!("$.{}", path.trim_start_matches('.')),
            };
            (name, path)
        })
        .collect())
}

/// `config.<key>.schema` (the original wraps call data as `{__version, schema}`), or the bare
/// object.
fn call_data<'a>(config: &'a Value, key: &str) -> &'a Value {
    let data = config.get(key).unwrap_or(&Value::Null);
    data.get("schema").unwrap_or(data)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn steps_become_subroutine_nodes_wired_through_the_context() {
        let graph = parse(&json!({"__type": "Sequential", "schema": {
            "steps": [
                {"id": "s1", "subroutineId": "11", "inputMap": {"goals": "habitGoals"},
                 "outputMap": {"response": "advice"}},
                {"id": "s2", "subroutineId": 12, "inputMap": {"advice": "text", "ghost": "x"},
                 "outputMap": {}}
            ],
            "rootContext": {"inputMap": {"userGoals": "goals"}, "outputMap": {"advice": "result"}}
        }}))
        .unwrap();
        assert_eq!(graph.start, "s1");
        assert_eq!(
            graph.edges,
            vec![Edge {
                from: "s1".into(),
                to: "s2".into()
            }]
        );
        let inputs = |i: usize| match &graph.nodes[i].kind {
            Kind::Subroutine { inputs, version_id } => (version_id.clone(), inputs.clone()),
            other => panic!("{other:?}"),
        };
        let (version, first) = inputs(0);
        assert_eq!(version, "11");
        assert_eq!(first["habitGoals"], "{{input.userGoals}}");
        let (version, second) = inputs(1);
        assert_eq!(version, "12", "numeric ids are read too");
        assert_eq!(second["text"], "{{nodes.s1.response}}");
        assert_eq!(
            second["x"], "{{context.ghost}}",
            "unknown names are missing at run time"
        );
        assert_eq!(graph.outputs["result"], "nodes.s1.response");
    }

    #[test]
    fn single_step_kinds_are_one_node_graphs() {
        let graph = single_step(
            "RoutineGenerate",
            &json!({"callDataGenerate": {"schema": {"prompt": "Hi {{input.name}}", "maxTokens": 9}}}),
        )
        .unwrap();
        assert!(matches!(
            &graph.nodes[0].kind,
            Kind::Llm { prompt, max_tokens: Some(9), .. } if prompt == "Hi {{input.name}}"
        ));
        let graph = single_step(
            "RoutineApi",
            &json!({"callDataApi": {"schema": {"endpoint": "https://x.test/a", "method": "POST"}}}),
        )
        .unwrap();
        assert!(matches!(
            &graph.nodes[0].kind,
            Kind::Http {
                effect: Effect::NonIdempotent,
                ..
            }
        ));
        assert!(matches!(
            single_step("RoutineWeb", &json!({})),
            Err(GraphError::Unavailable { .. })
        ));
        // The original's action call data: a JSON text template and dotted output paths.
        let graph = single_step(
            "RoutineInternalAction",
            &json!({"callDataAction": {"schema": {
                "toolName": "resource_manage",
                "inputTemplate": "{\"op\": \"find\", \"resourceType\": \"{{input.kind}}\"}",
                "outputMapping": {"first": "routines[0].id", "all": "$"}}}}),
        )
        .unwrap();
        let Kind::Action {
            tool,
            input,
            outputs,
        } = &graph.nodes[0].kind
        else {
            panic!("not an action: {:?}", graph.nodes[0].kind)
        };
        assert_eq!(tool, "resource_manage");
        assert_eq!(
            input,
            &Some(json!({"op": "find", "resourceType": "{{input.kind}}"}))
        );
        assert_eq!(outputs["first"], "$.routines.0.id");
        assert_eq!(outputs["all"], "$");
        assert!(matches!(
            single_step(
                "RoutineInternalAction",
                &json!({"callDataAction": {"schema": {"toolName": "x", "inputTemplate": "{"}}})
            ),
            Err(GraphError::Invalid { .. })
        ));
        let graph = single_step(
            "RoutineCode",
            &json!({"callDataCode": {"schema": {"code": "return {n: input.n + 1};",
                "inputTemplate": {"n": "{{input.n}}"},
                "outputMappings": [{"schemaIndex": 0, "mapping": {"next": "n"}}]}}}),
        )
        .unwrap();
        assert!(
            matches!(&graph.nodes[0].kind, Kind::Code { outputs, .. } if outputs["next"] == "$.n")
        );
        assert!(matches!(
            single_step("RoutineCode", &json!({"callDataCode": {"schema": {}}})),
            Err(GraphError::Invalid { .. })
        ));
    }
}
