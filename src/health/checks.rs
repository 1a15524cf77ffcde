//! The checks themselves. Each returns a [`ServiceHealth`]; errors become Down with a short
//! public reason (the health endpoint is unauthenticated, so internal error text is logged by
//! the service, not sent).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use sqlx::PgPool;

use super::host::HostProbe;
use super::status::{ServiceHealth, Status};
use crate::jobs::JobStore;
use crate::redis_client::RedisClient;

pub enum Check {
    /// This process answers HTTP; reaching the check proves it.
    Api { started: Instant },
    /// The wait for a pooled connection, a query round trip on it, and the pool's occupancy.
    Database {
        pool: PgPool,
        wait_degraded: Duration,
    },
    /// A PING round trip to the configured Redis.
    Redis { redis: RedisClient },
    /// Host memory in use and this process's resident size.
    Memory {
        host: HostProbe,
        degraded_percent: f64,
        down_percent: f64,
    },
    /// This node still holds the lease on its Snowflake worker id (see `db::node_lease`).
    Node {
        worker_id: u16,
        held: Arc<AtomicBool>,
    },
    /// The job queues: backlog and dead jobs, cluster-wide.
    Queues {
        store: JobStore,
        backlog_degraded: i64,
        backlog_down: i64,
        dead_down: i64,
    },
    /// The actor system: connections against the node's limit, and whether the broker's pub/sub
    /// connection is up (events cannot reach this node's sockets without it).
    Websocket { hub: vrooli_actors::Hub },
    /// The AI providers: Degraded while any is cooling down or disabled (bots then answer
    /// through fallbacks, or not at all). Never a reason for 503: the providers are not this
    /// node's to fix.
    Llm {
        registry: Arc<crate::ai::AiRegistry>,
    },
    /// Stripe answers with our key (`GET /v1/balance`); Operational with `configured: false`
    /// when billing is off. Never a reason for 503: only billing needs it.
    Stripe { billing: crate::billing::Billing },
    /// Where uploads are kept: the local directory takes a write, or the S3 bucket answers.
    /// Not a reason for 503: only uploads and downloads need it.
    ImageStorage { storage: crate::files::Storage },
    /// CPU and the working directory's disk.
    System {
        host: HostProbe,
        cpu_degraded_percent: f64,
        disk_degraded_percent: f64,
        disk_down_percent: f64,
    },
}

impl Check {
    pub fn name(&self) -> &'static str {
        match self {
            Check::Api { .. } => "api",
            Check::Database { .. } => "database",
            Check::Redis { .. } => "redis",
            Check::Memory { .. } => "memory",
            Check::Node { .. } => "node",
            Check::Queues { .. } => "queues",
            Check::System { .. } => "system",
            Check::Websocket { .. } => "websocket",
            Check::Llm { .. } => "llm",
            Check::Stripe { .. } => "stripe",
            Check::ImageStorage { .. } => "imageStorage",
        }
    }

    /// Whether Down here means this node cannot serve (answer 503). The queues and Redis are
    /// shared by all nodes: a backlog, or Redis away, is no reason to take every node out of
    /// the load balancer (it would close every WebSocket and cut requests in flight, ADR 22).
    /// Without Redis a node still serves: room events wait in the outbox and are delivered, or
    /// reported as a gap, once Redis is back.
    pub fn affects_serving(&self) -> bool {
        !matches!(
            self,
            Check::Queues { .. }
                | Check::Llm { .. }
                | Check::Redis { .. }
                | Check::Stripe { .. }
                | Check::ImageStorage { .. }
        )
    }

    pub async fn run(&self) -> ServiceHealth {
        match self {
            Check::Api { started } => ServiceHealth::new(
                Status::Operational,
                json!({ "uptimeSecs": started.elapsed().as_secs() }),
            ),
            Check::Database {
                pool,
                wait_degraded,
            } => database(pool, *wait_degraded).await,
            Check::Queues {
                store,
                backlog_degraded,
                backlog_down,
                dead_down,
            } => queues(store, *backlog_degraded, *backlog_down, *dead_down).await,
            Check::Llm { registry } => {
                let standings = registry.standings();
                let providers: serde_json::Map<String, serde_json::Value> = standings
                    .iter()
                    .map(|(name, state, secs)| {
                        let value = if *state == "coolingDown" {
                            json!({ "state": state, "secondsLeft": secs })
                        } else {
                            json!({ "state": state })
                        };
                        (name.clone(), value)
                    })
                    .collect();
                let status = if standings.iter().all(|(_, state, _)| *state == "available") {
                    Status::Operational
                } else {
                    Status::Degraded
                };
                ServiceHealth::new(
                    status,
                    json!({ "defaultModel": registry.default_model, "providers": providers }),
                )
            }
            Check::ImageStorage { storage } => match storage.probe().await {
                Ok(()) => {
                    ServiceHealth::new(Status::Operational, json!({ "backend": storage.name() }))
                }
                Err(error) => {
                    tracing::warn!(%error, "file storage health check failed");
                    ServiceHealth::new(
                        Status::Down,
                        json!({ "backend": storage.name(), "reason": "storage did not answer" }),
                    )
                }
            },
            Check::Stripe { billing } if !billing.enabled() => {
                ServiceHealth::new(Status::Operational, json!({ "configured": false }))
            }
            Check::Stripe { billing } => match billing.ping().await {
                Ok(()) => ServiceHealth::new(Status::Operational, json!({ "configured": true })),
                Err(error) => {
                    tracing::warn!(%error, "Stripe health check failed");
                    ServiceHealth::new(
                        Status::Down,
                        json!({ "configured": true, "reason": "Stripe did not answer" }),
                    )
                }
            },
            Check::Websocket { hub } => {
                let stats = hub.stats();
                let limit = hub.limits().max_connections_per_node;
                let details = json!({
                    "connections": stats.connections,
                    "users": stats.users,
                    "rooms": stats.rooms,
                    "maxConnections": limit,
                    "brokerConnected": hub.broker_connected(),
                });
                // Degraded, not Down, without the broker: this node's sockets still serve, and
                // events of other nodes are recovered from the rooms' history (or reported as a
                // gap) once it is back. Redis away takes every broker at once; a 503 would take
                // every node out of the balancer and close every socket.
                let status = if !hub.broker_connected() || stats.connections * 10 >= limit * 9 {
                    Status::Degraded
                } else {
                    Status::Operational
                };
                ServiceHealth::new(status, details)
            }
            Check::Node { worker_id, held } => {
                if held.load(Ordering::Relaxed) {
                    ServiceHealth::new(Status::Operational, json!({ "workerId": worker_id }))
                } else {
                    ServiceHealth::new(
                        Status::Down,
                        json!({ "workerId": worker_id, "error": "worker id lease lost to another node" }),
                    )
                }
            }
            Check::Redis { redis } => {
                let start = Instant::now();
                match redis.ping().await {
                    Ok(()) => {
                        ServiceHealth::new(Status::Operational, json!({ "latencyMs": ms(start) }))
                    }
                    Err(error) => {
                        tracing::warn!(%error, "redis health check failed");
                        ServiceHealth::new(Status::Down, json!({ "error": "PING failed" }))
                    }
                }
            }
            Check::Memory {
                host,
                degraded_percent,
                down_percent,
            } => match host.memory().await {
                Some(m) => {
                    let used = m.used_percent();
                    let status = grade(used, *degraded_percent, *down_percent);
                    ServiceHealth::new(
                        status,
                        json!({
                            "usedPercent": round1(used),
                            "totalBytes": m.total_bytes,
                            "availableBytes": m.available_bytes,
                            "processRssBytes": m.process_rss_bytes,
                        }),
                    )
                }
                None => {
                    ServiceHealth::new(Status::Degraded, json!({ "error": "memory unreadable" }))
                }
            },
            Check::System {
                host,
                cpu_degraded_percent,
                disk_degraded_percent,
                disk_down_percent,
            } => match host.system().await {
                Some(s) => {
                    let disk = s.disk_used_percent();
                    let disk_status = grade(disk, *disk_degraded_percent, *disk_down_percent);
                    let cpu_status = grade(s.cpu_percent, *cpu_degraded_percent, f64::INFINITY);
                    ServiceHealth::new(
                        disk_status.max(cpu_status),
                        json!({
                            "cpuPercent": round1(s.cpu_percent),
                            "cpus": s.cpus,
                            "loadAverage1m": round1(s.load_one),
                            "diskMount": s.disk_mount,
                            "diskUsedPercent": round1(disk),
                            "diskAvailableBytes": s.disk_available_bytes,
                        }),
                    )
                }
                None => {
                    ServiceHealth::new(Status::Degraded, json!({ "error": "system unreadable" }))
                }
            },
        }
    }
}

/// Degraded when this check waited longer than `wait_degraded` for a connection: requests are
/// then queueing for the database. The pool's occupancy is shown but not graded: a small pool is
/// full for a moment whenever a burst arrives (right after start-up, for one), which costs a
/// request nothing; a long wait does.
async fn database(pool: &PgPool, wait_degraded: Duration) -> ServiceHealth {
    // Occupancy before our own acquisition, which would otherwise count itself.
    let max = pool.options().get_max_connections();
    let size = pool.size();
    let in_use = size.saturating_sub(pool.num_idle() as u32);
    let pool_details = json!({ "size": size, "inUse": in_use, "max": max });
    let start = Instant::now();
    let mut conn = match pool.acquire().await {
        Ok(conn) => conn,
        Err(error) => {
            tracing::warn!(%error, "database health check: no connection");
            return ServiceHealth::new(
                Status::Down,
                json!({ "error": "no connection", "waitMs": ms(start), "pool": pool_details }),
            );
        }
    };
    let wait = start.elapsed();
    let query_start = Instant::now();
    let result = sqlx::query_scalar::<_, i32>("SELECT 1")
        .fetch_one(&mut *conn)
        .await;
    drop(conn);
    let details = json!({
        "latencyMs": ms(query_start),
        "waitMs": round1(wait.as_secs_f64() * 1000.0),
        "pool": pool_details,
    });
    match result {
        Ok(_) if wait > wait_degraded => ServiceHealth::new(Status::Degraded, details),
        Ok(_) => ServiceHealth::new(Status::Operational, details),
        Err(error) => {
            tracing::warn!(%error, "database health check failed");
            ServiceHealth::new(
                Status::Down,
                json!({ "error": "query failed", "pool": pool_details }),
            )
        }
    }
}

/// The original's thresholds: Degraded when any job is dead or the backlog passes
/// `backlog_degraded`; Down when dead jobs pass `dead_down` or the backlog passes `backlog_down`.
async fn queues(
    store: &JobStore,
    backlog_degraded: i64,
    backlog_down: i64,
    dead_down: i64,
) -> ServiceHealth {
    let rows = match store.backlog_and_dead().await {
        Ok(rows) => rows,
        Err(error) => {
            tracing::warn!(%error, "queue health check failed");
            return ServiceHealth::new(Status::Down, json!({ "error": "query failed" }));
        }
    };
    let mut status = Status::Operational;
    let mut per_queue = serde_json::Map::new();
    for (queue, backlog, dead) in rows {
        let queue_status = if dead > dead_down || backlog > backlog_down {
            Status::Down
        } else if dead > 0 || backlog > backlog_degraded {
            Status::Degraded
        } else {
            Status::Operational
        };
        status = status.max(queue_status);
        per_queue.insert(
            queue,
            json!({ "backlog": backlog, "dead": dead, "status": queue_status }),
        );
    }
    ServiceHealth::new(status, json!({ "queues": per_queue }))
}

/// Operational below `degraded`, Degraded up to `down`, Down above.
fn grade(value: f64, degraded: f64, down: f64) -> Status {
    if value > down {
        Status::Down
    } else if value > degraded {
        Status::Degraded
    } else {
        Status::Operational
    }
}

fn ms(start: Instant) -> f64 {
    round1(start.elapsed().as_secs_f64() * 1000.0)
}

fn round1(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grades_by_threshold() {
        assert_eq!(grade(50.0, 90.0, 98.0), Status::Operational);
        assert_eq!(grade(95.0, 90.0, 98.0), Status::Degraded);
        assert_eq!(grade(99.0, 90.0, 98.0), Status::Down);
    }
}
