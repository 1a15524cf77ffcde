//! `spawn_app()`: the real server, on a free port, with its own database and Redis prefix.
//!
//! Databases: the first test of a run migrates a template database named after the migrations'
//! checksums (`vrooli_tpl_<hash>`), under a PostgreSQL advisory lock so parallel test processes
//! build it once; every test then clones it (`CREATE DATABASE … TEMPLATE`, milliseconds) and drops
//! its clone when the `TestApp` is dropped.
//!
//! Long on purpose (~440 lines): the one harness every API test uses (app, database, Redis,
//! nodes, waits); endpoint helpers live beside their tests (`chat/mod.rs`, `ws/mod.rs`).

use std::hash::{DefaultHasher, Hash, Hasher};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use secrecy::ExposeSecret;
use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, PgPool};
use tokio::sync::OnceCell;
use vrooli::config::{Settings, Sources};
use vrooli::startup::{Application, RouteHook, ShutdownHandle};

pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub settings: Settings,
    pub db: TestDb,
    pub client: reqwest::Client,
    pub shutdown: ShutdownHandle,
    pub server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

/// Who a request is from, as [`TestApp::call`] sends it.
#[derive(Clone, Copy, Debug)]
pub enum Auth<'a> {
    Nobody,
    /// A session token, sent as the browser sends it (the session cookie).
    Cookie(&'a str),
    /// An API key (`x-api-key`).
    ApiKey(&'a str),
}

/// A response, read once: its status, headers, text and JSON body (`Null` when not JSON).
/// What every request helper of these tests returns.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub body: serde_json::Value,
}

impl Reply {
    /// Sends `request` and reads its answer.
    pub async fn of(request: reqwest::RequestBuilder) -> Self {
        Self::read(request.send().await.expect("request sent")).await
    }

    pub async fn read(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
        Self {
            status,
            headers,
            text,
            body,
        }
    }
}

/// A hand-built request (its own headers, a raw body, another node) sent and read as a
/// [`Reply`]: `request.reply().await`.
pub trait SendReply {
    fn reply(self) -> impl std::future::Future<Output = Reply>;
}

impl SendReply for reqwest::RequestBuilder {
    fn reply(self) -> impl std::future::Future<Output = Reply> {
        Reply::of(self)
    }
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
    settings.redis.key_prefix = format!("test:{}:", random_suffix());
    settings.database.connect_attempts = 2;
    settings.redis.connect_attempts = 2;
    // Keep the mail and SMS fallbacks out of the working tree.
    let outbox = std::env::temp_dir().join(format!("vrooli-test-outbox-{}", random_suffix()));
    settings.email.outbox_dir = outbox.join("email");
    settings.sms.outbox_dir = outbox.join("sms");
    settings.auth.key_dir = outbox.join("keys");
    // Operators' routes (/metrics, the health report's details, /api/v2/admin) need a key.
    settings.admin.system_key = "system-key-for-tests".to_string().into();
    // Tests make many requests from one address; the rate-limit tests turn it back on.
    settings.rate_limit.enabled = false;
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
        vrooli::telemetry::init(&log);
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

/// A database of this test's own, cloned from the migrated template.
pub struct TestDb {
    pub name: String,
    pub url: String,
    pub pool: PgPool,
    admin: PgConnectOptions,
}

impl TestDb {
    /// A migrated database (a clone of the template).
    pub async fn new(settings: &Settings) -> Self {
        Self::create(settings, true).await
    }

    /// A database with nothing in it, for testing migrations themselves.
    pub async fn empty(settings: &Settings) -> Self {
        Self::create(settings, false).await
    }

    async fn create(settings: &Settings, migrated: bool) -> Self {
        let base = PgConnectOptions::from_str(settings.database.url.expose_secret())
            .expect("database.url");
        let admin = base.clone().database("postgres");
        let template = if migrated {
            template(&admin).await
        } else {
            "template0".to_string()
        };
        let name = format!("vrooli_test_{}", random_suffix());
        let mut conn = admin.connect().await.expect("connect as admin");
        // Clones from one template can collide while PostgreSQL copies it; retry briefly.
        let mut attempt = 0;
        loop {
            let sql = format!(r#"CREATE DATABASE "{name}" TEMPLATE "{template}""#);
            match sqlx::query(AssertSqlSafe(sql)).execute(&mut conn).await {
                Ok(_) => break,
                Err(e)
                    if attempt < 20 && e.to_string().contains("being accessed by other users") =>
                {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("clone test database: {e}"),
            }
        }
        let options = base.database(&name);
        let url = options.to_url_lossy().to_string();
        let pool = PgPool::connect_with(options)
            .await
            .expect("connect to test database");
        Self {
            name,
            url,
            pool,
            admin,
        }
    }

    /// Drops this database now, as if it had vanished under the server.
    pub async fn drop_now(&self) {
        drop_database(&self.admin, &self.name).await;
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let name = self.name.clone();
        // Drop runs outside async; give the cleanup its own thread and runtime.
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("cleanup runtime")
                .block_on(drop_database(&admin, &name));
        })
        .join();
    }
}

async fn drop_database(admin: &PgConnectOptions, name: &str) {
    if let Ok(mut conn) = admin.connect().await {
        let _ = sqlx::query(AssertSqlSafe(format!(
            r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#
        )))
        .execute(&mut conn)
        .await;
    }
}

static TEMPLATE: OnceCell<String> = OnceCell::const_new();

async fn template(admin: &PgConnectOptions) -> String {
    TEMPLATE
        .get_or_init(|| async {
            let mut hasher = DefaultHasher::new();
            for migration in vrooli::db::MIGRATOR.iter() {
                migration.version.hash(&mut hasher);
                migration.checksum.hash(&mut hasher);
            }
            let hash = hasher.finish();
            let name = format!("vrooli_tpl_{:012x}", hash & 0xffff_ffff_ffff);
            let mut conn = admin.connect().await.expect("connect as admin");
            // One builder across all test processes; the others wait here, then find it built.
            sqlx::query("SELECT pg_advisory_lock($1)")
                .bind(hash as i64)
                .execute(&mut conn)
                .await
                .expect("lock");
            let exists: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                    .bind(&name)
                    .fetch_one(&mut conn)
                    .await
                    .expect("look up template");
            if !exists {
                // Build under a temporary name and rename when complete, so a crash mid-way never
                // leaves a half-migrated template behind.
                let building = format!("{name}_build");
                drop_database(admin, &building).await;
                sqlx::query(AssertSqlSafe(format!(r#"CREATE DATABASE "{building}""#)))
                    .execute(&mut conn)
                    .await
                    .expect("create template");
                let pool = PgPool::connect_with(admin.clone().database(&building))
                    .await
                    .expect("connect template");
                vrooli::db::migrate(&pool).await.expect("migrate template");
                pool.close().await;
                sqlx::query(AssertSqlSafe(format!(
                    r#"ALTER DATABASE "{building}" RENAME TO "{name}""#
                )))
                .execute(&mut conn)
                .await
                .expect("rename template");
            }
            sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(hash as i64)
                .execute(&mut conn)
                .await
                .expect("unlock");
            let _ = conn.close().await;
            name
        })
        .await
        .clone()
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
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self::start_on(port).await
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

/// Sends `sig` (as `kill` spells it: "-STOP", "-KILL", …) to a process.
pub fn signal(pid: u32, sig: &str) {
    let status = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill {sig} {pid}");
}
