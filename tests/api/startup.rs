use vrooli::startup::{Application, StartupError};

use crate::helpers::{TestDb, test_settings};

#[tokio::test]
async fn configured_but_unreachable_redis_fails_startup_clearly() {
    let mut settings = test_settings();
    let db = TestDb::new(&settings).await;
    settings.database.url = db.url.clone().into();
    settings.redis.url = "redis://127.0.0.1:1".to_string().into();
    settings.redis.connect_backoff_initial_ms = 10;
    let error = Application::build(settings)
        .await
        .err()
        .expect("start-up fails");
    assert!(matches!(error, StartupError::Redis(_)), "{error}");
    let message = error.to_string();
    assert!(
        message.contains("could not connect to Redis at 127.0.0.1:1"),
        "{message}"
    );
    assert!(message.contains("after 2 attempts"), "{message}");
}

#[tokio::test]
async fn unreachable_database_fails_startup_after_retries() {
    let mut settings = test_settings();
    settings.database.url = "postgres://vrooli:secretpw@127.0.0.1:1/vrooli"
        .to_string()
        .into();
    settings.database.connect_backoff_initial_ms = 10;
    let error = Application::build(settings)
        .await
        .err()
        .expect("start-up fails");
    let message = error.to_string();
    assert!(
        message.contains("could not connect to PostgreSQL at 127.0.0.1:1/vrooli after 2 attempts"),
        "{message}"
    );
    assert!(!message.contains("secretpw"), "{message}");
}

#[tokio::test]
async fn a_second_node_with_the_same_worker_id_is_refused() {
    let app = crate::helpers::spawn_app_with(|s| s.node.worker_id = 9, None).await;
    let mut twin = app.settings.clone();
    twin.node.lease_wait_secs = 0;
    let error = Application::build(twin.clone())
        .await
        .err()
        .expect("the twin is refused");
    assert!(matches!(error, StartupError::Lease(_)), "{error}");
    assert!(
        error
            .to_string()
            .contains("node.worker_id 9 is held by another running node"),
        "{error}"
    );

    // Another worker id on the same database is fine.
    let mut other = app.settings.clone();
    other.node.worker_id = 10;
    let second = Application::build(other)
        .await
        .expect("a node with its own worker id starts");
    drop(second);

    // After a graceful stop the worker id is free at once.
    app.shutdown.shutdown().await;
    let mut app = app;
    app.server.take().unwrap().await.unwrap().unwrap();
    let leases: i64 = sqlx::query_scalar("SELECT count(*) FROM node_leases WHERE worker_id = 9")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(leases, 0);
    let successor = Application::build(twin)
        .await
        .expect("the successor takes the freed worker id");
    drop(successor);
}

#[tokio::test]
async fn an_expired_lease_is_taken_over() {
    let app = crate::helpers::spawn_app_with(|s| s.node.worker_id = 11, None).await;
    // As if node 12's previous process crashed: its lease is past its expiry.
    sqlx::query("INSERT INTO node_leases (worker_id, instance_id, hostname, expires_at) VALUES (12, 'dead', 'gone', now() - interval '1 second')")
        .execute(&app.db.pool)
        .await
        .unwrap();
    let mut settings = app.settings.clone();
    settings.node.worker_id = 12;
    settings.node.lease_wait_secs = 0;
    let node = Application::build(settings)
        .await
        .expect("the expired lease is taken over");
    let holder: String =
        sqlx::query_scalar("SELECT instance_id FROM node_leases WHERE worker_id = 12")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_ne!(holder, "dead");
    drop(node);
}

#[tokio::test]
async fn the_listener_gets_the_configured_backlog() {
    let app = crate::helpers::spawn_app_with(|s| s.server.backlog = 1000, None).await;
    // `ss` shows a listening socket's accept backlog as its Send-Q.
    let out = std::process::Command::new("ss")
        .args(["-ltnH", &format!("sport = :{}", app.port)])
        .output()
        .expect("ss (iproute2) runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let send_q: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    let cap: u32 = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(4096);
    assert_eq!(send_q, vec![1000.min(cap).to_string()], "{text}");
}
