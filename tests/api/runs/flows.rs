//! Runs end to end: one call per step under its step key, a gapless timeline, idempotent
//! starts, private runs, approvals early and late, cancel and pause.

use super::*;

#[tokio::test]
async fn a_graph_runs_to_the_end_one_call_per_step_with_a_gapless_timeline() {
    let app = run_app().await;
    let sam = user(&app, "Sam").await;
    let server = MockServer::start().await;
    answers(&server, "/a", Duration::ZERO, json!({"value": 1})).await;
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
    let Reply {
        status,
        body: first,
        ..
    } = start(&app, &sam, &version, json!({"a": 1}), Some("k-1")).await;
    assert_eq!(status, 200, "{first}");
    let Reply {
        status,
        body: again,
        ..
    } = start(&app, &sam, &version, json!({"a": 1}), Some("k-1")).await;
    assert_eq!(status, 200);
    assert_eq!(
        again["data"]["runId"], first["data"]["runId"],
        "one run per key"
    );
    let Reply {
        status,
        body: other,
        ..
    } = start(&app, &sam, &version, json!({"a": 2}), Some("k-1")).await;
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
    // Nor for the signed out.
    for path in [format!("/run/{run}"), format!("/run/{run}/events")] {
        let reply = app.call(Method::GET, &path, Auth::Nobody, None).await;
        assert_eq!(reply.status, 404, "{path}: {}", reply.body);
    }
    // Another's routine cannot be started either.
    let Reply { status, .. } = start(&app, &kim, &version, json!({}), None).await;
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
    answers(&server, "/fast", Duration::ZERO, json!({})).await;
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
