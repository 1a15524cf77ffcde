//! Start-up: the composition root of the services. [`build`] makes every service from the
//! settings and what the earlier steps made ([`Base`]: the pool, Redis, ids, the job store, the
//! hub), in the order their dependencies need; [`Services::into_state`] groups them into the
//! `AppState` the handlers share.
//!
//! ```text
//! Base ─▶ credits, ai ─▶ outbox (room events, relayed to the hub) ─▶ billing, files
//!      ─▶ chats (warm connections, outbox, credits, ai) ─▶ run deps ─▶ routines ─▶ runs
//!      ─▶ MCP tools (chats, routines, runs; also the runs' `action` steps) ─▶ teams, people,
//!         profiles, notifications, push (VAPID), exports, imports, API keys
//! ```
//!
//! Nothing here starts a job worker or binds a port: `mod.rs` does, with what this returns.

use std::sync::Arc;
use std::time::Duration;

use crate::ai::AiRegistry;
use crate::auth::AuthService;
use crate::auth::api_keys::ApiKeys;
use crate::chat::ChatService;
use crate::config::Settings;
use crate::credits::Credits;
use crate::db::node_lease::NodeLease;
use crate::health::host::HostProbe;
use crate::health::{self, HealthService};
use crate::ids::Snowflake;
use crate::jobs::JobStore;
use crate::metrics::Metrics;
use crate::redis_client::RedisClient;
use crate::state::{self, AppState};

use super::{StartupError, runs};

/// What the services are built on: the earlier steps' work.
pub(super) struct Base<'a> {
    pub settings: &'a Settings,
    pub pool: &'a sqlx::PgPool,
    pub redis: &'a Option<RedisClient>,
    pub ids: &'a Arc<Snowflake>,
    pub jobs: &'a JobStore,
    pub hub: &'a vrooli_actors::Hub,
}

/// Every service of the node, before they are grouped for the handlers.
pub(super) struct Services {
    pub chats: ChatService,
    pub credits: Credits,
    pub ai: Arc<AiRegistry>,
    pub billing: crate::billing::Billing,
    pub files: crate::files::FileService,
    /// What the run executor uses (the sweeper and the run jobs take it too).
    pub run_deps: Arc<crate::runs::RunDeps>,
    /// The VAPID key, read once (the push jobs sign with it).
    pub vapid: Option<Arc<crate::notifications::push::Vapid>>,
    pub routines: crate::routines::RoutineService,
    pub runs: crate::runs::RunService,
    pub mcp: crate::mcp::Mcp,
    pub teams: crate::teams::TeamService,
    pub api_keys: ApiKeys,
    pub notifications: crate::notifications::Notifications,
    pub profiles: crate::profile::Profiles,
    pub exports: crate::exports::Exports,
    pub imports: crate::imports::Imports,
    pub push: crate::notifications::push::PushDevices,
    pub people: crate::people::Directory,
}

/// A setting that stops the start (a bad Stripe, storage or VAPID setting), named in the error.
fn delivery<E: Into<Box<dyn std::error::Error + Send + Sync>>>(error: E) -> StartupError {
    StartupError::Delivery(std::io::Error::other(error))
}

/// Builds every service (see the module's diagram for the order).
pub(super) fn build(base: &Base<'_>) -> Result<Services, StartupError> {
    let Base {
        settings,
        pool,
        redis,
        ids,
        jobs,
        hub,
    } = *base;
    let credits = Credits::new(
        pool.clone(),
        Arc::clone(ids),
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
        Arc::clone(ids),
        outbox.clone(),
    )
    .map_err(delivery)?;
    let files = crate::files::FileService::new(pool.clone(), Arc::clone(ids), &settings.storage)
        .map_err(delivery)?;
    let chats = ChatService {
        pool: pool.clone(),
        warm: crate::db::warm::Warm::start(
            pool.clone(),
            settings.database.warm_size(),
            Duration::from_millis(settings.database.ping_after_idle_ms),
            Duration::from_millis(settings.database.acquire_timeout_ms),
        ),
        ids: Arc::clone(ids),
        jobs: jobs.clone(),
        hub: hub.clone(),
        credits: credits.clone(),
        outbox,
        ai: Arc::clone(&ai),
        context_messages: settings.ai.context_messages,
        default_max_tokens: settings.ai.default_max_tokens,
    };
    let run_deps = runs::run_deps(settings, &chats, jobs, Arc::clone(&ai))?;
    // Web Push: the VAPID key read once, or made once and kept (a bad key stops the start,
    // naming the setting).
    let push_settings =
        crate::notifications::vapid_key::resolve(&settings.push, &settings.auth.key_dir)
            .map_err(delivery)?;
    let vapid = crate::notifications::push::Vapid::from_settings(&push_settings)
        .map_err(delivery)?
        .map(Arc::new);
    let routines = crate::routines::RoutineService::new(
        pool.clone(),
        Arc::clone(ids),
        crate::routines::GraphLimits {
            max_nodes: settings.runs.max_graph_nodes,
            max_wait_ms: settings.runs.max_wait_ms,
        },
        settings.runs.max_import_resources,
    );
    let run_service = crate::runs::RunService {
        pool: pool.clone(),
        ids: Arc::clone(ids),
        jobs: jobs.clone(),
        routines: routines.clone(),
        deps: Arc::clone(&run_deps),
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
    let _ = run_deps
        .actions
        .set(Arc::new(tools.clone()) as Arc<dyn crate::runs::nodes::ActionTools>);
    let mcp = crate::mcp::Mcp::new(tools, settings.server.routine_json_body_limit_bytes);
    Ok(Services {
        teams: crate::teams::TeamService::new(
            pool.clone(),
            Arc::clone(ids),
            chats.outbox.clone(),
            jobs.clone(),
            chats.hub.clone(),
        ),
        api_keys: ApiKeys::new(
            pool.clone(),
            redis.clone(),
            settings.auth.max_api_keys_per_user,
        ),
        notifications: crate::notifications::Notifications::new(pool.clone()),
        profiles: crate::profile::Profiles::new(pool.clone()),
        exports: crate::exports::Exports::new(
            pool.clone(),
            Arc::clone(ids),
            jobs.clone(),
            std::time::Duration::from_secs(settings.exports.ready_ttl_secs),
        ),
        imports: crate::imports::Imports::new(pool.clone(), Arc::clone(ids), jobs.clone()),
        push: crate::notifications::push::PushDevices::new(
            pool.clone(),
            Arc::clone(ids),
            vapid.clone(),
            &settings.push,
            crate::egress::Egress::from_settings(
                &settings.egress,
                settings.push.allow_insecure_endpoints,
            )
            .map_err(|e| StartupError::Delivery(std::io::Error::other(e)))?,
        ),
        people: crate::people::Directory::new(pool.clone()),
        chats,
        credits,
        ai,
        billing,
        files,
        run_deps,
        vapid,
        routines,
        runs: run_service,
        mcp,
    })
}

/// What the node's parts beside the services are: for the health checks and the handlers.
pub(super) struct Node<'a> {
    pub base: Base<'a>,
    pub lease: &'a NodeLease,
    pub metrics: Arc<Metrics>,
    pub auth: AuthService,
}

impl Services {
    /// Groups the services into the `AppState` the handlers share (`state.rs` says why grouped).
    pub(super) fn into_state(self, node: Node<'_>) -> AppState {
        let Node {
            base,
            lease,
            metrics,
            auth,
        } = node;
        let settings = base.settings;
        let host = HostProbe::new();
        let health = HealthService::new(
            &settings.health,
            &settings.jobs,
            health::Dependencies {
                worker_id: settings.node.worker_id,
                lease_held: lease.held_flag(),
                pool: base.pool.clone(),
                redis: base.redis.clone(),
                jobs: base.jobs.clone(),
                host: host.clone(),
                hub: base.hub.clone(),
                ai: self.ai,
                billing: self.billing.clone(),
                storage: self.files.storage().clone(),
            },
        );
        AppState {
            infra: state::Infra {
                ids: Arc::clone(base.ids),
                health: Arc::new(health),
                metrics,
                host,
                jobs: base.jobs.clone(),
                hub: base.hub.clone(),
                access_log: settings.log.access_log,
            },
            auth: state::Auth {
                sessions: Arc::new(auth),
                api_keys: Arc::new(self.api_keys),
                admin_key: settings.admin.system_key.clone(),
            },
            chat: state::Chat { chats: self.chats },
            runs: state::Runs {
                routines: self.routines,
                runs: self.runs,
                mcp: self.mcp,
            },
            people: state::People {
                directory: self.people,
                profiles: self.profiles,
                teams: self.teams,
                notifications: self.notifications,
                push: self.push,
                exports: self.exports,
                imports: self.imports,
            },
            money: state::Money {
                credits: self.credits,
                billing: self.billing,
            },
            files: self.files,
        }
    }
}
