//! The checks of a parsed graph that need no database: ids, edges, branches, reachability from
//! the start, cycles (loops go through `map`), joins belonging to a parallel, a map's body,
//! templates naming a node and one of its outputs, and the node count. Each refusal names the
//! node and the reason.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::graph::{Graph, GraphError, GraphLimits, Kind, Node};

/// The most JavaScript a `code` node may hold (the step's script, not a program).
const MAX_CODE_BYTES: usize = 64 * 1024;

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
            Kind::Map { node: body, .. } if !graph.next_of(body).is_empty() => {
                return Err(GraphError::at(body, "a map's body has no edges of its own"));
            }
            Kind::Wait { duration_ms, until } => {
                if duration_ms.is_none() == until.is_none() {
                    return Err(GraphError::at(&node.id, "a wait has durationMs or until"));
                }
                let most = limits.max_wait_ms;
                if let Some(ms) = duration_ms
                    && *ms > most
                {
                    return Err(GraphError::at(
                        &node.id,
                        format!("durationMs is at most {most} (runs.max_wait_ms)"),
                    ));
                }
                if let Some(until) = until {
                    let Ok(at) = chrono::DateTime::parse_from_rfc3339(until) else {
                        return Err(GraphError::at(&node.id, "until is an RFC 3339 time"));
                    };
                    let ahead = at.signed_duration_since(chrono::Utc::now());
                    if ahead.num_milliseconds() > i64::try_from(most).unwrap_or(i64::MAX) {
                        return Err(GraphError::at(
                            &node.id,
                            format!("until is at most {most} ms from now (runs.max_wait_ms)"),
                        ));
                    }
                }
            }
            Kind::Code { code, .. } if code.trim().is_empty() || code.len() > MAX_CODE_BYTES => {
                return Err(GraphError::at(
                    &node.id,
                    format!("code is 1 to {MAX_CODE_BYTES} bytes of JavaScript"),
                ));
            }
            Kind::Action { tool, .. } if !super::graph::ACTION_TOOLS.contains(&tool.as_str()) => {
                return Err(GraphError::at(
                    &node.id,
                    format!(
                        "unknown tool {tool:?} (one of {})",
                        super::graph::ACTION_TOOLS.join(", ")
                    ),
                ));
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
