//! Data export: a job writes the archive in chunks; its owner downloads it once, in order, as
//! valid JSON holding their profile, chats, messages, routines, runs, teams, keys and files. One export at a time
//! (two asked at the same instant make one); an archive over the limit fails keeping nothing.
//! Imports are here too: an archive of this kind read back, refused whole, or failed by its job.
//!
//! Long on purpose (~590 lines): export and import are one round trip, each flow one test that
//! walks it end to end, sharing the helpers at the top.

use std::time::Duration;

use serde_json::{Value, json};

use crate::chat::{create_chat, get, post};
use crate::helpers::{Reply, TestApp, spawn_app_with, wait_until};
use crate::routines::routine;
use crate::ws::{User, user};

/// Waits until the export is no longer Pending (the job ran).
async fn made(app: &TestApp, export: &str) {
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
}

/// Waits until the export is no longer Pending (the job ran); then its download's reply.
async fn download(app: &TestApp, who: &User, export: &str) -> Reply {
    made(app, export).await;
    get(app, &format!("/user/exportData/{export}"), Some(who)).await
}

/// How many exports `who` has, and how many stored chunks in all.
async fn stored(app: &TestApp, who: &User) -> (i64, i64) {
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM user_exports WHERE user_id = $1::BIGINT),
                (SELECT count(*) FROM user_export_chunks)",
    )
    .bind(&who.id)
    .fetch_one(&app.db.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_ready_export_not_yet_downloaded_is_the_one_asked_for_again() {
    let app = spawn_app_with(|s| s.exports.chunk_bytes = 64, None).await;
    let sam = user(&app, "Sam").await;
    create_chat(&app, &sam, &[], json!({"name": "Notes"})).await;
    let first = post(&app, "/user/exportData", &sam, json!({})).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let export = first.body["data"]["id"].as_str().unwrap().to_owned();
    made(&app, &export).await;
    let (exports, chunks) = stored(&app, &sam).await;
    assert_eq!(exports, 1);
    assert!(chunks > 1, "an archive of several chunks");

    // Two more asked at the same instant while it waits to be downloaded: no new copy, and
    // both are told of the one there is.
    let (a, b) = tokio::join!(
        post(&app, "/user/exportData", &sam, json!({})),
        post(&app, "/user/exportData", &sam, json!({})),
    );
    for reply in [&a, &b] {
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.body["data"]["id"], export.as_str());
        assert_eq!(reply.body["data"]["status"], "Ready");
    }
    // A request that made a copy would have queued its job with its row, in one transaction:
    // still one job of the queue, and no second archive.
    let jobs: i64 =
        sqlx::query_scalar("SELECT count(*) FROM jobs WHERE queue = 'export-user-data'")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(jobs, 1, "no second export queued");
    assert_eq!(
        stored(&app, &sam).await,
        (1, chunks),
        "one archive, stored once"
    );

    // Once downloaded, a new one may be made.
    let reply = download(&app, &sam, &export).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let next = post(&app, "/user/exportData", &sam, json!({})).await;
    assert_eq!(next.status, 200, "{}", next.body);
    assert_ne!(next.body["data"]["id"], export.as_str());
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
    let team = post(&app, "/team", &sam, json!({"name": "Crew"})).await;
    assert_eq!(team.status, 200, "{}", team.body);
    let key = post(
        &app,
        "/apiKey",
        &sam,
        json!({"name": "laptop", "limitHard": 1000, "permissions": ["ReadPrivate"]}),
    )
    .await;
    assert_eq!(key.status, 200, "{}", key.body);
    let secret = key.body["data"]["key"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let avatar = crate::files::upload(
        &app,
        &sam,
        &[
            ("purpose", b"profile"),
            ("file", &crate::files::png(64, 64)),
        ],
    )
    .await;
    assert_eq!(avatar.status, 200, "{}", avatar.body);

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
    // Their teams, their keys (what each may do, never the key) and their files.
    assert_eq!(archive["teams"][0]["name"], "Crew");
    assert_eq!(archive["teams"][0]["isAdmin"], true);
    assert_eq!(archive["apiKeys"][0]["name"], "laptop");
    assert_eq!(archive["apiKeys"][0]["permissions"], json!(["ReadPrivate"]));
    assert!(
        !secret.is_empty() && !reply.text.contains(&secret),
        "no key in the archive"
    );
    assert!(!reply.text.contains("keyHash"));
    let file = avatar.body["data"]["id"].as_str().unwrap();
    assert_eq!(archive["files"][0]["id"], file);
    assert_eq!(archive["files"][0]["url"], format!("/api/v2/file/{file}"));

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

#[tokio::test]
async fn a_ready_export_not_downloaded_in_time_expires_and_its_archive_is_deleted() {
    let app = spawn_app_with(
        |s| {
            s.exports.chunk_bytes = 64;
            s.exports.ready_ttl_secs = 1;
            s.exports.expire_every_secs = 1;
        },
        None,
    )
    .await;
    let sam = user(&app, "Sam").await;
    create_chat(&app, &sam, &[], json!({"name": "Notes"})).await;
    let first = post(&app, "/user/exportData", &sam, json!({})).await;
    let export = first.body["data"]["id"].as_str().unwrap().to_owned();
    made(&app, &export).await;
    assert!(stored(&app, &sam).await.1 > 0, "the archive is stored");

    // Nobody downloads it: the scheduled job expires it and deletes what was stored.
    let id: i64 = export.parse().unwrap();
    wait_until(Duration::from_secs(20), "the archive to expire", || async {
        let (status, chunks): (String, i64) = sqlx::query_as(
            "SELECT status, (SELECT count(*) FROM user_export_chunks WHERE export_id = $1)
               FROM user_exports WHERE id = $1",
        )
        .bind(id)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
        status == "Expired" && chunks == 0
    })
    .await;
    let late = get(&app, &format!("/user/exportData/{export}"), Some(&sam)).await;
    assert_eq!((late.status, code(&late)), (409, json!("ExportNotReady")));
    assert!(
        late.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("Expired")
    );
    // A new one may be asked for.
    let next = post(&app, "/user/exportData", &sam, json!({})).await;
    assert_eq!(next.status, 200, "{}", next.body);
    assert_ne!(next.body["data"]["id"], export.as_str());
}

/// Waits until the import is no longer Pending; then its status as its owner reads it.
async fn import_done(app: &TestApp, who: &User, import: &str) -> Reply {
    let id: i64 = import.parse().unwrap();
    wait_until(
        Duration::from_secs(20),
        "the import to be written",
        || async {
            let status: String =
                sqlx::query_scalar("SELECT status FROM user_imports WHERE id = $1")
                    .bind(id)
                    .fetch_one(&app.db.pool)
                    .await
                    .unwrap();
            status != "Pending"
        },
    )
    .await;
    get(app, &format!("/user/importData/{import}"), Some(who)).await
}

#[tokio::test]
async fn an_import_recreates_an_export_under_the_importer_with_new_ids() {
    let app = crate::runs::run_app().await;
    let sam = user(&app, "Sam").await;
    let kim = user(&app, "Kim").await;
    let notes = create_chat(&app, &sam, &[], json!({"name": "Notes"})).await;
    let first = post(
        &app,
        "/chatMessage",
        &sam,
        json!({"chatId": notes, "text": "first"}),
    )
    .await;
    let first = first.body["data"]["id"].as_str().unwrap().to_owned();
    let reply = post(
        &app,
        "/chatMessage",
        &sam,
        json!({"chatId": notes, "text": "a reply", "parentId": first}),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let graph = json!({"graph": {"__type": "Graph-1.0", "schema": {
        "start": "w", "nodes": [{"id": "w", "kind": "wait", "durationMs": 1}], "edges": []}}});
    let run = crate::runs::run_of(&app, &sam, graph, json!({"n": 1})).await;
    crate::runs::until_status(&app, &sam, &run, "Completed").await;
    let put = crate::chat::api(
        &app,
        reqwest::Method::PUT,
        "/profile",
        Some(&sam),
        Some(json!({"bio": "I write", "theme": "dark"})),
    )
    .await;
    assert_eq!(put.status, 200, "{}", put.body);

    let started = post(&app, "/user/exportData", &sam, json!({})).await;
    let export = started.body["data"]["id"].as_str().unwrap().to_owned();
    let archive: Value = serde_json::from_str(&download(&app, &sam, &export).await.text).unwrap();

    // Kim imports Sam's archive.
    let Reply { status, body, .. } = post(&app, "/user/importData", &kim, archive.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["status"], "Pending");
    let import = body["data"]["id"].as_str().unwrap().to_owned();
    // Not Sam's to read.
    let other = get(&app, &format!("/user/importData/{import}"), Some(&sam)).await;
    assert_eq!((other.status, code(&other)), (404, json!("ImportNotFound")));
    let done = import_done(&app, &kim, &import).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(done.body["data"]["status"], "Done", "{}", done.body);
    assert_eq!(
        done.body["data"]["counts"],
        json!({"routines": 1, "versions": 1, "chats": 1, "messages": 2, "runs": 1})
    );

    let kim_id: i64 = kim.id.parse().unwrap();
    let pool = &app.db.pool;
    // The chat is Kim's, under a new id, with Kim in it; the messages Sam wrote are Kim's now
    // and the reply still answers the first.
    let (chat, name): (i64, String) =
        sqlx::query_as("SELECT id, name FROM chats WHERE creator_id = $1")
            .bind(kim_id)
            .fetch_one(pool)
            .await
            .unwrap();
    assert_ne!(chat.to_string(), notes);
    assert_eq!(name, "Notes");
    let listed = get(&app, &format!("/chatMessages?chatId={chat}"), Some(&kim)).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    let rows: Vec<(i64, Option<i64>, Option<i64>, String)> = sqlx::query_as(
        "SELECT id, user_id, parent_id, text FROM chat_messages WHERE chat_id = $1 ORDER BY id",
    )
    .bind(chat)
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!((rows[0].1, rows[0].3.as_str()), (Some(kim_id), "first"));
    assert_eq!(
        (rows[1].2, rows[1].3.as_str()),
        (Some(rows[0].0), "a reply")
    );
    assert_ne!(rows[0].0.to_string(), first);
    // The routine and the run are Kim's; the run names the new version.
    let (version, run_status, inputs): (Option<i64>, String, Value) =
        sqlx::query_as("SELECT resource_version_id, status, inputs FROM runs WHERE user_id = $1")
            .bind(kim_id)
            .fetch_one(pool)
            .await
            .unwrap();
    assert_eq!(
        (run_status.as_str(), inputs),
        ("Completed", json!({"n": 1}))
    );
    let owner: i64 = sqlx::query_scalar(
        "SELECT r.owner_id FROM resource_versions v JOIN resources r ON r.id = v.resource_id
          WHERE v.id = $1",
    )
    .bind(version.expect("the run names its version"))
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(owner, kim_id);
    let profile = get(&app, "/profile", Some(&kim)).await;
    assert_eq!(profile.body["data"]["bio"], "I write");
    assert_eq!(
        profile.body["data"]["name"], "Kim",
        "the name is not imported"
    );
    let kept: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT archive FROM user_imports WHERE id = $1")
            .bind(import.parse::<i64>().unwrap())
            .fetch_one(pool)
            .await
            .unwrap();
    assert!(kept.is_none(), "the archive is dropped once written");
}

#[tokio::test]
async fn a_bad_or_too_large_archive_is_refused_and_writes_nothing() {
    let app = spawn_app_with(
        |s| {
            s.exports.import_max_bytes = 2048;
            s.jobs.enabled = false;
        },
        None,
    )
    .await;
    let kim = user(&app, "Kim").await;
    let archive = |messages: Value| {
        json!({"format": "vrooli-user-export", "version": 1, "profile": [{"id": "1"}],
               "chats": [{"id": "5", "name": "a"}], "messages": messages})
    };
    let dangling = post(
        &app,
        "/user/importData",
        &kim,
        archive(json!([{"id": "7", "chatId": "6", "text": "x"}])),
    )
    .await;
    assert_eq!(
        (dangling.status, code(&dangling)),
        (422, json!("InvalidArchive"))
    );
    assert!(
        dangling.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("chat 6")
    );
    let other = post(&app, "/user/importData", &kim, json!({"format": "zip"})).await;
    assert_eq!((other.status, code(&other)), (422, json!("InvalidArchive")));
    let big = post(
        &app,
        "/user/importData",
        &kim,
        archive(json!([{"id": "7", "chatId": "5", "text": "x".repeat(3000)}])),
    )
    .await;
    assert_eq!((big.status, code(&big)), (413, json!("BodyTooLarge")));
    // Sent as text rather than JSON, the limit holds all the same.
    let text = app
        .client
        .post(app.url("/api/v2/user/importData"))
        .header("cookie", format!("{}={}", crate::auth::COOKIE, kim.token))
        .header("content-type", "text/plain")
        .body("y".repeat(5000))
        .send()
        .await
        .unwrap();
    assert_eq!(text.status(), 413);
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM user_imports")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(rows, 0, "nothing written");

    // One at a time (no job workers here: the first stays Pending).
    let ok = post(&app, "/user/importData", &kim, archive(json!([]))).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let again = post(&app, "/user/importData", &kim, archive(json!([]))).await;
    assert_eq!(
        (again.status, code(&again)),
        (409, json!("ImportInProgress"))
    );
}

/// An import whose job cannot write it ends `Failed`, saying so, and does not block the next
/// (issue 34, A7). The archive is one an earlier server let through (a NUL in a message, which
/// PostgreSQL refuses): stored and queued as `POST /user/importData` did, then left to the
/// node's own job workers.
#[tokio::test]
async fn an_import_whose_job_dies_fails_and_the_next_is_taken() {
    let app = spawn_app_with(|_| {}, None).await;
    let kim = user(&app, "Kim").await;
    let archive = br#"{"format":"vrooli-user-export","version":1,"chats":[{"id":"5","name":"a"}],
        "messages":[{"id":"7","chatId":"5","text":"a\u0000b"}]}"#;
    assert!(
        vrooli::imports::Archive::parse(archive).is_ok(),
        "it passes the check"
    );
    let import: i64 = 7_000_001;
    sqlx::query("INSERT INTO user_imports (id, user_id, bytes, archive) VALUES ($1, $2, $3, $4)")
        .bind(import)
        .bind(kim.id.parse::<i64>().unwrap())
        .bind(archive.len() as i64)
        .bind(&archive[..])
        .execute(&app.db.pool)
        .await
        .unwrap();
    let jobs = vrooli::jobs::JobStore::new(
        app.db.pool.clone(),
        std::sync::Arc::new(vrooli::ids::Snowflake::new(98).unwrap()),
        std::sync::Arc::new(vrooli::jobs::SystemClock),
        "import-test",
        5,
    );
    use vrooli::jobs::JobHandler;
    let job = vrooli::imports::ImportUserData::job(&vrooli::imports::ImportPayload {
        import_id: import.to_string(),
    })
    .unwrap();
    jobs.enqueue(job).await.unwrap();

    let done = import_done(&app, &kim, &import.to_string()).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(done.body["data"]["status"], "Failed", "{}", done.body);
    assert!(
        done.body["data"]["error"]
            .as_str()
            .is_some_and(|e| !e.is_empty()),
        "it says why: {}",
        done.body
    );
    let archive_kept: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT archive FROM user_imports WHERE id = $1")
            .bind(import)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert!(archive_kept.is_none(), "the bytes are dropped");
    let next = post(
        &app,
        "/user/importData",
        &kim,
        json!({"format": "vrooli-user-export", "version": 1, "chats": [{"id": "5", "name": "a"}]}),
    )
    .await;
    assert_eq!(next.status, 200, "the next import is taken: {}", next.body);
}

/// A Pending import whose job an operator cancelled (nothing tells the import) does not block
/// the next: it is failed when its owner starts another (issue 34, A7).
#[tokio::test]
async fn an_import_whose_job_was_cancelled_does_not_block_the_next() {
    let key = "s3cret-system-key";
    let app = spawn_app_with(
        |s| {
            s.admin.system_key = key.to_string().into();
            s.jobs.enabled = false;
        },
        None,
    )
    .await;
    let kim = user(&app, "Kim").await;
    let archive = json!({"format": "vrooli-user-export", "version": 1, "chats": []});
    let first = post(&app, "/user/importData", &kim, archive.clone()).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let import = first.body["data"]["id"].as_str().unwrap().to_owned();
    let job: i64 = sqlx::query_scalar("SELECT id FROM jobs WHERE kind = 'import-user-data'")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    let cancelled = app
        .client
        .post(app.url(&format!("/api/v2/admin/jobs/{job}/cancel")))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), 200);

    let next = post(&app, "/user/importData", &kim, archive).await;
    assert_eq!(next.status, 200, "the next import is taken: {}", next.body);
    let old = get(&app, &format!("/user/importData/{import}"), Some(&kim)).await;
    assert_eq!(old.body["data"]["status"], "Failed", "{}", old.body);
}
