//! Runs across nodes: a wait wakes on a node other than the one that started it; an approval
//! answered through another node; a paused run stays paused with no lease while every node
//! restarts, and resumes from the next step; a private run's room refuses others.

use super::*;
use crate::helpers::SecondNode;

/// POST through another node's address as `who`.
async fn post_via(app: &TestApp, base: &str, who: &User, path: &str, body: Value) -> Reply {
    let request = app
        .client
        .post(format!("{base}/api/v2{path}"))
        .header("cookie", format!("{}={}", crate::auth::COOKIE, who.token))
        .json(&body);
    Reply::of(request).await
}

async fn lease_owner(app: &TestApp, run: &str) -> Option<i32> {
    sqlx::query_scalar("SELECT lease_owner FROM runs WHERE id = $1")
        .bind(run.parse::<i64>().unwrap())
        .fetch_one(&app.db.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_wait_wakes_on_another_node_and_an_approval_is_answered_through_one() {
    let app = run_app().await;
    let sam = user(&app, "Sam").await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .mount(&server)
        .await;
    let config = graph(
        json!([{"id": "w", "kind": "wait", "durationMs": 3000}, http_node("h", &server, "/h"),
               {"id": "ok", "kind": "approval", "message": "Ship it?"}, http_node("z", &server, "/z")]),
        chain(&["w", "h", "ok", "z"]),
    );
    let run = run_of(&app, &sam, config, json!({})).await;
    wait_until(
        Duration::from_secs(10),
        "the run waits on its timer",
        || async { get_run(&app, &sam, &run).await["waitingFor"] == "Timer" },
    )
    .await;
    // The node that started it goes away; another wakes the timer.
    let b = SecondNode::start_with(&app, 1, run_settings).await;
    app.shutdown.shutdown().await;
    wait_until(
        Duration::from_secs(20),
        "the other node asks for the approval",
        || async {
            let kinds: Vec<String> = sqlx::query_scalar(
                "SELECT event_type FROM run_events WHERE run_id = $1 ORDER BY seq",
            )
            .bind(run.parse::<i64>().unwrap())
            .fetch_all(&app.db.pool)
            .await
            .unwrap();
            kinds.contains(&"run/decision/requested".to_owned())
        },
    )
    .await;
    assert_eq!(
        keys_sent(&server, "/h").await,
        [format!("{run}:h")],
        "woken once, after the wait"
    );
    assert_eq!(
        lease_owner(&app, &run).await,
        None,
        "waiting for a person holds no lease"
    );

    let Reply { status, body, .. } = post_via(
        &app,
        &b.address,
        &sam,
        &format!("/run/{run}/decision"),
        json!({"key": "ok", "value": {"approved": true}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    until_status_in_db(&app, &run, "Completed").await;
    let epochs: Vec<i64> = sqlx::query_scalar("SELECT lease_epoch FROM runs WHERE id = $1")
        .bind(run.parse::<i64>().unwrap())
        .fetch_all(&app.db.pool)
        .await
        .unwrap();
    assert!(
        epochs[0] >= 3,
        "claimed at start, after the wait and after the answer: {epochs:?}"
    );
    assert_eq!(keys_sent(&server, "/z").await, [format!("{run}:z")]);
    b.stop().await;
}

#[tokio::test]
async fn a_paused_run_survives_every_node_restarting_and_resumes_from_the_next_step() {
    let app = run_app().await;
    let sam = user(&app, "Sam").await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .mount(&server)
        .await;
    let config = graph(
        json!([http_node("a", &server, "/a"), {"id": "w", "kind": "wait", "durationMs": 500},
               http_node("b", &server, "/b")]),
        chain(&["a", "w", "b"]),
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
    until_status(&app, &sam, &run, "Paused").await;
    // Every node stops; a new one starts and sweeps for a while.
    app.shutdown.shutdown().await;
    let b = SecondNode::start_with(&app, 1, run_settings).await;
    tokio::time::sleep(Duration::from_millis(1500)).await; // several sweeps and past the wait
    let (status, lease): (String, Option<i32>) =
        sqlx::query_as("SELECT status, lease_owner FROM runs WHERE id = $1")
            .bind(run.parse::<i64>().unwrap())
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(
        (status.as_str(), lease),
        ("Paused", None),
        "still paused, holding nothing"
    );

    let Reply { status, body, .. } = post_via(
        &app,
        &b.address,
        &sam,
        "/task/start/run",
        json!({"isNewRun": false, "runId": run}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    until_status_in_db(&app, &run, "Completed").await;
    assert_eq!(
        keys_sent(&server, "/a").await,
        [format!("{run}:a")],
        "nothing repeated"
    );
    assert_eq!(keys_sent(&server, "/b").await, [format!("{run}:b")]);
    b.stop().await;
}

#[tokio::test]
async fn a_private_runs_room_is_refused_to_others() {
    let app = run_app().await;
    let sam = user(&app, "Sam").await;
    let kim = user(&app, "Kim").await;
    let run = run_of(
        &app,
        &sam,
        graph(
            json!([{"id": "w", "kind": "wait", "durationMs": 60000}]),
            json!([]),
        ),
        json!({}),
    )
    .await;
    let mut theirs = crate::ws::open(&app.address, &kim.token).await;
    let ack = theirs.command("joinRunRoom", json!({"runId": run})).await;
    assert_eq!(ack["success"], false, "{ack}");
    assert_eq!(ack["error"]["code"], "NotFound", "{ack}");
    let mut mine = crate::ws::open(&app.address, &sam.token).await;
    mine.join("joinRunRoom", json!({"runId": run})).await;
}
