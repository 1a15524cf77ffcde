//! Runs over HTTP against real fake services (wiremock speaks HTTP): a graph of http, decision
//! and wait steps run to the end with one call per step under its step key; the timeline is
//! gapless; starts are idempotent; private runs do not exist for others; approvals answered
//! early or late; cancel and pause reach the step in flight; a stale owner is fenced out; a
//! stopped node's run is finished by another node.

mod faults;
mod kill;
mod nodes;

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{Auth, TestApp, spawn_app_with, wait_until};
use crate::routines::routine;
use crate::ws::{User, user};

/// Runs may call the fake services on localhost; short leases so takeovers are quick.
pub fn run_settings(s: &mut vrooli::config::Settings) {
    s.runs.allow_private_addresses = true;
    s.runs.lease_ttl_ms = 1500;
    s.runs.lease_renew_ms = 300;
    s.runs.sweep_interval_ms = 100;
}

pub async fn run_app() -> TestApp {
    spawn_app_with(run_settings, None).await
}

pub fn graph(nodes: Value, edges: Value) -> Value {
    json!({"graph": {"__type": "Graph-1.0", "schema": {"nodes": nodes, "edges": edges}}})
}

pub fn chain(ids: &[&str]) -> Value {
    Value::Array(
        ids.windows(2)
            .map(|w| json!({"from": w[0], "to": w[1]}))
            .collect(),
    )
}

pub fn http_node(id: &str, server: &MockServer, route: &str) -> Value {
    json!({"id": id, "kind": "http", "method": "POST", "url": format!("{}{route}", server.uri()),
           "effect": "idempotent"})
}

/// `POST /task/start/run`; the reply.
pub async fn start(
    app: &TestApp,
    who: &User,
    version: &str,
    inputs: Value,
    key: Option<&str>,
) -> (u16, Value) {
    let mut request = app
        .client
        .post(app.url("/api/v2/task/start/run"))
        .header("cookie", format!("{}={}", crate::auth::COOKIE, who.token))
        .json(&json!({"resourceVersionId": version, "isNewRun": true, "formValues": inputs}));
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Starts a run of `config` for `who`; its id.
pub async fn run_of(app: &TestApp, who: &User, config: Value, inputs: Value) -> String {
    let version = routine(app, who, "RoutineMultiStep", config).await;
    let (status, body) = start(app, who, &version, inputs, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["status"], "Scheduled");
    body["data"]["runId"].as_str().unwrap().to_owned()
}

pub async fn get_run(app: &TestApp, who: &User, run: &str) -> Value {
    let reply = app
        .call(
            Method::GET,
            &format!("/run/{run}"),
            Auth::Cookie(&who.token),
            None,
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["data"].clone()
}

pub async fn until_status(app: &TestApp, who: &User, run: &str, status: &str) -> Value {
    wait_until(
        Duration::from_secs(20),
        &format!("run {run} {status}"),
        || async { get_run(app, who, run).await["status"] == status },
    )
    .await;
    get_run(app, who, run).await
}

pub async fn events(app: &TestApp, who: &User, run: &str) -> Vec<Value> {
    let reply = app
        .call(
            Method::GET,
            &format!("/run/{run}/events"),
            Auth::Cookie(&who.token),
            None,
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["data"]["events"].as_array().unwrap().clone()
}

/// The timeline's seqs are 1..=n, each event naming the run.
pub fn assert_gapless(events: &[Value], run: &str) {
    for (i, event) in events.iter().enumerate() {
        assert_eq!(event["seq"], json!(i as i64 + 1), "{events:#?}");
        assert_eq!(event["data"]["runId"], run);
    }
}

pub fn types(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect()
}

/// What the fake service got on `route`: each request's Idempotency-Key.
pub async fn keys_sent(server: &MockServer, route: &str) -> Vec<String> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.url.path() == route)
        .map(|r| {
            r.headers
                .get("idempotency-key")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default()
        })
        .collect()
}

#[tokio::test]
async fn a_graph_runs_to_the_end_one_call_per_step_with_a_gapless_timeline() {
    let app = run_app().await;
    let sam = user(&app, "Sam").await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/a"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"value": 1})))
        .mount(&server)
        .await;
    for route in ["/b", "/c", "/e"] {
        Mock::given(method("POST"))
            .and(path(route))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"route": route})))
            .mount(&server)
            .await;
    }
    let mut a = http_node("a", &server, "/a");
    a["outputs"] = json!({"x": "$.value"});
    let mut b = http_node("b", &server, "/b");
    b["body"] = json!({"x": "{{nodes.a.x}}", "t": "{{input.text}}"});
    let config = json!({"graph": {"__type": "Graph-1.0", "schema": {
        "start": "a",
        "nodes": [a,
            {"id": "d", "kind": "decision", "default": "c",
             "branches": [{"when": {"path": "nodes.a.x", "op": "eq", "value": 1}, "to": "b"}]},
            b,
            {"id": "w", "kind": "wait", "durationMs": 300},
            http_node("e", &server, "/e"),
            http_node("c", &server, "/c")],
        "edges": [{"from": "a", "to": "d"}, {"from": "b", "to": "w"}, {"from": "w", "to": "e"}],
        "outputs": {"final": "nodes.e.response.route"}}}});
    let run = run_of(&app, &sam, config, json!({"text": "hi"})).await;
    let done = until_status(&app, &sam, &run, "Completed").await;
    assert_eq!(done["outputs"], json!({"final": "/e"}));

    for route in ["/a", "/b", "/e"] {
        let step = &route[1..];
        assert_eq!(
            keys_sent(&server, route).await,
            [format!("{run}:{step}")],
            "{route}"
        );
    }
    assert!(
        keys_sent(&server, "/c").await.is_empty(),
        "the branch not taken is not called"
    );
    let b_body: Value = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .find(|r| r.url.path() == "/b")
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .unwrap();
    assert_eq!(
        b_body,
        json!({"x": 1, "t": "hi"}),
        "templates keep a number a number"
    );

    let steps: Vec<(String, String)> = done["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["nodeId"].as_str().unwrap().into(),
                s["status"].as_str().unwrap().into(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = ["a", "d", "b", "w", "e"]
        .iter()
        .map(|n| ((*n).into(), "Completed".into()))
        .collect();
    assert_eq!(steps, expected);

    let timeline = events(&app, &sam, &run).await;
    assert_gapless(&timeline, &run);
    let kinds = types(&timeline);
    assert_eq!(kinds.first().map(String::as_str), Some("run/started"));
    assert_eq!(kinds.last().map(String::as_str), Some("run/completed"));
    assert_eq!(kinds.iter().filter(|t| *t == "step/completed").count(), 5);
    // The wait dropped the lease and a sweep woke the run: it says so.
    assert!(
        kinds.contains(&"run/waiting".to_owned()) && kinds.contains(&"run/resumed".to_owned()),
        "{kinds:?}"
    );
    let after = app
        .call(
            Method::GET,
            &format!("/run/{run}/events?after=3"),
            Auth::Cookie(&sam.token),
            None,
        )
        .await;
    assert_eq!(
        after.body["data"]["events"][0]["seq"], 4,
        "the timeline resumes after a seq"
    );

    let io = app
        .call(
            Method::GET,
            &format!("/run/io?runId={run}"),
            Auth::Cookie(&sam.token),
            None,
        )
        .await;
    let io = io.body["data"]["io"].as_array().unwrap().clone();
    assert_eq!(io.len(), 5);
    assert_eq!(io[2]["inputs"]["body"], json!({"x": 1, "t": "hi"}));
    assert_eq!(io[0]["outputs"]["x"], 1);
}

#[tokio::test]
async fn starts_are_idempotent_and_private_runs_do_not_exist_for_others() {
    let app = run_app().await;
    let sam = user(&app, "Sam").await;
    let kim = user(&app, "Kim").await;
    let version = routine(
        &app,
        &sam,
        "RoutineMultiStep",
        graph(
            json!([{"id": "w", "kind": "wait", "durationMs": 0}]),
            json!([]),
        ),
    )
    .await;
    let (status, first) = start(&app, &sam, &version, json!({"a": 1}), Some("k-1")).await;
    assert_eq!(status, 200, "{first}");
    let (status, again) = start(&app, &sam, &version, json!({"a": 1}), Some("k-1")).await;
    assert_eq!(status, 200);
    assert_eq!(
        again["data"]["runId"], first["data"]["runId"],
        "one run per key"
    );
    let (status, other) = start(&app, &sam, &version, json!({"a": 2}), Some("k-1")).await;
    assert_eq!(status, 409, "{other}");
    assert_eq!(other["errors"][0]["code"], "IdempotencyKeyReused");
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM runs")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(count, 1);

    let run = first["data"]["runId"].as_str().unwrap();
    until_status(&app, &sam, run, "Completed").await;
    for (method, path, body) in [
        (Method::GET, format!("/run/{run}"), None),
        (Method::GET, format!("/run/{run}/events"), None),
        (Method::GET, format!("/run/io?runId={run}"), None),
        (
            Method::POST,
            "/task/cancel".to_owned(),
            Some(json!({"taskId": run, "taskType": "Run"})),
        ),
        (
            Method::POST,
            format!("/run/{run}/decision"),
            Some(json!({"key": "x", "value": 1})),
        ),
    ] {
        let reply = app
            .call(
                method.clone(),
                &path,
                Auth::Cookie(&kim.token),
                body.as_ref(),
            )
            .await;
        assert_eq!(reply.status, 404, "{method} {path}: {}", reply.body);
        assert_eq!(reply.body["errors"][0]["code"], "RunNotFound");
    }
    // Another's routine cannot be started either.
    let (status, _) = start(&app, &kim, &version, json!({}), None).await;
    assert_eq!(status, 404);
    // A Completed run cannot be cancelled.
    let reply = app
        .call(
            Method::POST,
            "/task/cancel",
            Auth::Cookie(&sam.token),
            Some(&json!({"taskId": run, "taskType": "Run"})),
        )
        .await;
    assert_eq!(reply.status, 409);
    assert_eq!(reply.body["errors"][0]["code"], "InvalidTransition");
}

#[tokio::test]
async fn approvals_answered_early_are_kept_and_late_ones_wake_the_run() {
    let app = run_app().await;
    let sam = user(&app, "Sam").await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .mount(&server)
        .await;
    let config = graph(
        json!([{"id": "w", "kind": "wait", "durationMs": 700},
               {"id": "ok", "kind": "approval", "message": "Go?"},
               http_node("h", &server, "/h")]),
        chain(&["w", "ok", "h"]),
    );
    // Early: answered while the run still waits before the approval.
    let early = run_of(&app, &sam, config.clone(), json!({})).await;
    let reply = app
        .call(
            Method::POST,
            &format!("/run/{early}/decision"),
            Auth::Cookie(&sam.token),
            Some(&json!({"key": "ok", "value": {"approved": true}})),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["data"]["stored"], true);
    let done = until_status(&app, &sam, &early, "Completed").await;
    assert!(
        !types(&events(&app, &sam, &early).await).contains(&"run/decision/requested".to_owned())
    );
    assert_eq!(done["steps"][1]["outputs"]["approved"], true);

    // Late: the run waits, holding nothing, until the answer comes.
    let late = run_of(&app, &sam, config, json!({})).await;
    wait_until(
        Duration::from_secs(10),
        "the approval is requested",
        || async {
            types(&events(&app, &sam, &late).await).contains(&"run/decision/requested".to_owned())
        },
    )
    .await;
    let waiting = get_run(&app, &sam, &late).await;
    assert_eq!(
        (waiting["status"].as_str(), waiting["waitingFor"].as_str()),
        (Some("InProgress"), Some("Decision"))
    );
    let lease: Option<i32> = sqlx::query_scalar("SELECT lease_owner FROM runs WHERE id = $1")
        .bind(late.parse::<i64>().unwrap())
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(lease, None, "a waiting run holds no lease");
    app.call(
        Method::POST,
        &format!("/run/{late}/decision"),
        Auth::Cookie(&sam.token),
        Some(&json!({"key": "ok", "value": true})),
    )
    .await;
    until_status(&app, &sam, &late, "Completed").await;
    assert_eq!(keys_sent(&server, "/h").await.len(), 2);
}

#[tokio::test]
async fn cancel_stops_the_step_in_flight_and_pause_waits_for_the_boundary() {
    let app = run_app().await;
    let sam = user(&app, "Sam").await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/slow"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(20)))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/fast"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .mount(&server)
        .await;
    let slow = graph(json!([http_node("s", &server, "/slow")]), json!([]));
    let run = run_of(&app, &sam, slow, json!({})).await;
    wait_until(Duration::from_secs(10), "the slow step starts", || async {
        types(&events(&app, &sam, &run).await).contains(&"step/started".to_owned())
    })
    .await;
    let asked = std::time::Instant::now();
    let reply = app
        .call(
            Method::POST,
            "/task/cancel",
            Auth::Cookie(&sam.token),
            Some(&json!({"taskId": run, "taskType": "Run"})),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let done = until_status(&app, &sam, &run, "Cancelled").await;
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "stopped in {:?}",
        asked.elapsed()
    );
    assert_ne!(done["steps"][0]["status"], "Completed");
    assert_eq!(
        types(&events(&app, &sam, &run).await).last().unwrap(),
        "run/cancelled"
    );

    // Pause during a wait: Paused at once (nobody holds it), and resume finishes it, each
    // step once.
    let config = graph(
        json!([http_node("f", &server, "/fast"), {"id": "w", "kind": "wait", "durationMs": 800},
               http_node("g", &server, "/fast")]),
        chain(&["f", "w", "g"]),
    );
    let run = run_of(&app, &sam, config, json!({})).await;
    wait_until(Duration::from_secs(10), "the run waits", || async {
        get_run(&app, &sam, &run).await["waitingFor"] == "Timer"
    })
    .await;
    let reply = app
        .call(
            Method::POST,
            "/task/pause",
            Auth::Cookie(&sam.token),
            Some(&json!({"runId": run})),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let paused = until_status(&app, &sam, &run, "Paused").await;
    assert_eq!(paused["statusReason"], "Requested");
    tokio::time::sleep(Duration::from_millis(1200)).await; // past the wait: a paused run stays put
    assert_eq!(get_run(&app, &sam, &run).await["status"], "Paused");
    let reply = app
        .call(
            Method::POST,
            "/task/start/run",
            Auth::Cookie(&sam.token),
            Some(&json!({"isNewRun": false, "runId": run})),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    until_status(&app, &sam, &run, "Completed").await;
    let keys = keys_sent(&server, "/fast").await;
    assert_eq!(
        keys,
        [format!("{run}:f"), format!("{run}:g")],
        "nothing repeated"
    );
}

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
    wait_until(Duration::from_secs(10), "the answer streams", || async {
        types(&events(&app, &sam, &run).await).contains(&"step/started".to_owned())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await; // some words said
    let asked = std::time::Instant::now();
    let response = app
        .client
        .post(format!("{}/api/v2/task/cancel", other.address))
        .header("cookie", format!("{}={}", crate::auth::COOKIE, sam.token))
        .json(&json!({"taskId": run, "taskType": "Run"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
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
