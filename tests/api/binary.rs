//! The `vrooli` binary itself: config errors exit non-zero naming the key; SIGTERM exits 0.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::helpers::{TestDb, random_suffix, test_settings};

fn vrooli() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_vrooli"));
    let outbox = std::env::temp_dir().join("vrooli-test-binary-outbox");
    command
        .env_remove("RUST_LOG")
        .env("VROOLI__EMAIL__OUTBOX_DIR", outbox.join("email"))
        .env("VROOLI__SMS__OUTBOX_DIR", outbox.join("sms"))
        .env("VROOLI__AUTH__KEY_DIR", outbox.join("keys"))
        .kill_on_drop(true);
    command
}

async fn expect_config_error(command: &mut Command, key: &str) {
    let output = command.output().await.expect("vrooli runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    assert!(stderr.contains(key), "expected {key} in: {stderr}");
}

#[tokio::test]
async fn config_errors_exit_non_zero_and_name_the_key() {
    expect_config_error(
        vrooli()
            .arg("serve")
            .env("VROOLI__SERVER__PORT", "not-a-port"),
        "server.port",
    )
    .await;
    expect_config_error(
        vrooli().arg("serve").env("VROOLI__NODE__WORKER_ID", "4096"),
        "node.worker_id",
    )
    .await;
    expect_config_error(
        vrooli().arg("migrate").env("VROOLI__DATABASE__URL", ""),
        "database.url",
    )
    .await;
    expect_config_error(
        vrooli()
            .arg("serve")
            .env("VROOLI__DATABASE__URL", "mysql://x"),
        "database.url",
    )
    .await;
    expect_config_error(
        vrooli().arg("serve").env("VROOLI__SERVER__PROT", "1"),
        "prot",
    )
    .await;

    let dir = std::env::temp_dir().join(format!("vrooli-config-{}", random_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.toml");
    std::fs::write(&file, "[server]\nprot = 1\n").unwrap();
    // --config is global: before or after the subcommand.
    expect_config_error(vrooli().arg("--config").arg(&file).arg("serve"), "prot").await;
    expect_config_error(vrooli().arg("serve").arg("--config").arg(&file), "prot").await;
    std::fs::write(&file, "[log]\nformat = \"xml\"\n").unwrap();
    expect_config_error(
        vrooli().arg("--config").arg(&file).arg("serve"),
        "log.format",
    )
    .await;
    expect_config_error(
        vrooli()
            .arg("--config")
            .arg(dir.join("missing.toml"))
            .arg("serve"),
        "missing.toml",
    )
    .await;
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn version_flag_prints_the_version() {
    let output = vrooli().arg("--version").output().await.unwrap();
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!("vrooli {}", env!("CARGO_PKG_VERSION"))
    );
}

#[tokio::test]
async fn sigterm_drains_and_exits_zero() {
    let settings = test_settings();
    let db = TestDb::new(&settings).await;
    let mut child = vrooli()
        .arg("serve")
        .env("VROOLI__DATABASE__URL", &db.url)
        .env("VROOLI__SERVER__HOST", "127.0.0.1")
        .env("VROOLI__SERVER__PORT", "0")
        .env("VROOLI__SERVER__WORKERS", "1")
        .env("VROOLI__REDIS__KEY_PREFIX", &settings.redis.key_prefix)
        .env("VROOLI__LOG__FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("vrooli serve starts");

    // Read the log until the server says where it listens; every start-up step logs its duration.
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut steps = Vec::new();
    let port = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let event: serde_json::Value =
                serde_json::from_str(&line).unwrap_or_else(|_| panic!("JSON log line: {line}"));
            if event["message"] == "startup step finished" {
                assert!(event["elapsed_ms"].is_number(), "{line}");
                steps.push(event["step"].as_str().unwrap().to_string());
            }
            if event["message"] == "http server listening" {
                return event["port"].as_u64().unwrap();
            }
        }
        panic!("server exited before listening")
    })
    .await
    .expect("server listens within 60 s");
    assert_eq!(
        steps,
        [
            "config",
            "snowflake",
            "postgres",
            "migrations",
            "node-lease",
            "seed",
            "redis",
            "clock",
            "auth",
            "actors",
            "services",
            "jobs",
            "http"
        ]
    );

    let health = reqwest::get(format!("http://127.0.0.1:{port}/healthcheck"))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let page = reqwest::get(format!("http://127.0.0.1:{port}/api/v2/openapi.json"))
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let request_id = page.headers()["x-request-id"].to_str().unwrap().to_string();

    // The access log line for that request carries its request id (the span's field) and the
    // node; the health check's line came first but is at debug (a balancer polls it).
    let access = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let event: serde_json::Value = serde_json::from_str(&line).unwrap();
            if event["message"] == "request finished" {
                return event;
            }
        }
        panic!("no access log line")
    })
    .await
    .expect("access log within 10 s");
    assert_eq!(
        access["span"]["request_id"],
        request_id.as_str(),
        "{access}"
    );
    assert_eq!(access["route"], "/api/v2/openapi.json", "{access}");
    assert_eq!(access["status"], 200, "{access}");
    assert!(
        access["node"].is_number(),
        "every line names its node: {access}"
    );
    assert!(access["span"].get("user_id").is_none(), "{access}");

    // Passwords never reach the logs: sign up, then fail a login, with recognisable passwords.
    let client = reqwest::Client::new();
    let api = |path: &str| format!("http://127.0.0.1:{port}/api/v2{path}");
    let signup = client
        .post(api("/auth/email/signup"))
        .json(&serde_json::json!({"name": "Sam", "email": "sam@example.org", "password": "Pa55-unique-secret-9271"}))
        .send()
        .await
        .unwrap();
    assert_eq!(signup.status(), 200);
    let token = signup
        .headers()
        .get_all("set-cookie")
        .iter()
        .find_map(|v| {
            v.to_str()
                .ok()?
                .strip_prefix("session-v2=")
                .map(|v| v.split(';').next().unwrap().to_owned())
        })
        .expect("session cookie");
    let user_id = signup.json::<serde_json::Value>().await.unwrap()["data"]["users"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // A signed-in request's lines carry the caller (the request span's `user_id`).
    let validated = client
        .post(api("/auth/validateSession"))
        .header("cookie", format!("session-v2={token}"))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(validated.status(), 200);
    // A token in /ws's query string (for clients that cannot set headers) is not logged either.
    let (ws, _) = tokio_tungstenite::connect_async(format!(
        "ws://127.0.0.1:{port}/ws?token={token}&client=test"
    ))
    .await
    .expect("WebSocket with a query token");
    drop(ws);
    let wrong = client
        .post(api("/auth/email/login"))
        .json(&serde_json::json!({"email": "sam@example.org", "password": "Wr0ng-unique-secret-5813"}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);

    let pid = child.id().unwrap().to_string();
    let kill = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(kill.success());
    // Keep draining stdout so the child never blocks on a full pipe; keep it to search.
    let rest = tokio::spawn(async move {
        let mut all = String::new();
        while let Ok(Some(line)) = lines.next_line().await {
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("exits within 30 s")
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let logs = rest.await.unwrap();
    assert!(logs.contains("request finished"), "{logs}");
    for secret in ["Pa55-unique-secret-9271", "Wr0ng-unique-secret-5813"] {
        assert!(!logs.contains(secret), "a password reached the logs");
    }
    assert!(
        logs.contains("/ws?client=test"),
        "the rest of the query is kept"
    );
    assert!(!logs.contains(&token), "a session token reached the logs");
    let validated = logs
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .find(|event| {
            event["message"] == "request finished"
                && event["route"] == "/api/v2/auth/validateSession"
        })
        .expect("the signed-in request's access log line");
    assert_eq!(
        validated["span"]["user_id"],
        user_id.as_str(),
        "{validated}"
    );
}

#[tokio::test]
async fn migrate_then_seed_prepare_an_empty_database() {
    let settings = test_settings();
    let db = TestDb::empty(&settings).await;
    let run = |command: &'static str| {
        vrooli()
            .arg(command)
            .env("VROOLI__DATABASE__URL", &db.url)
            .env("VROOLI__SEED__ADMIN_EMAIL", "root@example.org")
            .output()
    };

    let migrated = run("migrate").await.unwrap();
    assert!(
        migrated.status.success(),
        "{}",
        String::from_utf8_lossy(&migrated.stderr)
    );
    let tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'
           AND table_name IN ('users', 'user_auth', 'emails', 'sessions', 'api_keys', 'teams', 'members')",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(tables, 7);
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(users, 0, "migrate does not seed");

    for _ in 0..2 {
        let seeded = run("seed").await.unwrap();
        assert!(
            seeded.status.success(),
            "{}",
            String::from_utf8_lossy(&seeded.stderr)
        );
    }
    let (users, emails): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM emails WHERE email_address = 'root@example.org')",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!((users, emails), (2, 1));
    // The seed released its worker id lease on the way out.
    let leases: i64 = sqlx::query_scalar("SELECT count(*) FROM node_leases")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(leases, 0);
}
