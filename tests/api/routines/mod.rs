//! Routines over HTTP: both graph formats stored and read back, every reason a graph is refused
//! (each naming its node, nothing written), the original's Sequential routines calling Generate
//! and Api routines, versions (latest, label in use, edits), and who may read a routine.

mod import;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Auth, TestApp, spawn_app, spawn_app_with};
use crate::ws::{User, user};

/// `POST /resource` with a routine of `config`; the reply.
pub async fn create_routine(
    app: &TestApp,
    owner: &User,
    sub_type: &str,
    config: Value,
) -> crate::helpers::Reply {
    let body = json!({
        "resourceType": "Routine", "name": "A routine", "resourceSubType": sub_type,
        "config": config,
    });
    app.call(
        Method::POST,
        "/resource",
        Auth::Cookie(&owner.token),
        Some(&body),
    )
    .await
}

/// A routine that must be accepted; its version id.
pub async fn routine(app: &TestApp, owner: &User, sub_type: &str, config: Value) -> String {
    let reply = create_routine(app, owner, sub_type, config).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["data"]["versionId"].as_str().unwrap().to_owned()
}

/// An example graph of every common kind.
fn example() -> Value {
    json!({"graph": {"__type": "Graph-1.0", "schema": {
      "start": "classify",
      "nodes": [
        {"id": "classify", "kind": "llm", "prompt": "Label this: {{input.text}}", "maxTokens": 50,
         "outputs": {"label": "$.text"}, "retry": {"maxAttempts": 3, "backoffMs": 2000}},
        {"id": "route", "kind": "decision", "default": "done",
         "branches": [{"when": {"path": "nodes.classify.label", "op": "eq", "value": "bug"}, "to": "file"}]},
        {"id": "file", "kind": "http", "method": "POST", "url": "https://tracker.example/issues",
         "body": {"title": "{{input.text}}"}, "outputs": {"issueId": "$.id"}, "effect": "idempotent",
         "timeoutMs": 30000},
        {"id": "done", "kind": "approval", "message": "Close it?", "timeoutMs": 86400000}
      ],
      "edges": [{"from": "classify", "to": "route"}, {"from": "file", "to": "done"}],
      "outputs": {"issueId": "nodes.file.issueId"}}}})
}

/// A one-node graph wrapper.
fn graph(nodes: Value, edges: Value) -> Value {
    json!({"graph": {"__type": "Graph-1.0", "schema": {"nodes": nodes, "edges": edges}}})
}

#[tokio::test]
async fn a_graph_is_stored_read_back_and_private_to_its_owner() {
    let app = spawn_app().await;
    let sam = user(&app, "Sam").await;
    let kim = user(&app, "Kim").await;
    let reply = create_routine(&app, &sam, "RoutineMultiStep", example()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let data = &reply.body["data"];
    assert_eq!(data["versionLabel"], "1.0.0");
    assert_eq!(data["isLatest"], true);
    let version = data["versionId"].as_str().unwrap();
    let path = format!("/resourceVersion/{version}");

    let read = app
        .call(Method::GET, &path, Auth::Cookie(&sam.token), None)
        .await;
    assert_eq!(read.status, 200, "{}", read.body);
    assert_eq!(read.body["data"]["config"], example());
    for auth in [Auth::Cookie(&kim.token), Auth::Nobody] {
        let read = app.call(Method::GET, &path, auth, None).await;
        assert_eq!(
            read.status, 404,
            "a private routine does not exist for others"
        );
        assert_eq!(read.body["errors"][0]["code"], "ResourceVersionNotFound");
    }

    // A public one is read by anyone.
    let body = json!({"resourceType": "Routine", "name": "Shared", "isPrivate": false,
                      "config": example()});
    let public = app
        .call(
            Method::POST,
            "/resource",
            Auth::Cookie(&sam.token),
            Some(&body),
        )
        .await;
    let public = public.body["data"]["versionId"]
        .as_str()
        .unwrap()
        .to_owned();
    let read = app
        .call(
            Method::GET,
            &format!("/resourceVersion/{public}"),
            Auth::Nobody,
            None,
        )
        .await;
    assert_eq!(read.status, 200);

    let listed = app
        .call(
            Method::GET,
            "/resources?resourceType=Routine",
            Auth::Cookie(&sam.token),
            None,
        )
        .await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(listed.body["data"]["edges"].as_array().unwrap().len(), 2);
    let theirs = app
        .call(
            Method::GET,
            "/resources?resourceType=Routine",
            Auth::Cookie(&kim.token),
            None,
        )
        .await;
    assert_eq!(theirs.body["data"]["edges"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn every_bad_graph_is_refused_naming_its_node_and_nothing_is_written() {
    let app = spawn_app_with(|s| s.runs.max_graph_nodes = 3, None).await;
    let sam = user(&app, "Sam").await;
    let wait = |id: &str| json!({"id": id, "kind": "wait", "durationMs": 0});
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            graph(json!([{"id": "a", "kind": "teleport"}]), json!([])),
            "InvalidRoutineGraph",
            "node \"a\": unknown kind",
        ),
        (
            graph(json!([wait("a"), wait("a")]), json!([])),
            "InvalidRoutineGraph",
            "node \"a\": duplicate id",
        ),
        (
            graph(json!([wait("a")]), json!([{"from": "a", "to": "nowhere"}])),
            "InvalidRoutineGraph",
            "node \"a\": an edge leads to a missing node \"nowhere\"",
        ),
        (
            graph(json!([wait("a"), wait("b")]), json!([])),
            "InvalidRoutineGraph",
            "node \"b\": unreachable",
        ),
        (
            graph(
                json!([wait("a"), wait("b")]),
                json!([{"from": "a", "to": "b"}, {"from": "b", "to": "a"}]),
            ),
            "InvalidRoutineGraph",
            "a cycle",
        ),
        (
            graph(
                json!([wait("a"), {"id": "j", "kind": "join"}]),
                json!([{"from": "a", "to": "j"}]),
            ),
            "InvalidRoutineGraph",
            "node \"j\": a join without its parallel",
        ),
        (
            graph(
                json!([{"id": "a", "kind": "llm", "prompt": "{{nodes.ghost.text}}"}]),
                json!([]),
            ),
            "InvalidRoutineGraph",
            "node \"a\": \"nodes.ghost.text\" names an unknown node \"ghost\"",
        ),
        (
            graph(
                json!([{"id": "a", "kind": "llm", "prompt": "hi", "outputs": {"label": "$.text"}},
                      {"id": "b", "kind": "llm", "prompt": "{{nodes.a.colour}}"}]),
                json!([{"from": "a", "to": "b"}]),
            ),
            "InvalidRoutineGraph",
            "node \"b\": \"nodes.a.colour\": node \"a\" has no output \"colour\"",
        ),
        (
            graph(
                json!([{"id": "s", "kind": "subroutine", "versionId": "12345"}]),
                json!([]),
            ),
            "InvalidRoutineGraph",
            "node \"s\": routine version 12345 does not exist",
        ),
        (
            graph(
                json!([wait("a"), wait("b"), wait("c"), wait("d")]),
                json!([{"from": "a", "to": "b"}, {"from": "b", "to": "c"}, {"from": "c", "to": "d"}]),
            ),
            "InvalidRoutineGraph",
            "4 nodes; at most 3",
        ),
        (
            graph(
                json!([{"id": "a", "kind": "http", "url": "http://x.test/", "effect": "sometimes"}]),
                json!([]),
            ),
            "InvalidRoutineGraph",
            "node \"a\": bad http node",
        ),
        (
            graph(
                json!([{"id": "a", "kind": "action", "tool": "rm_rf"}]),
                json!([]),
            ),
            "InvalidRoutineGraph",
            "node \"a\": unknown tool \"rm_rf\"",
        ),
        (
            graph(
                json!([{"id": "a", "kind": "code", "code": "  "}]),
                json!([]),
            ),
            "InvalidRoutineGraph",
            "node \"a\": code is 1 to",
        ),
        (
            json!({"graph": {"__type": "BPMN-2.0", "schema": {}}}),
            "GraphTypeUnsupported",
            "\"BPMN-2.0\"",
        ),
    ];
    for (config, code, says) in cases {
        let reply = create_routine(&app, &sam, "RoutineMultiStep", config.clone()).await;
        assert_eq!(reply.status, 422, "{config}: {}", reply.body);
        let error = &reply.body["errors"][0];
        assert_eq!(error["code"], code, "{config}: {error}");
        let message = error["message"].as_str().unwrap();
        assert!(
            message.contains(says),
            "{config}: {message:?} should say {says:?}"
        );
    }
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM resources")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(stored, 0, "a refused routine leaves no row");
}

#[tokio::test]
async fn the_originals_sequential_routines_call_generate_and_api_routines() {
    let app = spawn_app().await;
    let sam = user(&app, "Sam").await;
    // The original's exported shapes (docs/ai-creation/routine/staged).
    let generate = routine(
        &app,
        &sam,
        "RoutineGenerate",
        json!({
            "__version": "1.0",
            "callDataGenerate": {"__version": "1.0", "schema": {
                "botStyle": "Encouraging", "maxTokens": 600,
                "prompt": "Habit Goals: {{input.habitGoals}}"}},
            "formInput": {"__version": "1.0", "schema": {"containers": [], "elements": [
                {"fieldName": "habitGoals", "id": "habit_goals_input", "label": "Habit Goals",
                 "type": "Text", "isRequired": true}]}},
            "formOutput": {"__version": "1.0", "schema": {"containers": [], "elements": [
                {"fieldName": "response", "id": "response", "label": "Response", "type": "Text"}]}}
        }),
    )
    .await;
    let api = routine(
        &app,
        &sam,
        "RoutineApi",
        json!({
            "__version": "1.0",
            "callDataApi": {"__version": "1.0", "schema": {
                "endpoint": "{{input.baseUrl}}/items", "method": "GET",
                "headers": {"Accept": "application/json"}, "timeoutMs": 30000}}
        }),
    )
    .await;
    let sequential = json!({"__version": "1.0", "graph": {"__type": "Sequential", "schema": {
        "steps": [
            {"id": "step-1", "name": "Coach", "description": "", "subroutineId": generate,
             "inputMap": {"goals": "habitGoals"}, "outputMap": {"response": "advice"}},
            {"id": "step-2", "name": "Fetch", "description": "", "subroutineId": api,
             "inputMap": {"advice": "baseUrl"}, "outputMap": {"body": "items"}}
        ],
        "rootContext": {"inputMap": {"userGoals": "goals"}, "outputMap": {"items": "result"}},
        "executionMode": "sequential"}}});
    let reply = create_routine(&app, &sam, "RoutineMultiStep", sequential.clone()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);

    // A step calling a version that does not exist is refused, naming the step.
    let mut broken = sequential;
    broken["graph"]["schema"]["steps"][1]["subroutineId"] = json!("999");
    let reply = create_routine(&app, &sam, "RoutineMultiStep", broken).await;
    assert_eq!(reply.status, 422);
    assert!(
        reply.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("node \"step-2\""),
        "{}",
        reply.body
    );
    // A code routine without its script is refused naming the node; a web search cannot run.
    let reply = create_routine(&app, &sam, "RoutineCode", json!({"callDataCode": {}})).await;
    assert_eq!(reply.status, 422);
    assert_eq!(reply.body["errors"][0]["code"], "InvalidRoutineGraph");
    let reply = create_routine(&app, &sam, "RoutineWeb", json!({"callDataWeb": {}})).await;
    assert_eq!(reply.status, 422);
    assert_eq!(reply.body["errors"][0]["code"], "NodeKindUnavailable");
}

#[tokio::test]
async fn versions_are_added_edited_until_run_and_labelled_once() {
    let app = spawn_app().await;
    let sam = user(&app, "Sam").await;
    let kim = user(&app, "Kim").await;
    let first = create_routine(&app, &sam, "RoutineMultiStep", example()).await;
    let resource = first.body["data"]["id"].as_str().unwrap().to_owned();
    let first_version = first.body["data"]["versionId"].as_str().unwrap().to_owned();
    let one_wait = graph(
        json!([{"id": "a", "kind": "wait", "durationMs": 5}]),
        json!([]),
    );

    let body = json!({"resourceId": resource, "versionLabel": "1.1.0", "config": one_wait});
    let second = app
        .call(
            Method::POST,
            "/resourceVersion",
            Auth::Cookie(&sam.token),
            Some(&body),
        )
        .await;
    assert_eq!(second.status, 200, "{}", second.body);
    assert_eq!(second.body["data"]["isLatest"], true);
    let old = app
        .call(
            Method::GET,
            &format!("/resourceVersion/{first_version}"),
            Auth::Cookie(&sam.token),
            None,
        )
        .await;
    assert_eq!(old.body["data"]["isLatest"], false);

    let again = app
        .call(
            Method::POST,
            "/resourceVersion",
            Auth::Cookie(&sam.token),
            Some(&body),
        )
        .await;
    assert_eq!(again.status, 409);
    assert_eq!(again.body["errors"][0]["code"], "VersionLabelInUse");
    let theirs = app
        .call(
            Method::POST,
            "/resourceVersion",
            Auth::Cookie(&kim.token),
            Some(&json!({
            "resourceId": resource, "versionLabel": "2.0.0", "config": one_wait})),
        )
        .await;
    assert_eq!(
        theirs.status, 404,
        "another's routine does not exist for them"
    );

    // Edited while nobody has run it; a bad edit is refused and changes nothing.
    let path = format!("/resourceVersion/{first_version}");
    let edit = app
        .call(
            Method::PUT,
            &path,
            Auth::Cookie(&sam.token),
            Some(&json!({"config": one_wait})),
        )
        .await;
    assert_eq!(edit.status, 200, "{}", edit.body);
    let bad = app
        .call(
            Method::PUT,
            &path,
            Auth::Cookie(&sam.token),
            Some(&json!({"config": graph(json!([]), json!([]))})),
        )
        .await;
    assert_eq!(bad.status, 422);
    let read = app
        .call(Method::GET, &path, Auth::Cookie(&sam.token), None)
        .await;
    assert_eq!(read.body["data"]["config"], one_wait);

    // Once a run used it, it stays what was run.
    sqlx::query(
        "INSERT INTO runs (id, public_id, user_id, resource_version_id) VALUES (1, 'run000000001', $1, $2)",
    )
    .bind(sam.id.parse::<i64>().unwrap())
    .bind(first_version.parse::<i64>().unwrap())
    .execute(&app.db.pool)
    .await
    .unwrap();
    let edit = app
        .call(
            Method::PUT,
            &path,
            Auth::Cookie(&sam.token),
            Some(&json!({"config": example()})),
        )
        .await;
    assert_eq!(edit.status, 409);
    assert_eq!(edit.body["errors"][0]["code"], "VersionHasRuns");
}
