use std::time::Duration;

use crate::helpers::Reply;
use crate::helpers::{spawn_app, spawn_app_with};

#[tokio::test]
async fn health_is_operational_with_database_and_redis() {
    let app = spawn_app().await;
    let Reply { status, body, .. } = app.healthcheck().await;
    assert_eq!(status, 200, "{body}");
    assert_ne!(body["status"], "Down", "{body}");
    assert_eq!(body["mode"], "cluster");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    for service in [
        "api", "database", "node", "queues", "redis", "memory", "system",
    ] {
        let s = &body["services"][service];
        assert!(s["lastChecked"].is_string(), "{service}: {body}");
        assert_eq!(s["healthy"], true, "{service}: {body}");
    }
    assert_eq!(
        body["services"]["database"]["status"], "Operational",
        "{body}"
    );
    assert_eq!(body["services"]["redis"]["status"], "Operational", "{body}");
    assert_eq!(body["services"]["api"]["status"], "Operational", "{body}");
    assert!(
        body["services"]["database"]["details"]["pool"]["max"]
            .as_u64()
            .unwrap()
            >= 1
    );
}

#[tokio::test]
async fn without_redis_the_node_runs_single_node() {
    let app = spawn_app_with(|s| s.redis.url = "".to_string().into(), None).await;
    let Reply { status, body, .. } = app.healthcheck().await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["mode"], "single-node");
    assert!(body["services"].get("redis").is_none(), "{body}");
    assert_eq!(
        body["services"]["database"]["status"], "Operational",
        "{body}"
    );
}

#[tokio::test]
async fn health_is_503_when_the_database_is_gone() {
    let app = spawn_app_with(
        |s| {
            s.health.cache_ttl_ms = 0;
            s.database.acquire_timeout_ms = 500;
        },
        None,
    )
    .await;
    assert_eq!(app.healthcheck().await.status, 200);

    app.db.drop_now().await;

    let Reply { status, body, .. } = app.healthcheck().await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "Down");
    assert_eq!(body["services"]["database"]["status"], "Down", "{body}");
    assert_eq!(body["services"]["database"]["healthy"], false);
    // The public answer names no internals.
    assert!(!body.to_string().contains(&app.db.name), "{body}");
}

#[tokio::test]
async fn results_are_cached_per_check() {
    let app = spawn_app_with(|s| s.health.cache_ttl_ms = 60_000, None).await;
    let Reply { body: first, .. } = app.healthcheck().await;
    let Reply { body: second, .. } = app.healthcheck().await;
    assert_eq!(
        first["services"]["database"]["lastChecked"],
        second["services"]["database"]["lastChecked"]
    );
    assert_ne!(first["timestamp"], second["timestamp"]);
}

/// The database check grades the wait for a connection, not how full the pool is: a full pool
/// that frees a connection at once is Operational, one that keeps the check waiting is Degraded.
#[tokio::test]
async fn the_database_reads_degraded_only_while_a_connection_is_waited_for() {
    let app = spawn_app().await;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&app.db.url)
        .await
        .expect("pool");
    let check = vrooli::health::Check::Database {
        pool: pool.clone(),
        wait_degraded: Duration::from_millis(500),
    };
    // The pool's one connection is in use when the check starts, and is handed back after
    // `hold` (the sleep is the fault's length, not a wait for something): 10 ms is a burst,
    // 900 ms is requests queueing (both far from the 500 ms line, so a slow machine does not
    // blur them).
    for (hold, expected) in [(10, "Operational"), (900, "Degraded")] {
        let held = pool.acquire().await.expect("connection");
        let release = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(hold)).await;
            drop(held);
        });
        let health = serde_json::to_value(check.run().await).unwrap();
        release.await.unwrap();
        assert_eq!(health["status"], expected, "held {hold} ms: {health}");
        assert_eq!(health["details"]["pool"]["inUse"], 1, "{health}");
        assert_eq!(health["details"]["pool"]["max"], 1, "{health}");
        let waited = health["details"]["waitMs"].as_f64().unwrap();
        assert!(waited >= hold as f64 * 0.9, "held {hold} ms: {health}");
    }
}
