//! `action` steps: a run calls the server's own MCP tools as its owner. One posts to the
//! owner's chat and another reads the owner's routines; a call with bad arguments fails the run
//! with the tool's code; a writing call found in flight after a takeover pauses the run
//! (`UncertainStep`) until a person resumes it; the original's single-step routines run.

use super::*;
use crate::chat::create_chat;

#[tokio::test]
async fn an_action_posts_to_the_owners_chat_and_reads_their_routines() {
    let app = run_app().await;
    let sam = user(&app, "Sam").await;
    let chat = create_chat(&app, &sam, &[], json!({})).await;
    let config = json!({"graph": {"__type": "Graph-1.0", "schema": {
        "start": "post",
        "nodes": [
            {"id": "post", "kind": "action", "tool": "send_message",
             "input": {"chatId": "{{input.chatId}}", "text": "from a run"},
             "outputs": {"messageId": "$.message.id"}},
            {"id": "find", "kind": "action", "tool": "resource_manage",
             "input": {"op": "find", "resourceType": "Routine"}}
        ],
        "edges": [{"from": "post", "to": "find"}],
        "outputs": {"said": "nodes.post.result.message.text",
                    "messageId": "nodes.post.messageId",
                    "routines": "nodes.find.result.routines"}}}});
    let run = run_of(&app, &sam, config, json!({"chatId": chat})).await;
    let done = until_status(&app, &sam, &run, "Completed").await;
    assert_eq!(done["outputs"]["said"], "from a run", "{done}");
    // Posted as Sam, in Sam's chat.
    let (text, author): (String, i64) =
        sqlx::query_as("SELECT text, user_id FROM chat_messages WHERE chat_id = $1")
            .bind(chat.parse::<i64>().unwrap())
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(
        (text.as_str(), author.to_string()),
        ("from a run", sam.id.clone())
    );
    assert_eq!(
        done["outputs"]["messageId"].as_str().map(str::to_owned),
        sqlx::query_scalar::<_, i64>("SELECT id FROM chat_messages WHERE chat_id = $1")
            .bind(chat.parse::<i64>().unwrap())
            .fetch_one(&app.db.pool)
            .await
            .ok()
            .map(|id| id.to_string())
    );
    // The routine that is running is among Sam's routines.
    assert_eq!(
        done["outputs"]["routines"].as_array().map(Vec::len),
        Some(1)
    );
}

#[tokio::test]
async fn an_action_with_bad_arguments_fails_the_run_with_the_tools_code() {
    let app = run_app().await;
    let sam = user(&app, "Sam").await;
    let config = json!({"graph": {"__type": "Graph-1.0", "schema": {
        "start": "post",
        "nodes": [{"id": "post", "kind": "action", "tool": "send_message",
                   "input": {"chatId": "1"}}],
        "edges": []}}});
    let run = run_of(&app, &sam, config, json!({})).await;
    let failed = until_status(&app, &sam, &run, "Failed").await;
    assert_eq!(failed["statusReason"], "InvalidArguments", "{failed}");
}

#[tokio::test]
async fn the_originals_single_step_internal_action_and_code_routines_run() {
    let app = run_app().await;
    let sam = user(&app, "Sam").await;
    // RoutineInternalAction: callDataAction with a JSON text template and dotted output paths.
    let version = routine(
        &app,
        &sam,
        "RoutineInternalAction",
        json!({"__version": "1.0", "callDataAction": {"__version": "1.0", "schema": {
            "toolName": "resource_manage",
            "inputTemplate": "{\"op\": \"find\", \"resourceType\": \"{{input.kind}}\"}",
            "allowedContexts": [],
            "outputMapping": {"firstName": "routines[0].name"}}}}),
    )
    .await;
    let Reply { status, body, .. } =
        start(&app, &sam, &version, json!({"kind": "Routine"}), None).await;
    assert_eq!(status, 200, "{body}");
    let run = body["data"]["runId"].as_str().unwrap().to_owned();
    let done = until_status(&app, &sam, &run, "Completed").await;
    assert!(done["outputs"]["firstName"].is_string(), "{done}");
    assert_eq!(
        done["outputs"]["result"]["routines"]
            .as_array()
            .map(Vec::len),
        Some(1),
        "{done}"
    );

    // RoutineCode: callDataCode with its script inline (the original linked a code version).
    let version = routine(
        &app,
        &sam,
        "RoutineCode",
        json!({"__version": "1.0", "callDataCode": {"__version": "1.0", "schema": {
            "code": "return {next: input.n + 1};",
            "inputTemplate": {"n": "{{input.n}}"},
            "outputMappings": [{"schemaIndex": 0, "mapping": {"next": "next"}}]}}}),
    )
    .await;
    let Reply { status, body, .. } = start(&app, &sam, &version, json!({"n": 41}), None).await;
    assert_eq!(status, 200, "{body}");
    let run = body["data"]["runId"].as_str().unwrap().to_owned();
    let done = until_status(&app, &sam, &run, "Completed").await;
    assert_eq!(done["outputs"]["next"], 42, "{done}");
}

#[tokio::test]
async fn a_writing_action_in_flight_pauses_the_run_until_a_person_resumes_it() {
    let app = run_app().await;
    let sam = user(&app, "Sam").await;
    let chat = create_chat(&app, &sam, &[], json!({})).await;
    let config = graph(
        json!([{"id": "w", "kind": "wait", "durationMs": 60000},
               {"id": "post", "kind": "action", "tool": "send_message",
                "input": {"chatId": chat, "text": "once"}}]),
        chain(&["w", "post"]),
    );
    let run = run_of(&app, &sam, config, json!({})).await;
    let id: i64 = run.parse().unwrap();
    wait_until(Duration::from_secs(10), "the run waits", || async {
        get_run(&app, &sam, &run).await["waitingFor"] == "Timer"
    })
    .await;
    // As if a node had died inside `post`: the wait done, `post` in progress.
    as_if_died_in_step(
        &app,
        id,
        "post",
        r#"{"kind": "action", "tool": "send_message"}"#,
    )
    .await;
    let paused = until_status(&app, &sam, &run, "Paused").await;
    assert_eq!(paused["statusReason"], "UncertainStep", "{paused}");
    let messages = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM chat_messages WHERE chat_id = $1")
            .bind(chat.parse::<i64>().unwrap())
            .fetch_one(&app.db.pool)
            .await
            .unwrap()
    };
    assert_eq!(messages().await, 0, "not called again on its own");
    // A person says go: it runs once.
    let Reply { status, body, .. } = app
        .call(
            Method::POST,
            "/task/start/run",
            Auth::Cookie(&sam.token),
            Some(&json!({"isNewRun": false, "runId": run})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    until_status(&app, &sam, &run, "Completed").await;
    assert_eq!(messages().await, 1);
}
