//! Runs under faults: a stale owner (another node claimed the lease while its step was in
//! flight) is fenced out and writes nothing; a node that stops mid-step leaves its run to
//! another node, which re-runs that step under the same key and never the finished ones; a
//! non-idempotent step in flight pauses the run with UncertainStep instead.

use super::*;
use crate::helpers::SecondNode;

#[tokio::test]
async fn a_stale_owner_is_fenced_out_and_writes_nothing() {
    let app = run_app().await;
    let sam = user(&app, "Sam").await;
    let server = MockServer::start().await;
    answers(&server, "/slow", Duration::from_millis(1500), json!({})).await;
    answers(&server, "/after", Duration::ZERO, json!({})).await;
    let config = graph(
        json!([
            http_node("s", &server, "/slow"),
            http_node("t", &server, "/after")
        ]),
        chain(&["s", "t"]),
    );
    let run = run_of(&app, &sam, config, json!({})).await;
    let id: i64 = run.parse().unwrap();
    wait_until(Duration::from_secs(10), "the slow step starts", || async {
        types(&events(&app, &sam, &run).await).contains(&"step/started".to_owned())
    })
    .await;
    // Another node claims the run (as it would after this one stalled past its lease).
    sqlx::query(
        "UPDATE runs SET lease_owner = 999, lease_epoch = lease_epoch + 1,
                lease_expires_at = now() + interval '1 hour' WHERE id = $1",
    )
    .bind(id)
    .execute(&app.db.pool)
    .await
    .unwrap();
    let before = events(&app, &sam, &run).await.len();
    // The slow call returns; the old owner's completion must be refused.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let after = events(&app, &sam, &run).await;
    assert_eq!(
        after.len(),
        before,
        "the stale owner wrote no event: {after:#?}"
    );
    let step: String = sqlx::query_scalar("SELECT status FROM run_steps WHERE step_key = $1")
        .bind(format!("{run}:s"))
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(step, "InProgress", "its result was not stored");
    assert!(
        keys_sent(&server, "/after").await.is_empty(),
        "and it went no further"
    );
}

#[tokio::test]
async fn a_stopped_nodes_run_is_finished_by_another_node_without_repeating_steps() {
    let app = run_app().await;
    let sam = user(&app, "Sam").await;
    let server = MockServer::start().await;
    answers(
        &server,
        "/slow",
        Duration::from_millis(1500),
        json!({"ok": true}),
    )
    .await;
    answers(&server, "/fast", Duration::ZERO, json!({})).await;
    let config = graph(
        json!([
            http_node("one", &server, "/fast"),
            http_node("two", &server, "/fast"),
            http_node("three", &server, "/slow"),
            http_node("four", &server, "/fast"),
            http_node("five", &server, "/fast")
        ]),
        chain(&["one", "two", "three", "four", "five"]),
    );
    // Two nodes: whichever claims the run is stopped mid-step; the other takes over.
    let mut b = Some(SecondNode::start_with(&app, 1, run_settings).await);
    let run = run_of(&app, &sam, config, json!({})).await;
    wait_until(Duration::from_secs(10), "step three starts", || async {
        keys_sent(&server, "/slow").await.len() == 1
    })
    .await;
    let owner: Option<i32> = sqlx::query_scalar("SELECT lease_owner FROM runs WHERE id = $1")
        .bind(run.parse::<i64>().unwrap())
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    let a_node = i32::from(app.settings.node.worker_id);
    // Stop whichever node owns it (the other keeps serving and takes over).
    let survivor_is_b = owner == Some(a_node);
    if survivor_is_b {
        app.shutdown.shutdown().await;
    } else if let Some(b) = b.take() {
        b.stop().await;
    }
    until_status_in_db(&app, &run, "Completed").await;
    let slow = keys_sent(&server, "/slow").await;
    assert!(
        (1..=2).contains(&slow.len()),
        "step three at most twice: {slow:?}"
    );
    assert!(
        slow.iter().all(|k| *k == format!("{run}:three")),
        "same key each time: {slow:?}"
    );
    let fast = keys_sent(&server, "/fast").await;
    for step in ["one", "two", "four", "five"] {
        let calls = fast
            .iter()
            .filter(|k| **k == format!("{run}:{step}"))
            .count();
        assert_eq!(calls, 1, "step {step} called once: {fast:?}");
    }
    let seqs: Vec<i64> =
        sqlx::query_scalar("SELECT seq FROM run_events WHERE run_id = $1 ORDER BY seq")
            .bind(run.parse::<i64>().unwrap())
            .fetch_all(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(
        seqs,
        (1..=seqs.len() as i64).collect::<Vec<_>>(),
        "gapless across owners"
    );
    let kinds: Vec<String> =
        sqlx::query_scalar("SELECT event_type FROM run_events WHERE run_id = $1 ORDER BY seq")
            .bind(run.parse::<i64>().unwrap())
            .fetch_all(&app.db.pool)
            .await
            .unwrap();
    assert!(kinds.contains(&"run/resumed".to_owned()), "{kinds:?}");
    if let Some(b) = b {
        b.stop().await;
    }
}

#[tokio::test]
async fn a_non_idempotent_step_in_flight_pauses_the_run_as_uncertain() {
    let app = run_app().await;
    let sam = user(&app, "Sam").await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .mount(&server)
        .await;
    let mut pay = http_node("pay", &server, "/pay");
    pay["effect"] = json!("non-idempotent");
    let config = graph(
        json!([{"id": "w", "kind": "wait", "durationMs": 60000}, pay]),
        chain(&["w", "pay"]),
    );
    let run = run_of(&app, &sam, config, json!({})).await;
    let id: i64 = run.parse().unwrap();
    wait_until(Duration::from_secs(10), "the run waits", || async {
        get_run(&app, &sam, &run).await["waitingFor"] == "Timer"
    })
    .await;
    // As if a node had died inside `pay`: the wait done, `pay` in progress.
    as_if_died_in_step(
        &app,
        id,
        "pay",
        r#"{"kind": "http", "effect": "non-idempotent"}"#,
    )
    .await;
    let paused = until_status(&app, &sam, &run, "Paused").await;
    assert_eq!(paused["statusReason"], "UncertainStep");
    assert!(
        keys_sent(&server, "/pay").await.is_empty(),
        "not called again on its own"
    );
    // A person says go: it runs once.
    app.call(
        Method::POST,
        "/task/start/run",
        Auth::Cookie(&sam.token),
        Some(&json!({"isNewRun": false, "runId": run})),
    )
    .await;
    until_status(&app, &sam, &run, "Completed").await;
    assert_eq!(keys_sent(&server, "/pay").await, [format!("{run}:pay")]);
}

#[tokio::test]
async fn a_node_that_stops_gracefully_hands_its_run_leases_back() {
    // Leases far longer than the test: a takeover within it means the lease was handed back,
    // not left to expire.
    let long = |s: &mut vrooli::config::Settings| {
        run_settings(s);
        s.runs.lease_ttl_ms = 120_000;
        s.runs.lease_renew_ms = 1_000;
    };
    let app = spawn_app_with(long, None).await;
    let sam = user(&app, "Sam").await;
    let server = MockServer::start().await;
    answers(
        &server,
        "/slow",
        Duration::from_millis(1500),
        json!({"ok": true}),
    )
    .await;
    answers(&server, "/fast", Duration::ZERO, json!({})).await;
    let config = graph(
        json!([
            http_node("one", &server, "/slow"),
            http_node("two", &server, "/fast")
        ]),
        chain(&["one", "two"]),
    );
    let mut b = Some(SecondNode::start_with(&app, 1, long).await);
    let run = run_of(&app, &sam, config, json!({})).await;
    wait_until(Duration::from_secs(10), "step one starts", || async {
        keys_sent(&server, "/slow").await.len() == 1
    })
    .await;
    let owner: Option<i32> = sqlx::query_scalar("SELECT lease_owner FROM runs WHERE id = $1")
        .bind(run.parse::<i64>().unwrap())
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    let stopped_at = std::time::Instant::now();
    if owner == Some(i32::from(app.settings.node.worker_id)) {
        app.shutdown.shutdown().await;
    } else if let Some(b) = b.take() {
        b.stop().await;
    }
    until_status_in_db(&app, &run, "Completed").await;
    assert!(
        stopped_at.elapsed() < Duration::from_secs(30),
        "taken over in {:?}, far inside the 120 s lease",
        stopped_at.elapsed()
    );
    if let Some(b) = b {
        b.stop().await;
    }
}
