//! The lease on this node's Snowflake worker id (table `node_leases`).
//!
//! Ids are unique across nodes only if worker ids are, and a copy-pasted config is an easy way
//! to start two nodes with the same one. So a node claims its worker id in PostgreSQL before it
//! makes any id: the claim succeeds if the row is free, expired, or already ours. While the node
//! runs a task renews the lease every third of its TTL; if a renewal finds the lease taken (the
//! node stalled longer than the TTL and another took over) the lease is marked lost and the
//! health check turns Down so the load balancer stops sending this node work. Graceful shutdown
//! deletes the row so a successor can start at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;

#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error(
        "node.worker_id {worker_id} is held by another running node (host {holder_host}, lease until {expires_at}); \
         give each node its own node.worker_id"
    )]
    Held {
        worker_id: u16,
        holder_host: String,
        expires_at: DateTime<Utc>,
    },
    #[error("could not take the worker id lease: {0}")]
    Sql(#[from] sqlx::Error),
}

/// A held lease. Dropping it stops renewal; [`NodeLease::release`] also frees the row.
pub struct NodeLease {
    pool: PgPool,
    worker_id: u16,
    instance_id: String,
    held: Arc<AtomicBool>,
    renewal: tokio::task::JoinHandle<()>,
}

impl NodeLease {
    /// Takes the lease for `worker_id`, waiting up to `wait` for another holder's lease to expire.
    pub async fn acquire(
        pool: &PgPool,
        worker_id: u16,
        ttl: Duration,
        wait: Duration,
    ) -> Result<Self, LeaseError> {
        let instance_id = crate::ids::PublicId::generate().as_str().to_owned();
        let hostname = hostname();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if try_acquire(pool, worker_id, &instance_id, &hostname, ttl).await? {
                break;
            }
            let (holder_host, expires_at): (String, DateTime<Utc>) =
                sqlx::query_as("SELECT hostname, expires_at FROM node_leases WHERE worker_id = $1")
                    .bind(i16::try_from(worker_id).unwrap_or(i16::MAX))
                    .fetch_optional(pool)
                    .await?
                    .unwrap_or_else(|| (String::new(), Utc::now()));
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(LeaseError::Held {
                    worker_id,
                    holder_host,
                    expires_at,
                });
            }
            tracing::warn!(worker_id, holder_host, %expires_at, "worker id leased by another node; waiting for it to expire");
            // Poll about once a second: a lease changes hands at most once per TTL.
            tokio::time::sleep((deadline - now).min(Duration::from_secs(1))).await;
        }

        let held = Arc::new(AtomicBool::new(true));
        let renewal = tokio::spawn(renew_forever(
            pool.clone(),
            worker_id,
            instance_id.clone(),
            ttl,
            Arc::clone(&held),
        ));
        Ok(Self {
            pool: pool.clone(),
            worker_id,
            instance_id,
            held,
            renewal,
        })
    }

    /// How this process signs the job locks it takes: host, worker id and process instance.
    pub fn node_name(&self) -> String {
        format!("{}/{}/{}", hostname(), self.worker_id, self.instance_id)
    }

    /// Whether this node still holds its worker id (false after a lost renewal).
    pub fn held_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.held)
    }

    /// Stops renewing and deletes the lease so a successor can start immediately.
    pub async fn release(self) {
        self.renewal.abort();
        let result =
            sqlx::query("DELETE FROM node_leases WHERE worker_id = $1 AND instance_id = $2")
                .bind(i16::try_from(self.worker_id).unwrap_or(i16::MAX))
                .bind(&self.instance_id)
                .execute(&self.pool)
                .await;
        if let Err(error) = result {
            tracing::warn!(%error, "could not release the worker id lease; it will expire by itself");
        }
    }
}

impl Drop for NodeLease {
    fn drop(&mut self) {
        self.renewal.abort();
    }
}

async fn try_acquire(
    pool: &PgPool,
    worker_id: u16,
    instance_id: &str,
    hostname: &str,
    ttl: Duration,
) -> Result<bool, sqlx::Error> {
    let row = sqlx::query(
        "INSERT INTO node_leases (worker_id, instance_id, hostname, expires_at)
         VALUES ($1, $2, $3, now() + make_interval(secs => $4))
         ON CONFLICT (worker_id) DO UPDATE
            SET instance_id = EXCLUDED.instance_id, hostname = EXCLUDED.hostname,
                acquired_at = now(), expires_at = EXCLUDED.expires_at
          WHERE node_leases.expires_at < now() OR node_leases.instance_id = EXCLUDED.instance_id
         RETURNING worker_id",
    )
    .bind(i16::try_from(worker_id).unwrap_or(i16::MAX))
    .bind(instance_id)
    .bind(hostname)
    .bind(ttl.as_secs_f64())
    .fetch_optional(pool)
    .await?;
    Ok(row.is_some())
}

async fn renew_forever(
    pool: PgPool,
    worker_id: u16,
    instance_id: String,
    ttl: Duration,
    held: Arc<AtomicBool>,
) {
    let mut ticker = tokio::time::interval(ttl / 3);
    ticker.tick().await; // the first tick is immediate; the lease is fresh
    loop {
        ticker.tick().await;
        let renewed = sqlx::query(
            "UPDATE node_leases SET expires_at = now() + make_interval(secs => $3)
              WHERE worker_id = $1 AND instance_id = $2",
        )
        .bind(i16::try_from(worker_id).unwrap_or(i16::MAX))
        .bind(&instance_id)
        .bind(ttl.as_secs_f64())
        .execute(&pool)
        .await;
        match renewed {
            Ok(done) if done.rows_affected() == 1 => held.store(true, Ordering::Relaxed),
            Ok(_) => {
                // Someone else holds our worker id now: ids we make could collide with theirs.
                if held.swap(false, Ordering::Relaxed) {
                    tracing::error!(
                        worker_id,
                        "worker id lease lost to another node; reporting Down"
                    );
                }
                // Take it back if it is free again (the other node went away).
                if let Ok(true) =
                    try_acquire(&pool, worker_id, &instance_id, &hostname(), ttl).await
                {
                    tracing::warn!(worker_id, "worker id lease recovered");
                    held.store(true, Ordering::Relaxed);
                }
            }
            // A database blip: keep the flag; the lease outlives several failed renewals.
            Err(error) => tracing::warn!(worker_id, %error, "could not renew the worker id lease"),
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}
