//! What the load benches share: a release `vrooli` node started as a child process on a free
//! port, sharing the bench's database and Redis prefix, and the database URL without its name.

use std::time::Duration;

use secrecy::ExposeSecret;
use vrooli::config::Settings;

pub struct Node {
    pub base: String,
    /// Its worker id (the runs bench finds a run's owner by it; ws_load has no use for it).
    #[allow(dead_code)]
    pub id: u16,
    pub process: tokio::process::Child,
}

/// Starts node `id` with the bench's settings plus `env` (each bench's own), and waits until it
/// answers `/healthcheck`.
pub async fn start_node(
    settings: &Settings,
    db_url: &str,
    prefix: &str,
    id: u16,
    dir: &std::path::Path,
    env: &[(&str, &str)],
) -> Node {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // VROOLI_BIN: another build to measure (e.g. the commit before a change), same bench.
    let binary =
        std::env::var("VROOLI_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_vrooli").into());
    let mut command = tokio::process::Command::new(binary);
    command
        .arg("serve")
        .env("RUST_LOG", "warn")
        .env("VROOLI__LOG__LEVEL", "warn")
        .env("VROOLI__LOG__ACCESS_LOG", "false")
        .env("VROOLI__DATABASE__URL", db_url)
        .env("VROOLI__REDIS__URL", settings.redis.url.expose_secret())
        .env("VROOLI__REDIS__KEY_PREFIX", prefix)
        .env("VROOLI__NODE__WORKER_ID", id.to_string())
        .env("VROOLI__SERVER__HOST", "127.0.0.1")
        .env("VROOLI__SERVER__PORT", port.to_string())
        .env("VROOLI__AUTH__KEY_DIR", dir.join("keys"))
        .env("VROOLI__EMAIL__OUTBOX_DIR", dir.join("email"))
        .env("VROOLI__SMS__OUTBOX_DIR", dir.join("sms"))
        .env("VROOLI__RATE_LIMIT__ENABLED", "false");
    for (name, value) in env {
        command.env(name, value);
    }
    let process = command
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("vrooli binary");
    let base = format!("http://127.0.0.1:{port}");
    // The node takes a few seconds to migrate and bind: poll its health (there is nothing to
    // wait on from outside the process).
    for _ in 0..300 {
        if reqwest::get(format!("{base}/healthcheck")).await.is_ok() {
            return Node { base, id, process };
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("node {id} did not start");
}

/// `postgres://user@host:port/db` → `postgres://user@host:port/`.
pub fn url_without_db(url: &str) -> String {
    let (head, _) = url.rsplit_once('/').expect("database url has a path");
    format!("{head}/")
}
