//! Runs of particular kinds: llm steps (the echo model; a streaming provider cancelled from
//! another node), the original's Sequential routines calling Generate and Api routines, and
//! limits.

use super::*;
use crate::helpers::SendReply;

#[tokio::test]
async fn an_llm_step_answers_and_a_cancel_from_another_node_stops_its_stream() {
    // A provider that streams 200 words, one every 50 ms (10 s in all).
    let uri = crate::chat::bots::slow_openai(200, Duration::from_millis(50)).await;
    let app = spawn_app_with(
        move |s| {
            run_settings(s);
            crate::chat::bots::one_openai("openai", uri)(s);
        },
        None,
    )
    .await;
    let sam = user(&app, "Sam").await;
    // The built-in echo model answers with what it was asked.
    let echo = graph(
        json!([{"id": "say", "kind": "llm", "model": "echo", "prompt": "Label this: {{input.text}}"}]),
        json!([]),
    );
    let run = run_of(&app, &sam, echo, json!({"text": "bug"})).await;
    let done = until_status(&app, &sam, &run, "Completed").await;
    assert!(
        done["steps"][0]["outputs"]["response"]
            .as_str()
            .unwrap()
            .contains("bug"),
        "{done}"
    );

    // A node that runs no jobs cannot own the run; the cancel goes through it.
    let other = crate::helpers::SecondNode::start_with(&app, 1, |s| s.jobs.enabled = false).await;
    let slow = graph(
        json!([{"id": "talk", "kind": "llm", "model": "gpt-test", "prompt": "Go on"}]),
        json!([]),
    );
    let run = run_of(&app, &sam, slow, json!({})).await;
    // Watch the run's room until the answer's first words arrive.
    let mut ws = crate::ws::open(&app.address, &sam.token).await;
    ws.join("joinRunRoom", json!({"runId": run})).await;
    loop {
        let event = ws.event().await;
        if event["type"] == "step/stream" {
            assert_eq!(event["data"]["runId"], run);
            break;
        }
    }
    let asked = std::time::Instant::now();
    let response = app
        .client
        .post(format!("{}/api/v2/task/cancel", other.address))
        .header("cookie", format!("{}={}", crate::auth::COOKIE, sam.token))
        .json(&json!({"taskId": run, "taskType": "Run"}))
        .reply()
        .await;
    assert_eq!(response.status, 200);
    let done = until_status(&app, &sam, &run, "Cancelled").await;
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "stopped in {:?}",
        asked.elapsed()
    );
    assert_ne!(done["steps"][0]["status"], "Completed");
    assert_eq!(done["creditsUsed"], 0, "only finished steps are charged");
    other.stop().await;
}

#[tokio::test]
async fn an_originals_sequential_routine_calls_generate_and_api_routines_to_the_end() {
    let app = run_app().await;
    let sam = user(&app, "Sam").await;
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/items"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"items": [1, 2]})))
        .mount(&server)
        .await;
    // The original's exported shapes: a Generate routine (answered by the echo model here) and
    // an Api routine, called by a Sequential one.
    let generate = routine(
        &app,
        &sam,
        "RoutineGenerate",
        json!({
            "__version": "1.0",
            "callDataGenerate": {"__version": "1.0", "schema": {
                "botStyle": "Encouraging", "maxTokens": 600, "model": "echo",
                "prompt": "Habit Goals: {{input.habitGoals}}"}}
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
                "endpoint": "{{input.baseUrl}}/items", "method": "GET", "timeoutMs": 30000}}
        }),
    )
    .await;
    let sequential = json!({"__version": "1.0", "graph": {"__type": "Sequential", "schema": {
        "steps": [
            {"id": "step-1", "name": "Coach", "subroutineId": generate,
             "inputMap": {"goals": "habitGoals"}, "outputMap": {"response": "advice"}},
            {"id": "step-2", "name": "Fetch", "subroutineId": api,
             "inputMap": {"apiBase": "baseUrl"}, "outputMap": {"response": "items"}}
        ],
        "rootContext": {"inputMap": {"userGoals": "goals", "base": "apiBase"},
                        "outputMap": {"advice": "advice", "items": "items"}}}}});
    let run = run_of(
        &app,
        &sam,
        sequential,
        json!({"userGoals": "run daily", "base": server.uri()}),
    )
    .await;
    let done = until_status(&app, &sam, &run, "Completed").await;
    assert!(
        done["outputs"]["advice"]
            .as_str()
            .unwrap()
            .contains("run daily"),
        "{done}"
    );
    assert_eq!(done["outputs"]["items"], json!({"items": [1, 2]}));
    assert_eq!(
        keys_sent(&server, "/items").await,
        [format!("{run}:step-2/api")]
    );

    let io = app
        .call(
            Method::GET,
            &format!("/run/io?runId={run}"),
            Auth::Cookie(&sam.token),
            None,
        )
        .await;
    let keys: Vec<&str> = io.body["data"]["io"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stepKey"].as_str().unwrap())
        .collect();
    let expect = [
        format!("{run}:step-1"),
        format!("{run}:step-1/generate"),
        format!("{run}:step-2"),
        format!("{run}:step-2/api"),
    ];
    assert_eq!(
        keys, expect,
        "each step and the steps of the routines it called"
    );
    assert_eq!(
        io.body["data"]["io"][0]["inputs"],
        json!({"habitGoals": "run daily"})
    );
}

#[tokio::test]
async fn limits_fail_or_pause_a_run_with_their_reason_and_cannot_be_raised() {
    let server = MockServer::start().await;
    let uri = server.uri();
    let app = spawn_app_with(
        move |s| {
            run_settings(s);
            crate::chat::bots::one_openai("openai", uri)(s);
        },
        None,
    )
    .await;
    let sam = user(&app, "Sam").await;
    let waits = graph(
        json!([{"id": "a", "kind": "wait", "durationMs": 0}, {"id": "b", "kind": "wait", "durationMs": 0},
               {"id": "c", "kind": "wait", "durationMs": 0}]),
        chain(&["a", "b", "c"]),
    );
    let version = routine(&app, &sam, "RoutineMultiStep", waits).await;
    let start_with = |limits: Value| {
        let body = json!({"resourceVersionId": version, "isNewRun": true, "formValues": {},
                          "config": {"limits": limits}});
        let app = &app;
        let token = sam.token.clone();
        async move {
            app.call(
                Method::POST,
                "/task/start/run",
                Auth::Cookie(&token),
                Some(&body),
            )
            .await
        }
    };
    let reply = start_with(json!({"maxSteps": 2})).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let run = reply.body["data"]["runId"].as_str().unwrap().to_owned();
    let failed = until_status(&app, &sam, &run, "Failed").await;
    assert_eq!(failed["statusReason"], "MaxSteps");
    assert_eq!(
        failed["steps"].as_array().unwrap().len(),
        2,
        "the third never started"
    );

    let reply = start_with(json!({"maxSteps": 1_000_000})).await;
    assert_eq!(
        reply.status, 422,
        "a run cannot raise the configured limits"
    );
    assert_eq!(reply.body["errors"][0]["code"], "InvalidLimits");

    // A paid model's worst case is more than the run may spend: paused before the call.
    let paid = graph(
        json!([{"id": "ask", "kind": "llm", "model": "gpt-test", "prompt": "Hi", "maxTokens": 1000}]),
        json!([]),
    );
    let version = routine(&app, &sam, "RoutineMultiStep", paid).await;
    let body = json!({"resourceVersionId": version, "isNewRun": true, "formValues": {},
                      "config": {"limits": {"maxCredits": 1000}}});
    let reply = app
        .call(
            Method::POST,
            "/task/start/run",
            Auth::Cookie(&sam.token),
            Some(&body),
        )
        .await;
    let run = reply.body["data"]["runId"].as_str().unwrap().to_owned();
    let paused = until_status(&app, &sam, &run, "Paused").await;
    assert_eq!(paused["statusReason"], "MaxCredits");
    assert!(
        server.received_requests().await.unwrap().is_empty(),
        "the model was not called"
    );
    let held: i64 = sqlx::query_scalar("SELECT count(*) FROM credit_holds")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(held, 0, "nothing left held");
}

#[tokio::test]
async fn http_steps_refuse_private_addresses_and_oversized_answers() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/big"))
        .respond_with(ResponseTemplate::new(200).set_body_string("x".repeat(4096)))
        .mount(&server)
        .await;
    // The production default: routines may not call this machine or its network.
    let app = spawn_app_with(
        |s| {
            run_settings(s);
            s.runs.allow_private_addresses = false;
        },
        None,
    )
    .await;
    let sam = user(&app, "Sam").await;
    let run = run_of(
        &app,
        &sam,
        graph(json!([http_node("big", &server, "/big")]), json!([])),
        json!({}),
    )
    .await;
    let failed = until_status(&app, &sam, &run, "Failed").await;
    assert_eq!(failed["statusReason"], "PrivateAddress", "{failed}");
    assert!(
        server.received_requests().await.unwrap().is_empty(),
        "never called"
    );

    let app = spawn_app_with(
        |s| {
            run_settings(s);
            s.runs.http_max_response_bytes = 1024;
        },
        None,
    )
    .await;
    let sam = user(&app, "Sam").await;
    let run = run_of(
        &app,
        &sam,
        graph(json!([http_node("big", &server, "/big")]), json!([])),
        json!({}),
    )
    .await;
    let failed = until_status(&app, &sam, &run, "Failed").await;
    assert_eq!(failed["statusReason"], "ResponseTooLarge", "{failed}");
}

#[tokio::test]
async fn an_llm_steps_chunks_do_not_overtake_its_step_started_while_that_is_in_the_outbox() {
    let app = run_app().await;
    let sam = user(&app, "Sam").await;
    // A wait first, so the test can hold the run room's relay lock before the llm step starts.
    let config = graph(
        json!([{"id": "w", "kind": "wait", "durationMs": 800},
               {"id": "say", "kind": "llm", "model": "echo", "prompt": "one two three"}]),
        json!([{"from": "w", "to": "say"}]),
    );
    let run = run_of(&app, &sam, config, json!({})).await;
    let mut ws = crate::ws::open(&app.address, &sam.token).await;
    ws.join("joinRunRoom", json!({"runId": run})).await;
    // The room's relay lock held elsewhere (a relay on a node whose Redis is slow): the llm
    // step's `step/started` stays in the outbox while the echo model answers at once.
    let mut holder = app.db.pool.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 7107))")
        .bind(format!("run:{run}"))
        .execute(&mut *holder)
        .await
        .unwrap();
    // The fault's length, not a wait for anything: the lock is held past the wait step (0.8 s)
    // and released within ws.outbox_order_wait_ms after it.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    holder.rollback().await.unwrap();

    let mut seen = Vec::new();
    loop {
        let event = ws.event().await;
        let done = event["type"] == "step/completed" && event["data"]["nodeId"] == "say";
        seen.push(event);
        if done {
            break;
        }
    }
    let started = seen
        .iter()
        .position(|e| e["type"] == "step/started" && e["data"]["nodeId"] == "say")
        .expect("the llm step's start");
    let first_chunk = seen
        .iter()
        .position(|e| e["type"] == "step/stream")
        .expect("chunks");
    assert!(
        started < first_chunk,
        "a chunk came before its step/started: {seen:?}"
    );
}

/// An IPv6 literal is judged by the private-address rule, not failed as a name that does not
/// resolve (issue 34, A12); a name that resolves to a private address is refused the same way,
/// and never called (A6). `inside.test` resolves through `egress.hosts`, the table the server's
/// own resolver reads before the system's: the path a production look-up takes.
#[tokio::test]
async fn http_steps_judge_ipv6_literals_and_names_by_the_address_they_reach() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("{}"))
        .mount(&server)
        .await;
    let port = server.address().port();
    let app = spawn_app_with(
        |s| {
            run_settings(s);
            s.runs.allow_private_addresses = false;
            s.egress.hosts = vec!["127.0.0.1 inside.test".into()];
        },
        None,
    )
    .await;
    let sam = user(&app, "Sam").await;
    for url in [
        format!("http://[::1]:{port}/v6"),
        format!("http://[::ffff:127.0.0.1]:{port}/mapped"),
        format!("http://inside.test:{port}/named"),
    ] {
        let node = json!({"id": "call", "kind": "http", "method": "POST", "url": url,
                          "effect": "idempotent"});
        let run = run_of(&app, &sam, graph(json!([node]), json!([])), json!({})).await;
        let failed = until_status(&app, &sam, &run, "Failed").await;
        assert_eq!(failed["statusReason"], "PrivateAddress", "{url}: {failed}");
    }
    assert!(
        server.received_requests().await.unwrap().is_empty(),
        "never called"
    );
}
