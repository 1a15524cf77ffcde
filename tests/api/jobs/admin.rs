//! The admin routes and the queues' health, through the real server.

use super::*;
use crate::helpers::Reply;
use crate::helpers::SendReply;

#[tokio::test]
async fn admin_routes_list_retry_and_discard_dead_jobs() {
    // The node runs no jobs itself: the job below is only ever run by this test's executor.
    let app = spawn_app_with(
        |s| {
            s.admin.system_key = "s3cret-system-key".to_string().into();
            s.jobs.enabled = false;
        },
        None,
    )
    .await;
    let key = "s3cret-system-key";
    let jobs = JobStore::new(
        app.db.pool.clone(),
        Arc::new(Snowflake::new(99).unwrap()),
        Arc::new(SystemClock),
        "admin-test",
        5,
    );
    // A job nobody handles dies on its first attempt.
    let id = jobs
        .enqueue(NewJob::new(
            Queue::ImportUserData,
            "test.nobody",
            serde_json::json!({}),
        ))
        .await
        .unwrap()
        .unwrap();
    let exec = Executor::new(
        jobs.clone(),
        Registry::new(),
        Arc::new(app.settings.jobs.clone()),
    );
    assert_eq!(
        exec.try_execute_one(Queue::ImportUserData).await.unwrap(),
        Some(Outcome::Dead(id))
    );

    let get = |path: &str| {
        app.client
            .get(app.url(path))
            .header("x-api-key", key)
            .reply()
    };
    let body: serde_json::Value = get("/api/v2/admin/queues").await.body;
    let email = body["data"]["queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["queue"] == "import-user-data")
        .unwrap();
    assert_eq!(email["counts"]["dead"], 1, "{body}");

    let page: serde_json::Value = get("/api/v2/admin/jobs/dead?queue=import-user-data&take=10")
        .await
        .body;
    let edges = page["data"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 1, "{page}");
    assert_eq!(edges[0]["node"]["id"], id.to_string());
    assert!(
        edges[0]["node"]["lastError"]
            .as_str()
            .unwrap()
            .contains("no handler")
    );
    assert_eq!(page["data"]["pageInfo"]["hasNextPage"], false);

    // Health reports the dead job, but the node keeps serving.
    let Reply {
        status,
        body: health,
        ..
    } = app.healthcheck().await;
    assert_eq!(status, 200);
    assert_eq!(
        health["services"]["queues"]["status"], "Degraded",
        "{health}"
    );

    let retry = |id: String| {
        app.client
            .post(app.url(&format!("/api/v2/admin/jobs/{id}/retry")))
            .bearer_auth(key)
            .reply()
    };
    assert_eq!(retry(id.to_string()).await.status, 200);
    assert_eq!(retry(id.to_string()).await.status, 404, "no longer dead");
    let (state, attempt): (String, i32) =
        sqlx::query_as("SELECT state, attempt FROM jobs WHERE id = $1")
            .bind(id)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!((state.as_str(), attempt), ("available", 0));

    exec.try_execute_one(Queue::ImportUserData).await.unwrap();
    let discard = app
        .client
        .delete(app.url(&format!("/api/v2/admin/jobs/{id}")))
        .header("x-api-key", key)
        .reply()
        .await;
    assert_eq!(discard.status, 200);
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(left, 0);

    // Bad input and missing or wrong keys.
    assert_eq!(get("/api/v2/admin/jobs/dead?take=101").await.status, 400);
    assert_eq!(get("/api/v2/admin/jobs/dead?queue=nope").await.status, 400);
    assert_eq!(retry("abc".into()).await.status, 400);
    assert_eq!(app.get("/api/v2/admin/queues").await.status, 401);
    let wrong = app
        .client
        .get(app.url("/api/v2/admin/queues"))
        .header("x-api-key", "guess")
        .reply()
        .await;
    assert_eq!(wrong.status, 401);
}

#[tokio::test]
async fn admin_routes_are_closed_without_a_system_key() {
    let app = spawn_app_with(|s| s.admin.system_key = String::new().into(), None).await;
    let response = app
        .client
        .get(app.url("/api/v2/admin/queues"))
        .header("x-api-key", "")
        .reply()
        .await;
    assert_eq!(response.status, 403);
    let body: serde_json::Value = response.body;
    assert_eq!(body["errors"][0]["code"], "AdminDisabled");
}
