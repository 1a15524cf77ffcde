//! Waits and their bounds: a `wait` longer than `runs.max_wait_ms` is refused when the routine
//! is saved, and a run that reaches one anyway (a snapshot saved under a higher setting) fails
//! its step instead of overflowing the executor.

use super::*;

/// `PUT /resourceVersion/{id}` with `config`; the reply.
async fn edit(app: &TestApp, who: &User, version: &str, config: &Value) -> Reply {
    app.call(
        Method::PUT,
        &format!("/resourceVersion/{version}"),
        Auth::Cookie(&who.token),
        Some(&json!({"config": config})),
    )
    .await
}

#[tokio::test]
async fn a_wait_longer_than_the_most_is_refused_when_saved() {
    let app = run_app().await;
    let sam = user(&app, "Sam").await;
    let wait = |wait: Value| graph(json!([wait]), json!([]));
    let long = wait(json!({"id": "w", "kind": "wait", "durationMs": 100_000_000_000_000_000u64}));
    let far = wait(json!({"id": "w", "kind": "wait", "until": "9999-01-01T00:00:00Z"}));
    for config in [&long, &far] {
        let reply =
            crate::routines::create_routine(&app, &sam, "RoutineMultiStep", config.clone()).await;
        assert_eq!(reply.status, 422, "{}", reply.body);
        assert_eq!(reply.body["errors"][0]["code"], "InvalidRoutineGraph");
        let message = reply.body["errors"][0]["message"].as_str().unwrap();
        assert!(
            message.contains("node \"w\"") && message.contains("runs.max_wait_ms"),
            "{message}"
        );
    }
    let short = wait(json!({"id": "w", "kind": "wait", "durationMs": 1000}));
    let version = routine(&app, &sam, "RoutineMultiStep", short.clone()).await;
    for config in [&long, &far] {
        let reply = edit(&app, &sam, &version, config).await;
        assert_eq!(reply.status, 422, "{}", reply.body);
        assert_eq!(reply.body["errors"][0]["code"], "InvalidRoutineGraph");
    }
    let read = app
        .call(
            Method::GET,
            &format!("/resourceVersion/{version}"),
            Auth::Cookie(&sam.token),
            None,
        )
        .await;
    assert_eq!(read.body["data"]["config"], short, "nothing written");
}

#[tokio::test]
async fn a_run_reaching_a_wait_too_long_fails_it_and_the_executor_goes_on() {
    let app = run_app().await;
    let sam = user(&app, "Sam").await;
    let config = graph(
        json!([{"id": "ok", "kind": "approval", "message": "Go?"},
               {"id": "w", "kind": "wait", "durationMs": 1000}]),
        chain(&["ok", "w"]),
    );
    let run = run_of(&app, &sam, config, json!({})).await;
    until_waiting_for(&app, &sam, &run, "Decision").await;
    // As if saved before the bound: the stored snapshot waits 10^17 ms.
    sqlx::query(
        "UPDATE runs SET snapshot = jsonb_set(snapshot, '{graph,nodes,1,durationMs}',
                                              '100000000000000000') WHERE id = $1",
    )
    .bind(run.parse::<i64>().unwrap())
    .execute(&app.db.pool)
    .await
    .unwrap();
    answer(&app, &sam, &run, "ok", json!(true)).await;
    let failed = until_status(&app, &sam, &run, "Failed").await;
    assert_eq!(failed["statusReason"], "WaitTooLong", "{failed}");

    // The executor is still there: another run on this node completes.
    let quick = graph(
        json!([{"id": "w", "kind": "wait", "durationMs": 1}]),
        json!([]),
    );
    let next = run_of(&app, &sam, quick, json!({})).await;
    until_status(&app, &sam, &next, "Completed").await;
}
