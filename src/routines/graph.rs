//! A routine's graph, parsed and checked: `Graph-1.0` (nodes inline) and the original's
//! `Sequential` (steps calling other routine versions, `sequential.rs`) both become one [`Graph`].
//!
//! ```text
//! config JSON ─▶ parse (shape, kinds) ─▶ check (ids, edges, reachability, cycles, joins,
//!                                               templates, size) ─▶ Graph | GraphError
//! ```
//!
//! Every refusal names the node and the reason (`InvalidRoutineGraph`); a graph type we do not
//! know is `GraphTypeUnsupported`; a kind whose executor is not built yet (`code`, `action`) is
//! `NodeKindUnavailable`. Checks that need the database (does a subroutine version exist) are
//! left to the caller, which gets the referenced version ids from [`Graph::subroutines`].

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Why a graph was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    #[error("graph type {0:?} is not supported (\"Sequential\" or \"Graph-1.0\")")]
    Unsupported(String),
    #[error("{}", match .node { Some(n) => format!("node {n:?}: {}", .reason), None => .reason.clone() })]
    Invalid {
        node: Option<String>,
        reason: String,
    },
    #[error("node {node:?}: kind {kind:?} is not available yet")]
    Unavailable { node: String, kind: String },
}

impl GraphError {
    pub(crate) fn at(node: &str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            node: Some(node.to_owned()),
            reason: reason.into(),
        }
    }

    pub(crate) fn whole(reason: impl Into<String>) -> Self {
        Self::Invalid {
            node: None,
            reason: reason.into(),
        }
    }
}

/// Retry policy of a node (or the run's default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Retry {
    pub max_attempts: u32,
    #[serde(default)]
    pub backoff_ms: u64,
}

/// A condition over the run's context: `{path, op, value}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Condition {
    pub path: String,
    pub op: Op,
    #[serde(default)]
    pub value: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Gt,
    In,
    Exists,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Branch {
    pub when: Condition,
    pub to: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Effect {
    Idempotent,
    NonIdempotent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WaitFor {
    All,
    Any,
}

/// What a node does. Field names are the JSON's (camelCase).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Kind {
    #[serde(rename_all = "camelCase")]
    Llm {
        prompt: String,
        #[serde(default)]
        model: Option<String>,
        #[serde(default)]
        max_tokens: Option<u32>,
        /// Output name → JSON path into the answer (`$.text` is the whole answer).
        #[serde(default)]
        outputs: BTreeMap<String, String>,
    },
    #[serde(rename_all = "camelCase")]
    Http {
        #[serde(default = "get")]
        method: String,
        url: String,
        #[serde(default)]
        headers: BTreeMap<String, String>,
        #[serde(default)]
        body: Option<Value>,
        #[serde(default)]
        outputs: BTreeMap<String, String>,
        effect: Effect,
    },
    #[serde(rename_all = "camelCase")]
    Decision {
        #[serde(default)]
        branches: Vec<Branch>,
        default: String,
    },
    Parallel {
        branches: Vec<String>,
        join: String,
    },
    #[serde(rename_all = "camelCase")]
    Join {
        #[serde(default = "all")]
        wait_for: WaitFor,
    },
    #[serde(rename_all = "camelCase")]
    Map {
        /// A path to a list in the context.
        items: String,
        node: String,
        #[serde(default)]
        max_concurrency: Option<u32>,
        #[serde(default)]
        max_items: Option<u32>,
    },
    #[serde(rename_all = "camelCase")]
    Wait {
        #[serde(default)]
        duration_ms: Option<u64>,
        #[serde(default)]
        until: Option<String>,
    },
    Input {
        /// The form's field names: the node's outputs.
        fields: Vec<String>,
    },
    Approval {
        #[serde(default)]
        message: String,
    },
    #[serde(rename_all = "camelCase")]
    Subroutine {
        version_id: String,
        /// Input name of the child → template over this run's context.
        #[serde(default)]
        inputs: BTreeMap<String, String>,
    },
}

fn get() -> String {
    "GET".into()
}

fn all() -> WaitFor {
    WaitFor::All
}

impl Kind {
    pub fn name(&self) -> &'static str {
        match self {
            Kind::Llm { .. } => "llm",
            Kind::Http { .. } => "http",
            Kind::Decision { .. } => "decision",
            Kind::Parallel { .. } => "parallel",
            Kind::Join { .. } => "join",
            Kind::Map { .. } => "map",
            Kind::Wait { .. } => "wait",
            Kind::Input { .. } => "input",
            Kind::Approval { .. } => "approval",
            Kind::Subroutine { .. } => "subroutine",
        }
    }

    /// The outputs later nodes may name; `None`: not known before it runs (a subroutine's).
    fn outputs(&self) -> Option<HashSet<String>> {
        let names = |keys: &mut dyn Iterator<Item = &String>| keys.cloned().collect();
        Some(match self {
            Kind::Llm { outputs, .. } | Kind::Http { outputs, .. } => {
                let mut set: HashSet<String> = names(&mut outputs.keys());
                set.insert("response".into());
                set
            }
            Kind::Decision { .. } => HashSet::from(["branch".to_owned()]),
            Kind::Map { .. } => HashSet::from(["items".to_owned()]),
            Kind::Input { fields } => names(&mut fields.iter()),
            Kind::Approval { .. } => HashSet::from(["approved".to_owned(), "comment".to_owned()]),
            Kind::Parallel { .. } | Kind::Join { .. } | Kind::Wait { .. } => HashSet::new(),
            Kind::Subroutine { .. } => return None,
        })
    }
}

/// A node: its kind plus what every node may have.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Node {
    pub id: String,
    #[serde(flatten)]
    pub kind: Kind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<Retry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_condition: Option<Condition>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Edge {
    pub from: String,
    pub to: String,
}

/// A checked graph, as a run's snapshot stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Graph {
    pub start: String,
    pub nodes: Vec<Node>,
    #[serde(default)]
    pub edges: Vec<Edge>,
    /// Run output name → path into the context (`nodes.<id>.<output>`).
    #[serde(default)]
    pub outputs: BTreeMap<String, String>,
}

/// Limits of a graph check.
#[derive(Debug, Clone, Copy)]
pub struct GraphLimits {
    pub max_nodes: usize,
}

impl Graph {
    pub fn node(&self, id: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// The nodes that follow `id` on plain edges.
    pub fn next_of<'a>(&'a self, id: &str) -> Vec<&'a str> {
        self.edges
            .iter()
            .filter(|e| e.from == id)
            .map(|e| e.to.as_str())
            .collect()
    }

    /// Routine versions the graph calls (to check they exist).
    pub fn subroutines(&self) -> Vec<&str> {
        self.nodes
            .iter()
            .filter_map(|n| match &n.kind {
                Kind::Subroutine { version_id, .. } => Some(version_id.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Every node a node leads to: edges, branches, a parallel's branches and join, a map's body.
    fn successors<'a>(&'a self, node: &'a Node) -> Vec<&'a str> {
        let mut next = self.next_of(&node.id);
        match &node.kind {
            Kind::Decision {
                branches, default, ..
            } => {
                next.extend(branches.iter().map(|b| b.to.as_str()));
                next.push(default);
            }
            Kind::Parallel { branches, join } => {
                next.extend(branches.iter().map(String::as_str));
                next.push(join);
            }
            Kind::Map { node, .. } => next.push(node),
            _ => {}
        }
        next
    }
}

/// Parses and checks a routine's `config.graph`.
pub fn parse(graph: &Value, limits: GraphLimits) -> Result<Graph, GraphError> {
    let kind = graph.get("__type").and_then(Value::as_str).unwrap_or("");
    let graph = match kind {
        "Graph-1.0" => parse_graph_1(graph.get("schema").unwrap_or(&Value::Null))?,
        "Sequential" => super::sequential::parse(graph)?,
        other => return Err(GraphError::Unsupported(other.to_owned())),
    };
    check(&graph, limits)?;
    Ok(graph)
}

fn parse_graph_1(schema: &Value) -> Result<Graph, GraphError> {
    let Some(raw_nodes) = schema.get("nodes").and_then(Value::as_array) else {
        return Err(GraphError::whole("schema.nodes must be a list of nodes"));
    };
    let mut nodes = Vec::with_capacity(raw_nodes.len());
    for (i, raw) in raw_nodes.iter().enumerate() {
        let id = raw
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| GraphError::whole(format!("node {i} has no string id")))?;
        let kind = raw.get("kind").and_then(Value::as_str).unwrap_or("");
        match kind {
            "code" | "action" => {
                return Err(GraphError::Unavailable {
                    node: id.to_owned(),
                    kind: kind.to_owned(),
                });
            }
            "llm" | "http" | "decision" | "parallel" | "join" | "map" | "wait" | "input"
            | "approval" | "subroutine" => {}
            other => return Err(GraphError::at(id, format!("unknown kind {other:?}"))),
        }
        let node: Node = serde_json::from_value(raw.clone())
            .map_err(|e| GraphError::at(id, format!("bad {kind} node: {e}")))?;
        nodes.push(node);
    }
    let start = match schema.get("start") {
        Some(Value::String(start)) => start.clone(),
        None => nodes
            .first()
            .map(|n| n.id.clone())
            .ok_or_else(|| GraphError::whole("a graph needs at least one node"))?,
        Some(_) => return Err(GraphError::whole("start must be a node id")),
    };
    let edges = match schema.get("edges") {
        None => Vec::new(),
        Some(edges) => serde_json::from_value(edges.clone())
            .map_err(|e| GraphError::whole(format!("bad edges: {e}")))?,
    };
    let outputs = match schema.get("outputs") {
        None => BTreeMap::new(),
        Some(outputs) => serde_json::from_value(outputs.clone())
            .map_err(|e| GraphError::whole(format!("bad outputs: {e}")))?,
    };
    Ok(Graph {
        start,
        nodes,
        edges,
        outputs,
    })
}

/// Everything that can be checked without the database.
pub(crate) fn check(graph: &Graph, limits: GraphLimits) -> Result<(), GraphError> {
    if graph.nodes.is_empty() {
        return Err(GraphError::whole("a graph needs at least one node"));
    }
    if graph.nodes.len() > limits.max_nodes {
        return Err(GraphError::whole(format!(
            "{} nodes; at most {} are allowed",
            graph.nodes.len(),
            limits.max_nodes
        )));
    }
    let mut by_id: HashMap<&str, &Node> = HashMap::new();
    for node in &graph.nodes {
        if node.id.is_empty() {
            return Err(GraphError::whole("a node has an empty id"));
        }
        if by_id.insert(&node.id, node).is_some() {
            return Err(GraphError::at(&node.id, "duplicate id"));
        }
        if let Some(retry) = node.retry
            && retry.max_attempts == 0
        {
            return Err(GraphError::at(
                &node.id,
                "retry.maxAttempts must be at least 1",
            ));
        }
    }
    if !by_id.contains_key(graph.start.as_str()) {
        return Err(GraphError::whole(format!(
            "start names a missing node {:?}",
            graph.start
        )));
    }
    for edge in &graph.edges {
        if !by_id.contains_key(edge.from.as_str()) {
            return Err(GraphError::at(
                &edge.from,
                "an edge starts at a missing node",
            ));
        }
        if !by_id.contains_key(edge.to.as_str()) {
            return Err(GraphError::at(
                &edge.from,
                format!("an edge leads to a missing node {:?}", edge.to),
            ));
        }
    }
    for node in &graph.nodes {
        let plain = graph.next_of(&node.id).len();
        match node.kind {
            Kind::Decision { .. } if plain > 0 => {
                return Err(GraphError::at(
                    &node.id,
                    "a decision's next nodes are its branches and default, not edges",
                ));
            }
            Kind::Decision { .. } | Kind::Parallel { .. } => {}
            _ if plain > 1 => {
                return Err(GraphError::at(
                    &node.id,
                    "more than one next node (branch with a decision or a parallel)",
                ));
            }
            _ => {}
        }
        for to in graph.successors(node) {
            if !by_id.contains_key(to) {
                return Err(GraphError::at(
                    &node.id,
                    format!("leads to a missing node {to:?}"),
                ));
            }
        }
        match &node.kind {
            Kind::Parallel { join, branches } => {
                if !matches!(by_id[join.as_str()].kind, Kind::Join { .. }) {
                    return Err(GraphError::at(&node.id, format!("{join:?} is not a join")));
                }
                if branches.is_empty() {
                    return Err(GraphError::at(&node.id, "a parallel needs branches"));
                }
            }
            Kind::Wait { duration_ms, until } => {
                if duration_ms.is_none() == until.is_none() {
                    return Err(GraphError::at(&node.id, "a wait has durationMs or until"));
                }
                if let Some(until) = until
                    && chrono::DateTime::parse_from_rfc3339(until).is_err()
                {
                    return Err(GraphError::at(&node.id, "until is an RFC 3339 time"));
                }
            }
            Kind::Http { url, method, .. } => {
                let method = method.to_ascii_uppercase();
                if !["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"].contains(&method.as_str()) {
                    return Err(GraphError::at(
                        &node.id,
                        format!("unknown method {method:?}"),
                    ));
                }
                if !url.contains("{{") && reqwest::Url::parse(url).is_err() {
                    return Err(GraphError::at(&node.id, format!("bad url {url:?}")));
                }
            }
            _ => {}
        }
    }
    // Every join belongs to a parallel.
    let joins: HashSet<&str> = graph
        .nodes
        .iter()
        .filter_map(|n| match &n.kind {
            Kind::Parallel { join, .. } => Some(join.as_str()),
            _ => None,
        })
        .collect();
    for node in &graph.nodes {
        if matches!(node.kind, Kind::Join { .. }) && !joins.contains(node.id.as_str()) {
            return Err(GraphError::at(&node.id, "a join without its parallel"));
        }
    }
    check_reachable_and_acyclic(graph, &by_id)?;
    check_templates(graph, &by_id)?;
    Ok(())
}

fn check_reachable_and_acyclic(
    graph: &Graph,
    by_id: &HashMap<&str, &Node>,
) -> Result<(), GraphError> {
    // Depth-first from the start; a node met again while on the stack closes a cycle.
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        OnStack,
        Done,
    }
    let mut marks: HashMap<&str, Mark> = HashMap::new();
    let mut stack: Vec<(&str, Vec<&str>)> = Vec::new();
    let start = graph.start.as_str();
    marks.insert(start, Mark::OnStack);
    stack.push((start, graph.successors(by_id[start])));
    while let Some((id, next)) = stack.last_mut() {
        let id = *id;
        match next.pop() {
            Some(to) => match marks.get(to) {
                Some(Mark::OnStack) => {
                    return Err(GraphError::at(
                        id,
                        format!("leads back to {to:?}: a cycle (loops go through map)"),
                    ));
                }
                Some(Mark::Done) => {}
                None => {
                    marks.insert(to, Mark::OnStack);
                    stack.push((to, graph.successors(by_id[to])));
                }
            },
            None => {
                marks.insert(id, Mark::Done);
                stack.pop();
            }
        }
    }
    if let Some(node) = graph
        .nodes
        .iter()
        .find(|n| !marks.contains_key(n.id.as_str()))
    {
        return Err(GraphError::at(&node.id, "unreachable from the start"));
    }
    Ok(())
}

/// `{{nodes.<id>.<output>}}` in any string of a node, and `nodes.<id>.<output>` paths in
/// conditions, map items and the graph's outputs, must name a node and one of its outputs.
fn check_templates(graph: &Graph, by_id: &HashMap<&str, &Node>) -> Result<(), GraphError> {
    let check_ref = |at: &str, path: &str| -> Result<(), GraphError> {
        let mut parts = path.split('.');
        if parts.next() != Some("nodes") {
            return Ok(()); // input.x, item, index: known only at run time
        }
        let (Some(id), output) = (parts.next(), parts.next()) else {
            return Err(GraphError::at(at, format!("{path:?} names no node")));
        };
        let Some(target) = by_id.get(id) else {
            return Err(GraphError::at(
                at,
                format!("{path:?} names an unknown node {id:?}"),
            ));
        };
        if let (Some(output), Some(outputs)) = (output, target.kind.outputs())
            && !outputs.contains(output)
        {
            return Err(GraphError::at(
                at,
                format!("{path:?}: node {id:?} has no output {output:?}"),
            ));
        }
        Ok(())
    };
    for node in &graph.nodes {
        let value = serde_json::to_value(node).unwrap_or(Value::Null);
        for template in templates_in(&value) {
            check_ref(&node.id, &template)?;
        }
        let mut paths: Vec<&str> = Vec::new();
        match &node.kind {
            Kind::Decision { branches, .. } => {
                paths.extend(branches.iter().map(|b| b.when.path.as_str()))
            }
            Kind::Map { items, .. } => paths.push(items),
            _ => {}
        }
        if let Some(skip) = &node.skip_condition {
            paths.push(&skip.path);
        }
        for path in paths {
            check_ref(&node.id, path)?;
        }
    }
    for path in graph.outputs.values() {
        check_ref("outputs", path)?;
    }
    Ok(())
}

/// The insides of every `{{…}}` in the strings of a JSON value.
pub fn templates_in(value: &Value) -> Vec<String> {
    let mut found = Vec::new();
    let mut visit = vec![value];
    while let Some(value) = visit.pop() {
        match value {
            Value::String(s) => {
                let mut rest = s.as_str();
                while let Some(open) = rest.find("{{") {
                    let after = &rest[open + 2..];
                    let Some(close) = after.find("}}") else { break };
                    found.push(after[..close].trim().to_owned());
                    rest = &after[close + 2..];
                }
            }
            Value::Array(items) => visit.extend(items),
            Value::Object(map) => visit.extend(map.values()),
            _ => {}
        }
    }
    found
}
