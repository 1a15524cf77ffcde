//! Runs started by runs' steps (issue 34): a routine whose `action` step starts its own version
//! (made so by `PUT /resourceVersion` before its first run) stops at the depth limit, each run
//! knowing its parent and root; under the root's step limit, the whole tree stops sooner; a
//! cancel or a pause of the root reaches the runs it started.

use super::*;

/// `run_routine start`s of `version`: two at once in a parallel, or one.
fn starts_itself(version: &str, twice: bool) -> Value {
    let start = |id: &str| {
        json!({"id": id, "kind": "action", "tool": "run_routine",
               "input": {"action": "start", "routineId": version}})
    };
    if !twice {
        return graph(json!([start("go")]), json!([]));
    }
    json!({"graph": {"__type": "Graph-1.0", "schema": {
        "start": "fan",
        "nodes": [{"id": "fan", "kind": "parallel", "branches": ["a", "b"], "join": "j"},
                  start("a"), start("b"), {"id": "j", "kind": "join"}],
        "edges": [{"from": "a", "to": "j"}, {"from": "b", "to": "j"}]}}})
}

/// A routine of Sam's that starts itself (made so by an edit before its first run); its
/// version id.
async fn self_starting(app: &TestApp, sam: &User, twice: bool) -> String {
    let placeholder = graph(
        json!([{"id": "w", "kind": "wait", "durationMs": 0}]),
        json!([]),
    );
    let version = routine(app, sam, "RoutineMultiStep", placeholder).await;
    let edit = app
        .call(
            Method::PUT,
            &format!("/resourceVersion/{version}"),
            Auth::Cookie(&sam.token),
            Some(&json!({"config": starts_itself(&version, twice)})),
        )
        .await;
    assert_eq!(edit.status, 200, "{}", edit.body);
    version
}

/// Every run of the test's database once none is going any more (and their number held still
/// for a moment), each in `root`'s tree: (id, parent, depth, status, reason) each.
async fn settled_tree(app: &TestApp, root: &str) -> Vec<(i64, Option<i64>, i32, String, String)> {
    let root: i64 = root.parse().unwrap();
    let tree = || async {
        sqlx::query_as::<_, (i64, Option<i64>, i32, String, String)>(
            "SELECT id, parent_run_id, depth, status, COALESCE(status_reason, '') FROM runs
              ORDER BY depth, id",
        )
        .fetch_all(&app.db.pool)
        .await
        .unwrap()
    };
    let (tree_now, last) = (&tree, &std::cell::Cell::new(0));
    wait_until(
        Duration::from_secs(30),
        "the tree settles",
        move || async move {
            let runs = tree_now().await;
            let going = runs
                .iter()
                .any(|r| !matches!(r.3.as_str(), "Completed" | "Failed" | "Cancelled"));
            let settled = !going && runs.len() == last.get();
            last.set(runs.len());
            settled
        },
    )
    .await;
    let runs = tree().await;
    let in_tree: i64 =
        sqlx::query_scalar("SELECT count(*) FROM runs WHERE $1 IN (id, root_run_id)")
            .bind(root)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(
        in_tree,
        runs.len() as i64,
        "every run is in the root's tree"
    );
    runs
}

#[tokio::test]
async fn a_routine_that_starts_itself_stops_at_the_depth_limit() {
    let app = spawn_app_with(
        |s| {
            run_settings(s);
            s.runs.max_subroutine_depth = 2;
        },
        None,
    )
    .await;
    let sam = user(&app, "Sam").await;
    let version = self_starting(&app, &sam, true).await;
    let Reply { status, body, .. } = start(&app, &sam, &version, json!({}), None).await;
    assert_eq!(status, 200, "{body}");
    let root = body["data"]["runId"].as_str().unwrap().to_owned();
    let tree = settled_tree(&app, &root).await;
    // 1 + 2 + 4: the runs at depth 2 may start none.
    assert_eq!(tree.len(), 7, "{tree:?}");
    let ids: Vec<i64> = tree.iter().map(|r| r.0).collect();
    for (id, parent, depth, status, reason) in &tree {
        match depth {
            0 => assert_eq!((parent, status.as_str()), (&None, "Completed")),
            1 => {
                assert_eq!(*parent, Some(root.parse().unwrap()));
                assert_eq!(status, "Completed");
            }
            2 => {
                assert!(
                    ids.contains(&parent.unwrap()),
                    "{id}'s parent is in the tree"
                );
                assert_eq!((status.as_str(), reason.as_str()), ("Failed", "RunTooDeep"));
            }
            other => panic!("run {id} at depth {other}"),
        }
    }
}

#[tokio::test]
async fn runs_started_by_steps_count_against_the_roots_step_limit() {
    let app = run_app().await;
    let sam = user(&app, "Sam").await;
    let version = self_starting(&app, &sam, false).await;
    // One step each: the root's limit of 3 steps is the tree's. Each run on its own limit,
    // they would go on to the depth limit (8 deep).
    let body = json!({"resourceVersionId": version, "isNewRun": true, "formValues": {},
                      "config": {"limits": {"maxSteps": 3}}});
    let reply = app
        .call(
            Method::POST,
            "/task/start/run",
            Auth::Cookie(&sam.token),
            Some(&body),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let root = reply.body["data"]["runId"].as_str().unwrap().to_owned();
    let tree = settled_tree(&app, &root).await;
    let outcome: Vec<(i32, &str, &str)> = tree
        .iter()
        .map(|r| (r.2, r.3.as_str(), r.4.as_str()))
        .collect();
    assert_eq!(
        outcome,
        [
            (0, "Completed", ""),
            (1, "Completed", ""),
            (2, "Completed", ""),
            (3, "Failed", "MaxSteps")
        ]
    );
    let steps: i64 = sqlx::query_scalar("SELECT count(*) FROM run_steps")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(steps, 3, "the tree took the root's steps, no more");
}

#[tokio::test]
async fn a_cancel_or_a_pause_of_the_root_reaches_the_runs_its_steps_started() {
    let app = run_app().await;
    let sam = user(&app, "Sam").await;
    let long_wait = graph(
        json!([{"id": "w", "kind": "wait", "durationMs": 600000}]),
        json!([]),
    );
    let child = routine(&app, &sam, "RoutineMultiStep", long_wait).await;
    let parent = graph(
        json!([{"id": "go", "kind": "action", "tool": "run_routine",
                "input": {"action": "start", "routineId": child}},
               {"id": "w", "kind": "wait", "durationMs": 600000}]),
        chain(&["go", "w"]),
    );
    let parent = routine(&app, &sam, "RoutineMultiStep", parent).await;
    let children_of = |root: String| {
        let (app, child) = (&app, &child);
        async move {
            // The runs of the child routine started after the root (ids grow with time).
            sqlx::query_as::<_, (i64, String, Option<String>)>(
                "SELECT id, status, waiting_for FROM runs
                  WHERE resource_version_id = $2::BIGINT AND id > $1::BIGINT",
            )
            .bind(root)
            .bind(child)
            .fetch_all(&app.db.pool)
            .await
            .unwrap()
        }
    };
    let stop = |root: String, verb: &'static str| {
        let app = &app;
        let token = sam.token.clone();
        async move {
            let reply = app
                .call(
                    Method::POST,
                    &format!("/task/{verb}"),
                    Auth::Cookie(&token),
                    Some(&match verb {
                        "cancel" => json!({"taskId": root, "taskType": "Run"}),
                        _ => json!({"runId": root}),
                    }),
                )
                .await;
            assert_eq!(reply.status, 200, "{}", reply.body);
        }
    };

    for verb in ["cancel", "pause"] {
        let Reply { body, .. } = start(&app, &sam, &parent, json!({}), None).await;
        let root = body["data"]["runId"].as_str().unwrap().to_owned();
        wait_until(Duration::from_secs(20), "the child waits", || async {
            let children = children_of(root.clone()).await;
            children.len() == 1 && children[0].2.as_deref() == Some("Timer")
        })
        .await;
        stop(root.clone(), verb).await;
        let stopped = if verb == "cancel" {
            "Cancelled"
        } else {
            "Paused"
        };
        until_status(&app, &sam, &root, stopped).await;
        let child = children_of(root.clone()).await[0].0.to_string();
        until_status(&app, &sam, &child, stopped).await;
        let lineage: (Option<i64>, Option<i64>, i32) = sqlx::query_as(
            "SELECT parent_run_id, root_run_id, depth FROM runs WHERE id = $1::BIGINT",
        )
        .bind(&child)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
        let root_id = root.parse().ok();
        assert_eq!(lineage, (root_id, root_id, 1), "the child knows its parent");
        if verb == "pause" {
            // Resumed, the root takes the child it paused along.
            let resumed = app
                .call(
                    Method::POST,
                    "/task/start/run",
                    Auth::Cookie(&sam.token),
                    Some(&json!({"isNewRun": false, "runId": root})),
                )
                .await;
            assert_eq!(resumed.status, 200, "{}", resumed.body);
            wait_until(Duration::from_secs(20), "the child goes on", || async {
                get_run(&app, &sam, &child).await["status"] == "InProgress"
            })
            .await;
            stop(root.clone(), "cancel").await;
            until_status(&app, &sam, &child, "Cancelled").await;
        }
    }
}
