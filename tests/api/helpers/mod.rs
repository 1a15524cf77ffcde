//! `spawn_app()`: the real server, on a free port, with its own database and Redis prefix.
//!
//! Databases: the first test of a run migrates a template database named after the migrations'
//! checksums (`vrooli_tpl_<hash>`), under a PostgreSQL advisory lock so parallel test processes
//! build it once; every test then clones it (`CREATE DATABASE … TEMPLATE`, milliseconds) and drops
//! its clone when the `TestApp` is dropped.
//!
//! `request.rs`: the one request helper and its `Reply`; `db.rs`: the template and per-test
//! databases; `smtp.rs`: a real SMTP server (aiosmtpd). Endpoint helpers live beside their
//! tests (`chat/mod.rs`, `ws/mod.rs`, `runs/`).

use std::sync::Arc;
use std::time::Duration;

use secrecy::ExposeSecret;
use vrooli::config::{Settings, Sources};
use vrooli::startup::{Application, RouteHook, ShutdownHandle};

mod db;
mod request;
mod slow_link;
mod smtp;

pub use db::TestDb;
pub use request::{Auth, Reply, SendReply};
pub use slow_link::SlowLink;
pub use smtp::SmtpServer;

/// The machine, for tests that time what they measure: the multi-node balancer tests take it
/// one at a time, and so does the fuzzer, which keeps both cores busy. (Shared, the balancer
/// tests queued behind the fuzzer all started together when it ended, and one of them missed
/// its pace.)
pub static MACHINE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub settings: Settings,
    pub db: TestDb,
    pub client: reqwest::Client,
    pub shutdown: ShutdownHandle,
    pub server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// The one request helper: `method` on `/api/v2{path}` as `auth`, with an optional JSON
    /// body. Endpoint helpers (`chat::post`, `chat::create_chat`, …) are built on it.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        auth: Auth<'_>,
        body: Option<&serde_json::Value>,
    ) -> Reply {
        let mut request = self
            .client
            .request(method, self.url(&format!("/api/v2{path}")));
        request = match auth {
            Auth::Nobody => request,
            Auth::Cookie(token) => {
                request.header("cookie", format!("{}={token}", crate::auth::COOKIE))
            }
            Auth::ApiKey(key) => request.header("x-api-key", key),
        };
        if let Some(body) = body {
            request = request.json(body);
        }
        Reply::of(request).await
    }

    /// `GET path` (the whole path: `/healthcheck`, `/api/v2/…`) as nobody.
    pub async fn get(&self, path: &str) -> Reply {
        Reply::of(self.client.get(self.url(path))).await
    }

    /// `GET path` with the system key, as an operator (or Prometheus) calls it.
    pub async fn get_as_system(&self, path: &str) -> Reply {
        let request = self
            .client
            .get(self.url(path))
            .bearer_auth(self.settings.admin.system_key.expose_secret());
        Reply::of(request).await
    }

    /// The metrics text (the route needs the system key).
    pub async fn metrics(&self) -> String {
        let reply = self.get_as_system("/metrics").await;
        assert_eq!(reply.status, 200, "/metrics");
        reply.text
    }

    /// The full health report, details included (an operator's view, with the system key).
    pub async fn healthcheck(&self) -> Reply {
        self.get_as_system("/healthcheck").await
    }
}

/// Settings every test starts from: the repository defaults plus the environment (so
/// `VROOLI__DATABASE__URL` / `VROOLI__REDIS__URL` point tests elsewhere), on a free local port,
/// with a Redis prefix of its own.
pub fn test_settings() -> Settings {
    let mut settings = Settings::load(&Sources::default()).expect("test settings load");
    settings.server.host = "127.0.0.1".into();
    settings.server.port = 0;
    // Tests are a development environment (localhost origins); `security_defaults` tests the
    // production defaults.
    settings.server.development = true;
    settings.server.workers = 2;
    settings.server.shutdown_timeout_secs = 10;
    // Tests stop nodes at once; the drain phase has its own test.
    settings.server.drain_secs = 0;
    settings.redis.key_prefix = format!("test:{}:", random_suffix());
    settings.database.connect_attempts = 2;
    settings.redis.connect_attempts = 2;
    // Keep the mail and SMS fallbacks out of the working tree.
    let outbox = std::env::temp_dir().join(format!("vrooli-test-outbox-{}", random_suffix()));
    settings.email.outbox_dir = outbox.join("email");
    settings.sms.outbox_dir = outbox.join("sms");
    settings.auth.key_dir = outbox.join("keys");
    settings.storage.local_dir = outbox.join("files").to_string_lossy().into_owned();
    // Operators' routes (/metrics, the health report's details, /api/v2/admin) need a key.
    settings.admin.system_key = "system-key-for-tests".to_string().into();
    // Tests make many requests from one address; the rate-limit tests turn it back on.
    settings.rate_limit.enabled = false;
    // The node runs in this test process: `code` steps need the real binary as their sandbox.
    settings.sandbox.program = env!("CARGO_BIN_EXE_vrooli").into();
    settings
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}, None).await
}

/// Starts the server after `customize` has adjusted its settings, with optional extra routes.
pub async fn spawn_app_with(
    customize: impl FnOnce(&mut Settings),
    routes: Option<RouteHook>,
) -> TestApp {
    let mut settings = test_settings();
    let db = TestDb::new(&settings).await;
    settings.database.url = db.url.clone().into();
    customize(&mut settings);
    // TEST_LOG=1 shows the server's logs (pretty) while debugging a test.
    if std::env::var_os("TEST_LOG").is_some() {
        let mut log = settings.log.clone();
        log.format = vrooli::config::LogFormat::Pretty;
        // The test process keeps its logging thread until it exits.
        std::mem::forget(vrooli::telemetry::init(&log, settings.node.worker_id));
    }
    let app = Application::build_with(settings.clone(), routes)
        .await
        .expect("application builds");
    let port = app.port();
    let shutdown = app.shutdown_handle();
    let server = tokio::spawn(app.run(false));
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        settings,
        db,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        shutdown,
        server: Some(server),
    }
}

pub fn random_suffix() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..12)
        .map(|_| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[rng.random_range(0..36)]))
        .collect()
}

/// Waits for `condition` to hold, checking every 20 ms, failing after `timeout`.
pub async fn wait_until<F, Fut>(timeout: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A route hook from a closure.
pub fn routes(
    f: impl Fn(&mut actix_web::web::ServiceConfig) + Send + Sync + 'static,
) -> Option<RouteHook> {
    Some(Arc::new(f))
}

/// Another node of `app`'s cluster: same database, Redis, key prefix and signing keys; its own
/// worker id and port. Stop it with [`SecondNode::stop`].
pub struct SecondNode {
    pub address: String,
    shutdown: ShutdownHandle,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl SecondNode {
    pub async fn start(app: &TestApp) -> Self {
        Self::start_as(app, 1).await
    }

    /// The `n`th extra node (worker id `app`'s + `n`).
    pub async fn start_as(app: &TestApp, n: u16) -> Self {
        Self::start_with(app, n, |_| {}).await
    }

    /// The `n`th extra node, with its settings adjusted (e.g. no job workers).
    pub async fn start_with(app: &TestApp, n: u16, customize: impl FnOnce(&mut Settings)) -> Self {
        let mut settings = app.settings.clone();
        customize(&mut settings);
        settings.node.worker_id = app.settings.node.worker_id + n;
        let node = Application::build(settings).await.expect("second node");
        let address = format!("http://127.0.0.1:{}", node.port());
        let shutdown = node.shutdown_handle();
        let server = tokio::spawn(node.run(false));
        Self {
            address,
            shutdown,
            server,
        }
    }

    pub async fn stop(self) {
        self.shutdown.shutdown().await;
        self.server
            .await
            .expect("node task")
            .expect("node exits cleanly");
    }
}

/// A server with Redis (cluster mode) or without it (single-node mode).
pub async fn spawn_app_with_redis(redis: bool) -> TestApp {
    spawn_app_with(
        |s| {
            if !redis {
                s.redis.url = String::new().into();
            }
        },
        None,
    )
    .await
}

/// A Redis server of a test's own, so it can be killed or restarted without disturbing other
/// tests (they share the machine's Redis).
pub struct PrivateRedis {
    pub port: u16,
    process: tokio::process::Child,
}

impl PrivateRedis {
    pub async fn start() -> Self {
        Self::start_on(free_port()).await
    }

    pub async fn start_on(port: u16) -> Self {
        let process = tokio::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server (scripts/setup.sh installs it)");
        wait_until(Duration::from_secs(10), "the private Redis", || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
        })
        .await;
        Self { port, process }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub async fn kill(&mut self) {
        self.process.kill().await.unwrap();
    }

    /// SIGSTOP: the server holds every connection open and answers nothing (a stalled Redis).
    pub fn pause(&self) {
        signal(self.process.id().expect("running"), "-STOP");
    }

    /// SIGCONT: it answers again, working through what queued up meanwhile.
    pub fn resume(&self) {
        signal(self.process.id().expect("running"), "-CONT");
    }

    /// Kills it and starts an empty one on the same port (what a restart without persistence
    /// looks like to clients).
    pub async fn restart(mut self) -> Self {
        self.kill().await;
        Self::start_on(self.port).await
    }
}

/// A local port nobody listens on right now (for a server a test starts).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Sends `sig` (as `kill` spells it: "-STOP", "-KILL", …) to a process.
pub fn signal(pid: u32, sig: &str) {
    let status = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill {sig} {pid}");
}
