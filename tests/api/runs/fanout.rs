//! Fan-out: a parallel of 3 under a concurrency limit of 2 never has 3 steps in progress and
//! joins before going on; a map keeps its items' order and its limits; what cannot run inside a
//! branch yet is refused at start, naming the node.

use super::*;

#[tokio::test]
async fn a_parallel_of_three_under_a_limit_of_two_never_runs_three_at_once() {
    let app = spawn_app_with(
        |s| {
            run_settings(s);
            s.runs.max_concurrent_steps = 2;
        },
        None,
    )
    .await;
    let sam = user(&app, "Sam").await;
    let server = MockServer::start().await;
    answers(
        &server,
        "/slow",
        Duration::from_millis(400),
        json!({"ok": 1}),
    )
    .await;
    answers(&server, "/after", Duration::ZERO, json!({})).await;
    let mut after = http_node("after", &server, "/after");
    after["body"] = json!({"first": "{{nodes.b1.response.ok}}", "third": "{{nodes.b3.status}}"});
    let config = json!({"graph": {"__type": "Graph-1.0", "schema": {
        "start": "fan",
        "nodes": [
            {"id": "fan", "kind": "parallel", "branches": ["b1", "b2", "b3"], "join": "j"},
            http_node("b1", &server, "/slow"), http_node("b2", &server, "/slow"),
            http_node("b3", &server, "/slow"),
            {"id": "j", "kind": "join"}, after],
        "edges": [{"from": "b1", "to": "j"}, {"from": "b2", "to": "j"}, {"from": "b3", "to": "j"},
                  {"from": "j", "to": "after"}]}}});
    let run = run_of(&app, &sam, config, json!({})).await;
    let id: i64 = run.parse().unwrap();
    let mut most = 0;
    let began = std::time::Instant::now();
    loop {
        let (busy, status): (i64, String) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM run_steps WHERE run_id = $1 AND status = 'InProgress'
                        AND inputs->>'kind' = 'http'), status FROM runs WHERE id = $1",
        )
        .bind(id)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
        most = most.max(busy);
        if status == "Completed" || began.elapsed() > Duration::from_secs(20) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(most, 2, "two at once, never three");
    assert!(
        began.elapsed() >= Duration::from_millis(800),
        "three 400 ms calls, two at a time"
    );
    let done = get_run(&app, &sam, &run).await;
    assert_eq!(done["status"], "Completed", "{done}");
    let body: Value = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .find(|r| r.url.path() == "/after")
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .expect("the step after the join ran");
    assert_eq!(
        body,
        json!({"first": 1, "third": 200}),
        "branches' outputs reach later steps"
    );
    assert_eq!(keys_sent(&server, "/slow").await.len(), 3);
}

#[tokio::test]
async fn a_map_keeps_its_items_in_order_and_refuses_too_many() {
    let app = run_app().await;
    let sam = user(&app, "Sam").await;
    let config = json!({"graph": {"__type": "Graph-1.0", "schema": {
        "start": "each",
        "nodes": [
            {"id": "each", "kind": "map", "items": "input.words", "node": "say", "maxConcurrency": 2, "maxItems": 4},
            {"id": "say", "kind": "llm", "model": "echo", "prompt": "item {{item}} at {{index}}"}],
        "edges": [],
        "outputs": {"said": "nodes.each.items"}}}});
    let version = routine(&app, &sam, "RoutineMultiStep", config).await;
    let Reply { body, .. } = start(
        &app,
        &sam,
        &version,
        json!({"words": ["c", "a", "b"]}),
        None,
    )
    .await;
    let run = body["data"]["runId"].as_str().unwrap().to_owned();
    let done = until_status(&app, &sam, &run, "Completed").await;
    let said: Vec<String> = done["outputs"]["said"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["response"].as_str().unwrap().trim().to_owned())
        .collect();
    assert_eq!(said, ["item c at 0", "item a at 1", "item b at 2"]);

    let Reply { body, .. } = start(
        &app,
        &sam,
        &version,
        json!({"words": ["1", "2", "3", "4", "5"]}),
        None,
    )
    .await;
    let run = body["data"]["runId"].as_str().unwrap().to_owned();
    let failed = until_status(&app, &sam, &run, "Failed").await;
    assert_eq!(failed["statusReason"], "MaxItems");
}

#[tokio::test]
async fn a_wait_inside_a_parallel_branch_is_refused_at_start_naming_it() {
    let app = run_app().await;
    let sam = user(&app, "Sam").await;
    let config = json!({"graph": {"__type": "Graph-1.0", "schema": {
        "start": "fan",
        "nodes": [
            {"id": "fan", "kind": "parallel", "branches": ["ask", "w"], "join": "j"},
            {"id": "ask", "kind": "approval", "message": "ok?"},
            {"id": "w", "kind": "wait", "durationMs": 0},
            {"id": "j", "kind": "join"}],
        "edges": [{"from": "ask", "to": "j"}, {"from": "w", "to": "j"}]}}});
    let version = routine(&app, &sam, "RoutineMultiStep", config).await;
    let Reply { status, body, .. } = start(&app, &sam, &version, json!({}), None).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["code"], "NodeKindUnavailable");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("node \"ask\""),
        "{body}"
    );
}

#[tokio::test]
async fn a_map_cannot_raise_the_server_cap() {
    let app = spawn_app_with(
        |s| {
            run_settings(s);
            s.runs.map_max_items = 3;
        },
        None,
    )
    .await;
    let sam = user(&app, "Sam").await;
    let config = json!({"graph": {"__type": "Graph-1.0", "schema": {
        "start": "each",
        "nodes": [
            {"id": "each", "kind": "map", "items": "input.words", "node": "say", "maxItems": 1000},
            {"id": "say", "kind": "llm", "model": "echo", "prompt": "item {{item}}"}],
        "edges": []}}});
    let version = routine(&app, &sam, "RoutineMultiStep", config).await;
    let Reply { body, .. } =
        start(&app, &sam, &version, json!({"words": [1, 2, 3, 4]}), None).await;
    let run = body["data"]["runId"].as_str().unwrap().to_owned();
    let failed = until_status(&app, &sam, &run, "Failed").await;
    assert_eq!(failed["statusReason"], "MaxItems", "{failed}");
    let steps = failed["steps"].as_array().unwrap();
    assert!(
        !steps.iter().any(|s| s["nodeId"] == "say"),
        "no item ran: {failed}"
    );

    let Reply { body, .. } = start(&app, &sam, &version, json!({"words": [1, 2, 3]}), None).await;
    let run = body["data"]["runId"].as_str().unwrap().to_owned();
    let done = until_status(&app, &sam, &run, "Completed").await;
    assert_eq!(done["steps"].as_array().unwrap().len(), 4, "{done}");
}
