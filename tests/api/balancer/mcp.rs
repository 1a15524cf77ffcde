//! MCP behind the balancer: the server is stateless, so an agent's requests may land on any of
//! the three nodes (HAProxy balances each request, round robin) and still make one
//! conversation: a routine added is found, run to the end and read back.

use serde_json::json;

use super::{Balancer, port};
use crate::helpers::{SecondNode, spawn_app};
use crate::mcp::{api_key, client};
use crate::ws::user;

#[tokio::test]
async fn an_agents_requests_spread_over_three_nodes_make_one_conversation() {
    let a = spawn_app().await;
    let b = SecondNode::start_as(&a, 1).await;
    let c = SecondNode::start_as(&a, 2).await;
    let lb = Balancer::start(&[a.port, port(&b.address), port(&c.address)]).await;
    let sam = user(&a, "Sam").await;
    let key = api_key(&a, &sam, &["ReadPublic", "ReadPrivate", "WritePrivate"]).await;
    let config = json!({"graph": {"__type": "Graph-1.0", "schema": {
        "start": "w", "nodes": [{"id": "w", "kind": "wait", "durationMs": 10}], "edges": []}}});
    let report = client(
        &format!("{}/mcp", lb.base),
        json!({"agent": {"key": key, "calls": [
            ["resource_manage", {"op": "add", "resourceType": "Routine", "name": "Nap", "config": config}],
            ["resource_manage", {"op": "find", "resourceType": "Routine"}],
            ["run_routine", {"action": "start", "routineId": {"$ref": [0, "routine", "id"]},
                             "mode": "sync", "timeoutMs": 20000}],
            ["run_routine", {"action": "status", "runId": {"$ref": [2, "runId"]}}]
        ]}}),
    )
    .await;
    let calls = report["agent"]["calls"]
        .as_array()
        .unwrap_or_else(|| panic!("{report}"));
    for (i, call) in calls.iter().enumerate() {
        assert_eq!(call["isError"], false, "call {i}: {call}");
    }
    assert_eq!(calls[1]["value"]["routines"][0]["name"], "Nap");
    assert_eq!(
        calls[3]["value"]["run"]["status"], "Completed",
        "{}",
        calls[3]
    );
    b.stop().await;
    c.stop().await;
}
