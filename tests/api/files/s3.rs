//! Files on S3: a real S3-compatible server (moto, started per test), presigned downloads after
//! the access check, and an unreachable store refused with a code.

use std::process::{Child, Command, Stdio};

use super::*;

/// A moto S3 server on a free port, killed when dropped.
struct Moto(Child, String);

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn moto() -> Moto {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("python3")
        .args([
            "-m",
            "moto.server",
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("moto runs (scripts/test.sh installs moto[server])");
    let url = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    wait_until(Duration::from_secs(30), "moto to listen", || async {
        client.get(&url).send().await.is_ok()
    })
    .await;
    Moto(child, url)
}

#[tokio::test]
async fn on_s3_files_are_stored_in_the_bucket_and_read_through_presigned_urls() {
    let s3 = moto().await;
    let client = reqwest::Client::new();
    let made = client
        .put(format!("{}/vrooli-files", s3.1))
        .send()
        .await
        .unwrap();
    assert!(made.status().is_success(), "bucket made: {}", made.status());
    let endpoint = s3.1.clone();
    let app = spawn_app_with(
        move |s| {
            s.storage.backend = vrooli::config::StorageBackend::S3;
            s.storage.s3.endpoint = endpoint;
            s.storage.s3.bucket = "vrooli-files".into();
            s.storage.s3.access_key_id = "test".into();
            s.storage.s3.secret_access_key = "test".to_string().into();
            s.storage.s3.path_style = true;
        },
        None,
    )
    .await;
    let sam = user(&app, "Sam").await;
    let kim = user(&app, "Kim").await;
    let Reply { status, body, .. } = upload(
        &app,
        &sam,
        &[("purpose", b"banner"), ("file", &png(1800, 600))],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let id = body["data"]["id"].as_str().unwrap().to_owned();
    // In the bucket under the original's names, each read through a short-lived presigned URL
    // after the access check.
    for (path, key, size) in [
        (
            format!("/api/v2/file/{id}"),
            format!("/{id}.png"),
            (1800, 600),
        ),
        (
            format!("/api/v2/file/{id}/1500x500"),
            format!("/{id}_1500x500.png"),
            (1500, 500),
        ),
        (
            format!("/api/v2/file/{id}/300x100"),
            format!("/{id}_300x100.png"),
            (300, 100),
        ),
    ] {
        let response = fetch(&app, &path, None).await;
        assert_eq!(response.status(), 302, "{path}");
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        assert!(
            location.contains(&format!("/vrooli-files{key}?")),
            "{location}"
        );
        assert!(location.contains("X-Amz-Signature"), "{location}");
        let bytes = client
            .get(&location)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let image = image::load_from_memory(&bytes).unwrap();
        assert_eq!((image.width(), image.height()), size);
    }
    // A private chat's attachment is no stranger's, on S3 too.
    let chat = create_chat(&app, &sam, &[], json!({"name": "Private"})).await;
    let note = upload(
        &app,
        &sam,
        &[
            ("purpose", b"attachment"),
            ("chatId", chat.as_bytes()),
            ("file", b"%PDF-1.7\n%%EOF"),
        ],
    )
    .await;
    assert_eq!(note.status, 200, "{}", note.body);
    let url = note.body["data"]["url"].as_str().unwrap().to_owned();
    assert_eq!(fetch(&app, &url, Some(&kim)).await.status(), 404);
    assert_eq!(fetch(&app, &url, Some(&sam)).await.status(), 302);
    let health = app.client.get(app.url("/healthcheck")).reply().await;
    assert_eq!(
        health.body["services"]["imageStorage"]["status"], "Operational",
        "{}",
        health.body
    );
    // The store gone: uploads answer 503 with a code and nothing becomes readable (the row it
    // began stays Uploading, for the orphan job).
    drop(s3);
    let failed = upload(
        &app,
        &sam,
        &[("purpose", b"profile"), ("file", &png(64, 64))],
    )
    .await;
    assert_eq!(
        (failed.status, code(&failed)),
        (503, json!("StorageUnavailable")),
        "{}",
        failed.body
    );
    let rows: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM files WHERE purpose = 'profile' AND status = 'Ready'",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(rows, 0, "nothing half-written");
}
