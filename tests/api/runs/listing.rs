//! Runs as their owner finds them: listed newest first (paged, by status), renamed and made
//! public by the owner only, and taken from the start queue by priority (a person's run before
//! a scheduled one).

use super::*;

#[tokio::test]
async fn runs_are_listed_for_their_owner_and_made_public_by_them() {
    let app = run_app().await;
    let sam = user(&app, "Sam").await;
    let kim = user(&app, "Kim").await;
    let quick = graph(
        json!([{"id": "w", "kind": "wait", "durationMs": 0}]),
        json!([]),
    );
    let first = run_of(&app, &sam, quick.clone(), json!({})).await;
    let second = run_of(&app, &sam, quick, json!({})).await;
    until_status(&app, &sam, &second, "Completed").await;
    until_status(&app, &sam, &first, "Completed").await;
    let listed = app
        .call(Method::GET, "/runs?take=1", Auth::Cookie(&sam.token), None)
        .await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    let page = &listed.body["data"];
    assert_eq!(page["edges"][0]["node"]["id"], second, "newest first");
    assert_eq!(page["pageInfo"]["hasNextPage"], true);
    let cursor = page["pageInfo"]["endCursor"].as_str().unwrap();
    let next = app
        .call(
            Method::GET,
            &format!("/runs?take=1&after={cursor}&status=Completed"),
            Auth::Cookie(&sam.token),
            None,
        )
        .await;
    assert_eq!(next.body["data"]["edges"][0]["node"]["id"], first);
    let theirs = app
        .call(Method::GET, "/runs", Auth::Cookie(&kim.token), None)
        .await;
    assert!(theirs.body["data"]["edges"].as_array().unwrap().is_empty());
    let bad = app
        .call(
            Method::GET,
            "/runs?status=Sleeping",
            Auth::Cookie(&sam.token),
            None,
        )
        .await;
    assert_eq!(bad.status, 400);

    // Private until its owner says otherwise; others may not change it.
    let path = format!("/run/{first}");
    assert_eq!(
        app.call(Method::GET, &path, Auth::Cookie(&kim.token), None)
            .await
            .status,
        404
    );
    let edit = json!({"name": "Shared run", "isPrivate": false});
    assert_eq!(
        app.call(Method::PUT, &path, Auth::Cookie(&kim.token), Some(&edit))
            .await
            .status,
        404
    );
    let edited = app
        .call(Method::PUT, &path, Auth::Cookie(&sam.token), Some(&edit))
        .await;
    assert_eq!(edited.status, 200, "{}", edited.body);
    assert_eq!(edited.body["data"]["name"], "Shared run");
    let read = app
        .call(Method::GET, &path, Auth::Cookie(&kim.token), None)
        .await;
    assert_eq!(read.status, 200, "a public run is read by others");
    let cancel = json!({"taskId": first, "taskType": "Run"});
    let acted = app
        .call(
            Method::POST,
            "/task/cancel",
            Auth::Cookie(&kim.token),
            Some(&cancel),
        )
        .await;
    assert_eq!(
        (acted.status, &acted.body["errors"][0]["code"]),
        (403, &serde_json::json!("NotAllowed")),
        "but only its owner acts on it"
    );
}

#[tokio::test]
async fn a_run_started_by_a_person_goes_before_one_started_by_a_schedule() {
    // No node runs jobs while both are queued; then one node takes them one at a time.
    let app = app_without_jobs().await;
    let sam = user(&app, "Sam").await;
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
    let start_as = |source: &'static str| {
        let body = json!({"resourceVersionId": version, "isNewRun": true, "formValues": {},
                          "config": {"source": source}});
        let (app, token) = (&app, sam.token.clone());
        async move {
            let reply = app
                .call(
                    Method::POST,
                    "/task/start/run",
                    Auth::Cookie(&token),
                    Some(&body),
                )
                .await;
            assert_eq!(reply.status, 200, "{}", reply.body);
            reply.body["data"]["runId"]
                .as_str()
                .unwrap()
                .parse::<i64>()
                .unwrap()
        }
    };
    let scheduled = start_as("Schedule").await;
    let by_person = start_as("RunView").await;
    let worker = crate::helpers::SecondNode::start_with(&app, 1, |s| {
        s.jobs.enabled = true;
        s.jobs.queues.run_start.concurrency = 1;
    })
    .await;
    wait_until(Duration::from_secs(20), "both runs complete", || async {
        let done: i64 = sqlx::query_scalar("SELECT count(*) FROM runs WHERE status = 'Completed'")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
        done == 2
    })
    .await;
    // The claim sets `started_at`; with one run-start job at a time, claims follow the queue.
    let order: Vec<i64> = sqlx::query_scalar("SELECT id FROM runs ORDER BY started_at")
        .fetch_all(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(
        order,
        [by_person, scheduled],
        "RunView (−20) before Schedule (−3)"
    );
    worker.stop().await;
}
