//! Data export: a job writes the archive in chunks; its owner downloads it once, in order, as
//! valid JSON holding their profile, chats, messages, routines and runs. One export at a time
//! (two asked at the same instant make one); an archive over the limit fails keeping nothing.

use std::time::Duration;

use serde_json::{Value, json};

use crate::chat::{create_chat, get, post};
use crate::helpers::{Reply, TestApp, spawn_app_with, wait_until};
use crate::routines::routine;
use crate::ws::{User, user};

/// Waits until the export is no longer Pending (the job ran); then its download's reply.
async fn download(app: &TestApp, who: &User, export: &str) -> Reply {
    let id: i64 = export.parse().unwrap();
    wait_until(Duration::from_secs(20), "the export to be made", || async {
        let status: String = sqlx::query_scalar("SELECT status FROM user_exports WHERE id = $1")
            .bind(id)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
        status != "Pending"
    })
    .await;
    get(app, &format!("/user/exportData/{export}"), Some(who)).await
}

fn code(reply: &Reply) -> Value {
    reply.body["errors"][0]["code"].clone()
}

#[tokio::test]
async fn an_export_holds_the_users_data_and_is_downloaded_once() {
    // Small chunks: the archive is many rows, read back in order.
    let app = spawn_app_with(|s| s.exports.chunk_bytes = 64, None).await;
    let sam = user(&app, "Sam").await;
    let kim = user(&app, "Kim").await;
    let chat = create_chat(&app, &sam, &[], json!({"name": "Notes"})).await;
    for text in ["first", "second \"quoted\" line"] {
        let said = post(
            &app,
            "/chatMessage",
            &sam,
            json!({"chatId": chat, "text": text}),
        )
        .await;
        assert_eq!(said.status, 200, "{}", said.body);
    }
    let graph = json!({"graph": {"__type": "Graph-1.0", "schema": {
        "start": "w", "nodes": [{"id": "w", "kind": "wait", "durationMs": 1}], "edges": []}}});
    routine(&app, &sam, "RoutineMultiStep", graph).await;

    let Reply { status, body, .. } = post(&app, "/user/exportData", &sam, json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["status"], "Pending");
    let export = body["data"]["id"].as_str().unwrap().to_owned();
    // Not someone else's to read.
    let other = get(&app, &format!("/user/exportData/{export}"), Some(&kim)).await;
    assert_eq!((other.status, code(&other)), (404, json!("ExportNotFound")));

    let reply = download(&app, &sam, &export).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let archive: Value = serde_json::from_str(&reply.text).expect("the archive is JSON");
    assert_eq!(archive["format"], "vrooli-user-export");
    assert_eq!(archive["profile"][0]["name"], "Sam");
    assert_eq!(archive["chats"][0]["id"], chat.as_str());
    let texts: Vec<&str> = archive["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["text"].as_str())
        .collect();
    assert_eq!(texts, ["first", "second \"quoted\" line"]);
    assert_eq!(
        archive["routines"][0]["versions"][0]["resourceSubType"],
        "RoutineMultiStep"
    );
    assert_eq!(archive["emails"].as_array().map(Vec::len), Some(1));

    // Once: the chunks are gone and asking again says so.
    let again = get(&app, &format!("/user/exportData/{export}"), Some(&sam)).await;
    assert_eq!((again.status, code(&again)), (409, json!("ExportNotReady")));
    let chunks: i64 = sqlx::query_scalar("SELECT count(*) FROM user_export_chunks")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(chunks, 0);
}

#[tokio::test]
async fn one_export_at_a_time_and_too_large_keeps_nothing() {
    // No job workers: exports stay Pending, so two asked at once meet the one-pending rule.
    let app = spawn_app_with(|s| s.jobs.enabled = false, None).await;
    let sam = user(&app, "Sam").await;
    let (a, b) = tokio::join!(
        post(&app, "/user/exportData", &sam, json!({})),
        post(&app, "/user/exportData", &sam, json!({})),
    );
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, [200, 409], "{} / {}", a.body, b.body);
    let refused = if a.status == 409 { &a } else { &b };
    assert_eq!(code(refused), "ExportInProgress");

    let small = spawn_app_with(|s| s.exports.max_bytes = 200, None).await;
    let kim = user(&small, "Kim").await;
    let chat = create_chat(&small, &kim, &[], json!({"name": "Long"})).await;
    post(
        &small,
        "/chatMessage",
        &kim,
        json!({"chatId": chat, "text": "x".repeat(300)}),
    )
    .await;
    let Reply { body, .. } = post(&small, "/user/exportData", &kim, json!({})).await;
    let export = body["data"]["id"].as_str().unwrap().to_owned();
    let failed = download(&small, &kim, &export).await;
    assert_eq!(
        (failed.status, code(&failed)),
        (409, json!("ExportNotReady")),
        "{}",
        failed.body
    );
    assert!(
        failed.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("Failed")
    );
    let chunks: i64 = sqlx::query_scalar("SELECT count(*) FROM user_export_chunks")
        .fetch_one(&small.db.pool)
        .await
        .unwrap();
    assert_eq!(chunks, 0, "nothing kept");
}
