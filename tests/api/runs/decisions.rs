//! Answers and what a run shows about itself: an answer for a key the run has not is refused
//! naming the keys it takes (one given early for a real node is kept); a run waiting for an
//! answer shows its key; an approval's message is filled from the context; events carry their
//! time; a failed run says why; a run paused in a wait and resumed goes back to waiting.

use super::*;

/// Starts a run of `config` with `inputs` and waits until it waits for an answer.
async fn waiting_run(app: &TestApp, sam: &User, config: Value, inputs: Value) -> String {
    let run = run_of(app, sam, config, inputs).await;
    until_waiting_for(app, sam, &run, "Decision").await;
    run
}

#[tokio::test]
async fn an_answer_for_a_key_the_run_has_not_is_refused_naming_the_keys_it_takes() {
    let app = run_app().await;
    let sam = user(&app, "Sam").await;
    let config = graph(
        json!([{"id": "w", "kind": "wait", "durationMs": 1500},
               {"id": "ok", "kind": "approval", "message": "Go?"},
               {"id": "name", "kind": "input", "fields": ["name"]}]),
        chain(&["w", "ok", "name"]),
    );
    let run = run_of(&app, &sam, config, json!({})).await;
    let reply = answer(&app, &sam, &run, "okay", json!(true)).await;
    assert_eq!(reply.status, 422, "{}", reply.body);
    assert_eq!(reply.body["errors"][0]["code"], "UnknownDecisionKey");
    let message = reply.body["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("\"okay\"") && message.ends_with("it takes name, ok"),
        "{message}"
    );
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM run_decisions WHERE run_id = $1")
        .bind(run.parse::<i64>().unwrap())
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(stored, 0, "nothing stored");

    // Early answers for the run's real nodes are kept, and it runs through them.
    for (key, value) in [("ok", json!(true)), ("name", json!({"name": "Kim"}))] {
        let reply = answer(&app, &sam, &run, key, value).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.body["data"]["stored"], true);
    }
    let done = until_status(&app, &sam, &run, "Completed").await;
    assert_eq!(done["steps"][2]["outputs"], json!({"name": "Kim"}));
}

#[tokio::test]
async fn a_run_waiting_for_an_answer_shows_its_key() {
    let app = run_app().await;
    let sam = user(&app, "Sam").await;
    let config = graph(
        json!([{"id": "ok", "kind": "approval", "message": "Go?"}]),
        json!([]),
    );
    let run = waiting_run(&app, &sam, config, json!({})).await;
    let waiting = get_run(&app, &sam, &run).await;
    assert_eq!(waiting["waitingKeys"], json!(["ok"]), "{waiting}");
    answer(&app, &sam, &run, "ok", json!(true)).await;
    let done = until_status(&app, &sam, &run, "Completed").await;
    assert_eq!(done["waitingKeys"], Value::Null);
}

#[tokio::test]
async fn an_approvals_message_is_filled_from_the_context() {
    let app = run_app().await;
    let sam = user(&app, "Sam").await;
    let config = graph(
        json!([{"id": "ok", "kind": "approval", "message": "Send {{input.amount}} to {{input.to}}?"}]),
        json!([]),
    );
    let run = waiting_run(&app, &sam, config, json!({"amount": 5, "to": "Kim"})).await;
    let events = events(&app, &sam, &run).await;
    let asked = events
        .iter()
        .find(|e| e["type"] == "run/decision/requested")
        .expect("asked");
    assert_eq!(asked["data"]["message"], "Send 5 to Kim?", "{asked}");
}

#[tokio::test]
async fn run_events_carry_their_time() {
    let app = run_app().await;
    let sam = user(&app, "Sam").await;
    let before = chrono::Utc::now();
    let config = graph(
        json!([{"id": "w", "kind": "wait", "durationMs": 1}]),
        json!([]),
    );
    let run = run_of(&app, &sam, config, json!({})).await;
    until_status(&app, &sam, &run, "Completed").await;
    let events = events(&app, &sam, &run).await;
    let mut last = before - chrono::Duration::seconds(1);
    for event in &events {
        let at = event["data"]["createdAt"].as_str().expect("a time");
        let at: chrono::DateTime<chrono::Utc> = at.parse().unwrap();
        assert!(at >= last && at <= chrono::Utc::now(), "{events:#?}");
        last = at;
    }
    assert!(events.len() >= 3, "{events:#?}");
}

#[tokio::test]
async fn a_failed_run_says_why_where_it_is_read() {
    let app = run_app().await;
    let sam = user(&app, "Sam").await;
    let config = graph(
        json!([{"id": "say", "kind": "llm", "model": "echo", "prompt": "Hi {{input.name}}"}]),
        json!([]),
    );
    let run = run_of(&app, &sam, config, json!({})).await;
    let failed = until_status(&app, &sam, &run, "Failed").await;
    assert_eq!(failed["statusReason"], "MissingOutput");
    let message = failed["statusMessage"].as_str().expect("a message");
    assert!(message.contains("input.name"), "{failed}");
}

#[tokio::test]
async fn a_run_resumed_during_a_wait_says_waiting_and_waits() {
    let app = run_app().await;
    let sam = user(&app, "Sam").await;
    let config = graph(
        json!([{"id": "w", "kind": "wait", "durationMs": 2500},
               {"id": "after", "kind": "wait", "durationMs": 1}]),
        chain(&["w", "after"]),
    );
    let run = run_of(&app, &sam, config, json!({})).await;
    until_waiting_for(&app, &sam, &run, "Timer").await;
    let reply = app
        .call(
            Method::POST,
            "/task/pause",
            Auth::Cookie(&sam.token),
            Some(&json!({"runId": run})),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    until_status(&app, &sam, &run, "Paused").await;
    let reply = app
        .call(
            Method::POST,
            "/task/start/run",
            Auth::Cookie(&sam.token),
            Some(&json!({"isNewRun": false, "runId": run})),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["data"]["status"], "Waiting", "{}", reply.body);
    let now = get_run(&app, &sam, &run).await;
    assert_eq!(
        (now["status"].as_str(), now["waitingFor"].as_str()),
        (Some("InProgress"), Some("Timer")),
        "{now}"
    );
    let done = until_status(&app, &sam, &run, "Completed").await;
    assert_eq!(
        done["steps"][0]["attempts"], 1,
        "the wait kept its time: {done}"
    );
}
