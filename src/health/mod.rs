//! The health monitor behind `GET /healthcheck`.
//!
//! Each dependency is a [`Check`]; `HealthService::report` runs every check concurrently, each
//! under `health.check_timeout_ms` (a check that takes longer is Down) and each cached for
//! `health.cache_ttl_ms`. The cache is per check and single-flight: while one request refreshes a
//! check, others wait for that result rather than piling more queries onto a struggling database.
//! The overall status is Down if any check is Down, Operational if all are, else Degraded; the
//! HTTP layer answers 503 for Down so a load balancer takes the node out.
//!
//! Files: the checks (`checks.rs`), what a check answers (`status.rs`, below both), the host's
//! readings (`host.rs`), and the service that runs and caches them (here).

mod checks;
pub mod host;
mod status;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;

use crate::config::{HealthSettings, JobsSettings};
use crate::jobs::JobStore;
use crate::redis_client::RedisClient;
pub use checks::Check;
use host::HostProbe;
pub use status::{ServiceHealth, Status};

/// Whether this node runs alone (no Redis) or as one of several sharing Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum NodeMode {
    SingleNode,
    Cluster,
}

/// This node's health: each service's status and the worst of them.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthReport {
    pub status: Status,
    pub version: &'static str,
    pub mode: NodeMode,
    pub worker_id: u16,
    pub services: BTreeMap<&'static str, ServiceHealth>,
    pub timestamp: DateTime<Utc>,
    /// The node is stopping: still serving what reaches it, answering 503 here so the balancer
    /// sends it nothing new (`server.drain_secs`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub draining: bool,
    /// False when a check this node needs to serve is Down (the HTTP layer answers 503).
    #[serde(skip)]
    #[schema(ignore)]
    pub serving: bool,
}

struct Cached {
    check: Check,
    last: tokio::sync::Mutex<Option<(Instant, ServiceHealth)>>,
}

pub struct HealthService {
    /// For the pool gauges of `/metrics` (the Database check reads the same pool).
    pool: PgPool,
    checks: Vec<Cached>,
    ttl: Duration,
    timeout: Duration,
    mode: NodeMode,
    worker_id: u16,
    /// Set when the node begins to stop: the report says so and the node answers 503.
    draining: std::sync::atomic::AtomicBool,
}

/// What the checks look at.
pub struct Dependencies {
    pub worker_id: u16,
    /// The worker id lease's flag (`db::node_lease`).
    pub lease_held: Arc<AtomicBool>,
    pub pool: PgPool,
    pub redis: Option<RedisClient>,
    pub jobs: JobStore,
    pub host: HostProbe,
    pub hub: vrooli_actors::Hub,
    pub ai: Arc<crate::ai::AiRegistry>,
    pub billing: crate::billing::Billing,
    pub storage: crate::files::Storage,
}

/// The connection pool's use right now.
pub struct PoolUsage {
    pub size: u32,
    pub idle: usize,
    pub max: u32,
}

impl HealthService {
    pub fn pool_usage(&self) -> PoolUsage {
        PoolUsage {
            size: self.pool.size(),
            idle: self.pool.num_idle(),
            max: self.pool.options().get_max_connections(),
        }
    }

    pub fn new(settings: &HealthSettings, job_settings: &JobsSettings, deps: Dependencies) -> Self {
        let Dependencies {
            worker_id,
            lease_held,
            pool,
            redis,
            jobs,
            host,
            hub,
            ai,
            billing,
            storage,
        } = deps;
        let mode = if redis.is_some() {
            NodeMode::Cluster
        } else {
            NodeMode::SingleNode
        };
        let mut checks = vec![
            Check::Api {
                started: Instant::now(),
            },
            Check::Database {
                pool: pool.clone(),
                wait_degraded: Duration::from_millis(settings.pool_wait_degraded_ms),
            },
            Check::Node {
                worker_id,
                held: lease_held,
            },
            Check::Queues {
                store: jobs,
                backlog_degraded: job_settings.backlog_degraded,
                backlog_down: job_settings.backlog_down,
                dead_down: job_settings.dead_down,
            },
            Check::Memory {
                host: host.clone(),
                degraded_percent: settings.memory_degraded_percent,
                down_percent: settings.memory_down_percent,
            },
            Check::Websocket { hub },
            Check::Llm { registry: ai },
            Check::Stripe { billing },
            Check::ImageStorage { storage },
            Check::System {
                host,
                cpu_degraded_percent: settings.cpu_degraded_percent,
                disk_degraded_percent: settings.disk_degraded_percent,
                disk_down_percent: settings.disk_down_percent,
            },
        ];
        // In single-node mode Redis is not a dependency, so it is not a check; `mode` says why.
        if let Some(redis) = redis {
            checks.push(Check::Redis { redis });
        }
        Self {
            pool,
            checks: checks
                .into_iter()
                .map(|check| Cached {
                    check,
                    last: tokio::sync::Mutex::new(None),
                })
                .collect(),
            ttl: Duration::from_millis(settings.cache_ttl_ms),
            timeout: Duration::from_millis(settings.check_timeout_ms),
            mode,
            worker_id,
            draining: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// From now on the node reports itself draining (503): it is about to stop.
    pub fn start_draining(&self) {
        self.draining
            .store(true, std::sync::atomic::Ordering::Release);
    }

    pub async fn report(&self) -> HealthReport {
        let results =
            futures_util::future::join_all(self.checks.iter().map(|c| self.run_cached(c))).await;
        let serving = self
            .checks
            .iter()
            .zip(&results)
            .all(|(c, r)| !c.check.affects_serving() || r.status != Status::Down);
        let services: BTreeMap<_, _> = self
            .checks
            .iter()
            .map(|c| c.check.name())
            .zip(results)
            .collect();
        HealthReport {
            status: overall(services.values().map(|s| s.status)),
            version: env!("CARGO_PKG_VERSION"),
            mode: self.mode,
            worker_id: self.worker_id,
            services,
            timestamp: Utc::now(),
            draining: self.draining.load(std::sync::atomic::Ordering::Acquire),
            serving,
        }
    }

    async fn run_cached(&self, cached: &Cached) -> ServiceHealth {
        let mut last = cached.last.lock().await;
        if let Some((at, result)) = last.as_ref()
            && at.elapsed() < self.ttl
        {
            return result.clone();
        }
        let result = match tokio::time::timeout(self.timeout, cached.check.run()).await {
            Ok(result) => result,
            Err(_) => ServiceHealth::new(
                Status::Down,
                serde_json::json!({ "error": format!("check timed out after {} ms", self.timeout.as_millis()) }),
            ),
        };
        if result.status != Status::Operational {
            tracing::warn!(check = cached.check.name(), status = ?result.status, details = ?result.details, "health check not operational");
        }
        *last = Some((Instant::now(), result.clone()));
        result
    }
}

/// Down if any is Down, Operational if all are, else Degraded.
pub fn overall(statuses: impl IntoIterator<Item = Status>) -> Status {
    statuses.into_iter().max().unwrap_or(Status::Operational)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Status::*;

    #[test]
    fn overall_status_is_the_worst() {
        assert_eq!(overall([Operational, Operational]), Operational);
        assert_eq!(overall([Operational, Degraded]), Degraded);
        assert_eq!(overall([Degraded, Down, Operational]), Down);
    }
}
