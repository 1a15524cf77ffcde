//! A routine's graph: `Graph-1.0` (nodes inline) and the original's `Sequential` (steps calling
//! other routine versions, `sequential.rs`) both become one [`Graph`]. This file is the types and
//! the `Graph-1.0` shape; `check.rs` and `sequential.rs` build on it, and `load_graph` (mod.rs)
//! picks the parser by `__type`.
//!
//! ```text
//! config JSON ─▶ load_graph ─▶ parse (shape, kinds; here or sequential.rs) ─▶ check (ids, edges,
//!                 reachability, cycles, joins, templates, size; check.rs) ─▶ Graph | GraphError
//! ```
//!
//! Every refusal names the node and the reason (`InvalidRoutineGraph`); a graph type we do not
//! know is `GraphTypeUnsupported`; what cannot run yet (the original's `RoutineWeb`, a web
//! search, in the Sequential format) is `NodeKindUnavailable`. Checks that need the database
//! (does a subroutine version exist) are left to the caller, which gets the referenced version ids from [`Graph::subroutines`].
//!
//! Stays whole (just over 400 lines): the node kinds are one vocabulary, read together.

use std::collections::{BTreeMap, BTreeSet, HashSet};

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
    /// JavaScript run in the sandbox (`src/sandbox/`): `code` is a function body, `input`
    /// (rendered over the context like an http body) its argument `input`, and what it returns
    /// the output `result`; declared outputs are JSON paths into that result.
    Code {
        code: String,
        #[serde(default)]
        input: Option<Value>,
        #[serde(default)]
        outputs: BTreeMap<String, String>,
    },
    /// One of the server's own MCP tools (`src/mcp/tools/`), called as the run's owner:
    /// `input` (rendered over the context) is its arguments, what it returns the output
    /// `result`. A tool that writes (`send_message`, adds, updates, starts, stops) is not
    /// repeated blindly after a takeover: the run pauses as `UncertainStep`.
    Action {
        tool: String,
        #[serde(default)]
        input: Option<Value>,
        #[serde(default)]
        outputs: BTreeMap<String, String>,
    },
    #[serde(rename_all = "camelCase")]
    Subroutine {
        version_id: String,
        /// Input name of the child → template over this run's context.
        #[serde(default)]
        inputs: BTreeMap<String, String>,
    },
}

/// The tools an `action` node may call: the server's own MCP tools (`src/mcp/tools/`, whose
/// catalogue a test keeps equal to this list).
pub const ACTION_TOOLS: &[&str] = &[
    "send_message",
    "resource_manage",
    "run_routine",
    "define_tool",
];

/// Whether an `action` may have changed something (so a takeover must not repeat it blindly):
/// every call but the reads. An `op` or `action` given as a template counts as a write.
pub fn action_writes(tool: &str, input: Option<&Value>) -> bool {
    let field = |name: &str| input.and_then(|i| i.get(name)).and_then(Value::as_str);
    match tool {
        "define_tool" => false,
        "resource_manage" => !matches!(field("op"), Some("find" | "get")),
        "run_routine" => field("action") != Some("status"),
        _ => true,
    }
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
            Kind::Code { .. } => "code",
            Kind::Action { .. } => "action",
        }
    }

    /// The outputs later nodes may name; `None`: not known before it runs (a subroutine's).
    pub(crate) fn outputs(&self) -> Option<HashSet<String>> {
        let names = |keys: &mut dyn Iterator<Item = &String>| keys.cloned().collect();
        Some(match self {
            Kind::Llm { outputs, .. } => {
                let mut set: HashSet<String> = names(&mut outputs.keys());
                set.insert("response".into());
                set
            }
            Kind::Http { outputs, .. } => {
                let mut set: HashSet<String> = names(&mut outputs.keys());
                set.extend(["response".to_owned(), "status".to_owned()]);
                set
            }
            Kind::Code { outputs, .. } | Kind::Action { outputs, .. } => {
                let mut set: HashSet<String> = names(&mut outputs.keys());
                set.insert("result".into());
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
    /// Inputs the routine's form marks `isRequired: false` (`load_graph`): one left unfilled
    /// is null in templates, not `MissingOutput`.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub optional_inputs: BTreeSet<String>,
}

/// Limits of a graph check.
#[derive(Debug, Clone, Copy)]
pub struct GraphLimits {
    pub max_nodes: usize,
    /// The longest a `wait` may last: its `durationMs`, or its `until` from the time of the check
    /// (`runs.max_wait_ms`).
    pub max_wait_ms: u64,
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
    pub(crate) fn successors<'a>(&'a self, node: &'a Node) -> Vec<&'a str> {
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

/// Parses a `Graph-1.0` graph's `schema` (shape and kinds; the checks are `check.rs`'s).
pub(crate) fn parse_graph_1(schema: &Value) -> Result<Graph, GraphError> {
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
            "llm" | "http" | "decision" | "parallel" | "join" | "map" | "wait" | "input"
            | "approval" | "subroutine" | "code" | "action" => {}
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
        optional_inputs: BTreeSet::new(),
    })
}
