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
