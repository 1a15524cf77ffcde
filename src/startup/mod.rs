//! `Application::build`: the seed's start-up sequence, each step logged with its duration.
//!
//! config (in `main`) → Snowflake ids → PostgreSQL pool (retry with backoff) → migrations →
//! worker id lease → seed → Redis (optional; retry, then fail) → auth → actors (the hub: broker
//! and registries) → jobs (worker pools, scheduler; the bot handler needs the hub) → shared state (health, metrics) → middleware
//! (request id + tracing, edge, CORS, body limits) → routes → bind the HTTP listener.
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
mod shutdown;
mod signals;

pub use error::StartupError;
pub use http::RouteHook;
pub use shutdown::ShutdownHandle;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::dev::Server;

use crate::ai::AiRegistry;
use crate::auth::AuthService;
use crate::auth::api_keys::ApiKeys;
use crate::auth::keys::{KeyError, TokenKeys};
use crate::auth::revocation::Revocations;
use crate::chat::ChatService;
use crate::config::Settings;
use crate::credits::Credits;
use crate::db;
use crate::db::node_lease::{LeaseError, NodeLease};
use crate::health::host::HostProbe;
use crate::health::{self, HealthService};
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

        let auth = step_sync("auth", || {
            let keys = TokenKeys::load(&settings.auth)?;
            let revocations =
                Revocations::new(redis.clone(), AuthService::revocation_ttl(&settings.auth));
            Ok::<_, KeyError>(AuthService::new(
                pool.clone(),
                Arc::clone(&ids),
                keys,
                revocations,
                settings.auth.clone(),
            ))
        })?;

        let hub = step(
            "actors",
            crate::realtime::start_hub(&settings, redis.as_ref(), pool.clone()),
        )
        .await?;
        auth.on_revoked(Arc::new(crate::realtime::CloseRevokedSockets(hub.clone())));
        tracing::info!(node = hub.node_id(), "actor system ready");

        let credits = Credits::new(
            pool.clone(),
            Arc::clone(&ids),
            settings.ai.starting_credits,
            settings.ai.team_starting_credits,
            settings.ai.min_balance_credits,
        );
        let ai = Arc::new(AiRegistry::from_settings(&settings.ai));
        // Room events of writes: committed with them, published by the relays (src/outbox.rs).
        let outbox = crate::outbox::Outbox::new(
            pool.clone(),
            hub.clone(),
            crate::outbox::OutboxSettings {
                batch: settings.ws.outbox_batch,
                sweep_interval: Duration::from_millis(settings.ws.outbox_sweep_interval_ms),
                history_max_age: Duration::from_secs(settings.ws.history_max_age_secs),
                relays: settings.ws.outbox_relays,
                order_wait: Duration::from_millis(settings.ws.outbox_order_wait_ms),
            },
        );
        outbox.start_sweeper();
        let billing = crate::billing::Billing::new(
            pool.clone(),
            &settings.stripe,
            credits.clone(),
            Arc::clone(&ids),
            outbox.clone(),
        )
        .map_err(|e| StartupError::Delivery(std::io::Error::other(e)))?;
        let files =
            crate::files::FileService::new(pool.clone(), Arc::clone(&ids), &settings.storage)
                .map_err(|e| StartupError::Delivery(std::io::Error::other(e)))?;
        let chats = ChatService {
            pool: pool.clone(),
            warm: crate::db::warm::Warm::start(
                pool.clone(),
                settings.database.warm_size(),
                Duration::from_millis(settings.database.ping_after_idle_ms),
                Duration::from_millis(settings.database.acquire_timeout_ms),
            ),
            ids: Arc::clone(&ids),
            jobs: job_store.clone(),
            hub: hub.clone(),
            credits: credits.clone(),
            outbox,
            ai: Arc::clone(&ai),
            context_messages: settings.ai.context_messages,
            default_max_tokens: settings.ai.default_max_tokens,
        };
        let run_deps = runs::run_deps(&settings, &chats, &job_store, Arc::clone(&ai))?;
        // Web Push: the VAPID key read once (a bad key stops the start, naming the setting).
        let vapid = crate::notifications::push::Vapid::from_settings(&settings.push)
            .map_err(|e| StartupError::Delivery(std::io::Error::other(e)))?
            .map(Arc::new);
        let routines = crate::routines::RoutineService::new(
            pool.clone(),
            Arc::clone(&ids),
            crate::routines::GraphLimits {
                max_nodes: settings.runs.max_graph_nodes,
            },
            settings.runs.max_import_resources,
        );
        let jobs = if settings.jobs.enabled {
            // Nodes that run jobs run runs: they take over runs whose owner is gone.
            crate::runs::start_sweeper(
                Arc::clone(&run_deps),
                Duration::from_millis(settings.runs.sweep_interval_ms),
            );
            Some(step_sync("jobs", || {
                start_jobs(
                    &job_store,
                    &settings,
                    &chats,
                    jobs::JobServices {
                        runs: &run_deps,
                        routines: &routines,
                        billing: &billing,
                        files: &files,
                    },
                    vapid.clone(),
                )
            })?)
        } else {
            tracing::info!("jobs.enabled = false: this node runs no job workers");
            None
        };

        let run_service = crate::runs::RunService {
            pool: pool.clone(),
            ids: Arc::clone(&ids),
            jobs: job_store.clone(),
            routines: routines.clone(),
            deps: run_deps,
            max_depth: settings.runs.max_subroutine_depth,
            limits: crate::runs::RunLimits {
                max_credits: settings.runs.max_credits,
                max_steps: settings.runs.max_steps,
                max_time_ms: settings.runs.max_time_ms,
            },
        };
        // MCP tools call the same services as the REST routes; `action` steps call the tools.
        let tools = crate::mcp::Tools {
            chats: chats.clone(),
            routines: routines.clone(),
            runs: run_service.clone(),
        };
        let _ = run_service
            .deps
            .actions
            .set(Arc::new(tools.clone()) as Arc<dyn crate::runs::nodes::ActionTools>);
        let mcp = crate::mcp::Mcp::new(tools, settings.server.routine_json_body_limit_bytes);
        let host = HostProbe::new();
        let teams = crate::teams::TeamService::new(
            pool.clone(),
            Arc::clone(&ids),
            chats.outbox.clone(),
            job_store.clone(),
        );
        let state = AppState {
            hub: hub.clone(),
            chats,
            credits,
            health: Arc::new(HealthService::new(
                &settings.health,
                &settings.jobs,
                health::Dependencies {
                    worker_id: settings.node.worker_id,
                    lease_held: lease.held_flag(),
                    pool: pool.clone(),
                    redis: redis.clone(),
                    jobs: job_store.clone(),
                    host: host.clone(),
                    hub: hub.clone(),
                    ai,
                    billing: billing.clone(),
                    storage: files.storage().clone(),
                },
            )),
            metrics,
            auth: Arc::new(auth),
            api_keys: Arc::new(ApiKeys::new(
                pool.clone(),
                redis.clone(),
                settings.auth.max_api_keys_per_user,
            )),
            jobs: job_store.clone(),
            admin_key: settings.admin.system_key.clone(),
            notifications: crate::notifications::Notifications::new(pool.clone()),
            teams,
            profiles: crate::profile::Profiles::new(pool.clone()),
            exports: crate::exports::Exports::new(
                pool.clone(),
                Arc::clone(&ids),
                job_store.clone(),
            ),
            imports: crate::imports::Imports::new(
                pool.clone(),
                Arc::clone(&ids),
                job_store.clone(),
            ),
            push: crate::notifications::push::PushDevices::new(
                pool.clone(),
                Arc::clone(&ids),
                vapid,
                &settings.push,
            ),
            people: crate::people::Directory::new(pool.clone()),
            billing,
            files,
            mcp,
            routines: routines.clone(),
            runs: run_service,
            ids,
            host,
            access_log: settings.log.access_log,
        };

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
