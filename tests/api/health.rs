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
