//! Runs over HTTP against fake services that speak real HTTP (wiremock): `flows` (graphs run
//! to the end, idempotent starts, privacy, approvals, cancel and pause, llm steps, Sequential
//! routines, limits), `fanout` (parallel, map), `nodes` (across nodes), `faults` (fencing,
//! takeover, uncertain steps), `kill` (kill -9 of the owner), `code` (sandboxed JavaScript),
//! `action` (the server's own tools), `docs_examples` (the worked examples of docs/ROUTINES.md),
//! `lineage` (runs started by runs' steps: depth, the root's limits, stops reaching them), `scope`
//! (a run acts with the scope it was started with: a team's key, a key's permissions and credit
//! limits).
//! The helpers are here.

mod action;
mod code;
mod decisions;
mod docs_examples;
mod fanout;
mod faults;
mod flows;
mod kill;
mod kinds;
mod lineage;
mod listing;
mod nodes;
mod scope;
mod sequential;
mod waits;

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{Auth, Reply, TestApp, spawn_app_with, wait_until};
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

/// A test app whose node runs no jobs: another node (a process, a second node) owns its runs.
pub async fn app_without_jobs() -> TestApp {
    spawn_app_with(
        |s| {
            run_settings(s);
            s.jobs.enabled = false;
        },
        None,
    )
    .await
}

/// Mounts `POST route` on the fake service, answering `body` after `delay`.
pub async fn answers(server: &MockServer, route: &str, delay: Duration, body: Value) {
    Mock::given(method("POST"))
        .and(path(route))
        .respond_with(
            ResponseTemplate::new(200)
                .set_delay(delay)
                .set_body_json(body),
        )
        .mount(server)
        .await;
}

/// Waits until `GET /run/{id}` says the run waits for `what` (`Timer`, `Decision`).
pub async fn until_waiting_for(app: &TestApp, who: &User, run: &str, what: &str) {
    wait_until(
        Duration::from_secs(20),
        &format!("run {run} waiting for {what}"),
        || async { get_run(app, who, run).await["waitingFor"] == what },
    )
    .await;
}

/// `POST /run/{id}/decision {key, value}`; the reply.
pub async fn answer(app: &TestApp, who: &User, run: &str, key: &str, value: Value) -> Reply {
    app.call(
        Method::POST,
        &format!("/run/{run}/decision"),
        Auth::Cookie(&who.token),
        Some(&json!({"key": key, "value": value})),
    )
    .await
}

/// Waits until the database says the run is `status` (also while the app serving REST is
/// stopped).
pub async fn until_status_in_db(app: &TestApp, run: &str, status: &str) {
    let id: i64 = run.parse().unwrap();
    wait_until(
        Duration::from_secs(20),
        &format!("run {run} {status}"),
        || async {
            let now: String = sqlx::query_scalar("SELECT status FROM runs WHERE id = $1")
                .bind(id)
                .fetch_one(&app.db.pool)
                .await
                .unwrap();
            now == status
        },
    )
    .await;
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
) -> Reply {
    let mut request = app
        .client
        .post(app.url("/api/v2/task/start/run"))
        .header("cookie", format!("{}={}", crate::auth::COOKIE, who.token))
        .json(&json!({"resourceVersionId": version, "isNewRun": true, "formValues": inputs}));
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    Reply::of(request).await
}

/// Starts a run of `config` for `who`; its id.
pub async fn run_of(app: &TestApp, who: &User, config: Value, inputs: Value) -> String {
    let version = routine(app, who, "RoutineMultiStep", config).await;
    let Reply { status, body, .. } = start(app, who, &version, inputs, None).await;
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

/// As if the node running `run` had died inside step `node` after its `w` wait: the wait is
/// marked done, `node` is left in progress with `inputs` (its kind and effect), and the run is
/// due, so the sweeper takes it over.
pub async fn as_if_died_in_step(app: &TestApp, run: i64, node: &str, inputs: &str) {
    sqlx::query("UPDATE run_steps SET status = 'Completed', outputs = '{}' WHERE step_key = $1")
        .bind(format!("{run}:w"))
        .execute(&app.db.pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO run_steps (id, run_id, node_id, step_key, status, inputs)
         VALUES (1, $1, $2, $3, 'InProgress', $4::jsonb)",
    )
    .bind(run)
    .bind(node)
    .bind(format!("{run}:{node}"))
    .bind(inputs)
    .execute(&app.db.pool)
    .await
    .unwrap();
    sqlx::query("UPDATE runs SET wake_at = now() WHERE id = $1")
        .bind(run)
        .execute(&app.db.pool)
        .await
        .unwrap();
}
