//! `Application::build`: the seed's start-up sequence, each step logged with its duration.
//!
//! ```text
//! config (in `main`) ─▶ snowflake ids ─▶ postgres (retry with backoff) ─▶ migrations
//!   ─▶ node-lease (the worker id) ─▶ seed ─▶ redis (optional; retry, then fail) ─▶ clock
//!   ─▶ auth ─▶ actors (the hub: broker and registries)
//!   ─▶ services (`services.rs`: every service, then grouped into `AppState`)
//!   ─▶ jobs (run sweeper, worker pools, scheduler; `jobs.rs`)
//!   ─▶ http (middleware, routes, bind: `http.rs`)
//! ```
//!
//! The services come after the actors because chats, runs and the outbox publish through the
//! hub; the jobs after the services because their handlers are the services' work.
//!
//! `run_until_stopped` (`shutdown.rs`) serves until SIGTERM or SIGINT (or a [`ShutdownHandle`]),
//! then stops accepting, lets in-flight requests finish within `server.shutdown_timeout_secs`,
//! releases the worker id lease, closes the pool and returns. `main` and the tests call the same
//! builder.
//!
//! Files: the sequence (here), the HTTP stack (`http.rs`), the job handlers (`jobs.rs`), the run
//! executor's dependencies (`runs.rs`), the seed (`seed.rs`), stopping (`shutdown.rs`,
//! `signals.rs`); [`StartupError`] (`error.rs`) is below them all.

mod error;
mod http;
mod jobs;
mod runs;
pub mod seed;
mod services;
mod shutdown;
mod signals;

pub use error::StartupError;
pub use http::RouteHook;
pub use shutdown::ShutdownHandle;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::dev::Server;

use crate::auth::AuthService;
use crate::auth::keys::{KeyError, TokenKeys};
use crate::auth::revocation::Revocations;
use crate::config::Settings;
use crate::db;
use crate::db::node_lease::{LeaseError, NodeLease};
use crate::ids::Snowflake;
use crate::jobs::{DatabaseClock, JobRuntime, JobStore};
use crate::metrics::Metrics;
use crate::redis_client::RedisClient;
use crate::state::AppState;

use http::http_server;
use jobs::start_jobs;

pub struct Application {
    port: u16,
    server: Server,
    state: AppState,
    /// Closed last, after the jobs have drained.
    pool: sqlx::PgPool,
    lease: NodeLease,
    /// `None` when `jobs.enabled = false`.
    jobs: Option<JobRuntime>,
    ws_grace: Duration,
    drain: Duration,
    worker_id: u16,
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        Self::build_with(settings, None).await
    }

    pub async fn build_with(
        mut settings: Settings,
        extra_routes: Option<RouteHook>,
    ) -> Result<Self, StartupError> {
        settings.resolve_security();
        if settings.server.development && !settings.bound_to_loopback() {
            tracing::warn!(host = %settings.server.host, "development mode on a public address: cookies are sent without Secure and localhost origins are accepted");
        }
        let ids = step_sync("snowflake", || Snowflake::new(settings.node.worker_id))?;
        let ids = Arc::new(ids);
        tracing::info!(worker_id = ids.worker_id(), "snowflake ids ready");

        let pool = step("postgres", db::connect(&settings.database)).await?;
        step("migrations", db::migrate(&pool)).await?;
        let lease = step("node-lease", acquire_lease(&pool, &settings)).await?;
        let report = step("seed", seed::run(&pool, &ids, &settings.seed)).await?;
        tracing::info!(inserted = report.inserted, admin = %report.admin, valyxa = %report.valyxa, team = %report.team, "seed applied");

        let redis = step("redis", RedisClient::connect(&settings.redis)).await?;
        match &redis {
            Some(r) => tracing::info!(
                target_addr = r.target(),
                prefix = r.prefix(),
                "cluster mode: Redis connected"
            ),
            None => tracing::info!("single-node mode: redis.url is empty, no Redis in use"),
        }

        let metrics = Arc::new(Metrics::new());
        // Lock times come from the database's clock, not this machine's (see jobs::clock).
        let clock = step(
            "clock",
            DatabaseClock::start(pool.clone(), Duration::from_secs(30)),
        )
        .await
        .map_err(StartupError::Clock)?;
        let job_store = JobStore::new(
            pool.clone(),
            Arc::clone(&ids),
            clock,
            lease.node_name(),
            settings.jobs.max_attempts,
        )
        .with_metrics(Arc::clone(&metrics));

        let auth = step_sync("auth", || auth_service(&settings, &pool, &ids, &redis))?;

        let hub = step(
            "actors",
            crate::realtime::start_hub(&settings, redis.as_ref(), pool.clone()),
        )
        .await?;
        auth.on_revoked(Arc::new(crate::realtime::CloseRevokedSockets(hub.clone())));
        tracing::info!(node = hub.node_id(), "actor system ready");

        // After the hub: the chats, runs and outbox publish through it.
        let base = services::Base {
            settings: &settings,
            pool: &pool,
            redis: &redis,
            ids: &ids,
            jobs: &job_store,
            hub: &hub,
        };
        let services = step_sync("services", || services::build(&base))?;
        let jobs = start_job_workers(&settings, &job_store, &services)?;
        let state = services.into_state(services::Node {
            base,
            lease: &lease,
            metrics,
            auth,
        });

        let (server, port) = step_sync("http", || {
            http_server(&settings, state.clone(), redis, extra_routes)
        })?;
        tracing::info!(host = %settings.server.host, port, "http server listening");
        Ok(Self {
            port,
            server,
            state,
            pool,
            lease,
            jobs,
            ws_grace: Duration::from_millis(settings.ws.close_grace_ms)
                + Duration::from_millis(500),
            drain: Duration::from_secs(settings.server.drain_secs),
            worker_id: settings.node.worker_id,
        })
    }

    /// The bound port (differs from the configured one when that was 0).
    pub fn port(&self) -> u16 {
        self.port
    }
}

/// Token keys (files or generated), the revocation list (in Redis when there is one), and the
/// service that checks sessions.
fn auth_service(
    settings: &Settings,
    pool: &sqlx::PgPool,
    ids: &Arc<Snowflake>,
    redis: &Option<RedisClient>,
) -> Result<AuthService, KeyError> {
    let keys = TokenKeys::load(&settings.auth)?;
    let revocations = Revocations::new(redis.clone(), AuthService::revocation_ttl(&settings.auth));
    Ok(AuthService::new(
        pool.clone(),
        Arc::clone(ids),
        keys,
        revocations,
        settings.auth.clone(),
    ))
}

/// The run sweeper and the job workers, on nodes that run jobs (`jobs.enabled`); `None` on the
/// others.
fn start_job_workers(
    settings: &Settings,
    job_store: &JobStore,
    services: &services::Services,
) -> Result<Option<JobRuntime>, StartupError> {
    if !settings.jobs.enabled {
        tracing::info!("jobs.enabled = false: this node runs no job workers");
        return Ok(None);
    }
    // Nodes that run jobs run runs: they take over runs whose owner is gone.
    crate::runs::start_sweeper(
        Arc::clone(&services.run_deps),
        Duration::from_millis(settings.runs.sweep_interval_ms),
    );
    step_sync("jobs", || {
        start_jobs(
            job_store,
            settings,
            &services.chats,
            jobs::JobServices {
                runs: &services.run_deps,
                routines: &services.routines,
                billing: &services.billing,
                files: &services.files,
                exports: &services.exports,
            },
            services.vapid.clone(),
        )
    })
    .map(Some)
}

/// Claims `node.worker_id` for this process (see `db::node_lease`).
pub async fn acquire_lease(
    pool: &sqlx::PgPool,
    settings: &Settings,
) -> Result<NodeLease, LeaseError> {
    NodeLease::acquire(
        pool,
        settings.node.worker_id,
        Duration::from_secs(settings.node.lease_ttl_secs),
        Duration::from_secs(settings.node.lease_wait_secs),
    )
    .await
}

/// Runs one start-up step, logging its duration (or its failure).
pub async fn step<T, E: std::fmt::Display>(
    name: &'static str,
    work: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    let start = Instant::now();
    let result = work.await;
    log_step(name, start, &result);
    result
}

pub fn step_sync<T, E: std::fmt::Display>(
    name: &'static str,
    work: impl FnOnce() -> Result<T, E>,
) -> Result<T, E> {
    let start = Instant::now();
    let result = work();
    log_step(name, start, &result);
    result
}

fn log_step<T, E: std::fmt::Display>(name: &'static str, start: Instant, result: &Result<T, E>) {
    let elapsed_ms = start.elapsed().as_secs_f64() * 1000.0;
    match result {
        Ok(_) => tracing::info!(step = name, elapsed_ms, "startup step finished"),
        Err(error) => tracing::error!(step = name, elapsed_ms, %error, "startup step failed"),
    }
}
