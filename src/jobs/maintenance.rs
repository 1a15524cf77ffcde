//! Housekeeping on the `maintenance` queue, run by the scheduler: pruning finished jobs,
//! deleting sessions that can no longer be used, releasing orphaned credit holds, and purging
//! accounts deleted long enough ago.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::handler::{JobContext, JobError, JobHandler};
use super::queue::Queue;
use super::scheduler::Schedule;
use super::store::{JobStore, NewJob};

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct NoPayload {}

/// Deletes completed and cancelled jobs older than `jobs.retention_hours`.
pub struct PruneJobs {
    pub store: JobStore,
    pub retention: Duration,
}

impl JobHandler for PruneJobs {
    const KIND: &'static str = "maintenance.prune-jobs";
    const QUEUE: Queue = Queue::Maintenance;
    type Payload = NoPayload;

    async fn handle(&self, _: NoPayload, _: JobContext) -> Result<(), JobError> {
        let cutoff = self.store.now()
            - chrono::Duration::from_std(self.retention).map_err(JobError::permanent)?;
        let deleted = self
            .store
            .prune_finished(cutoff)
            .await
            .map_err(JobError::retryable)?;
        tracing::info!(deleted, %cutoff, "pruned finished jobs");
        Ok(())
    }
}

/// Deletes sessions past their expiry, and sessions revoked more than a day ago (kept that long so
/// a revoked refresh token presented again is recognised as reuse rather than as unknown).
pub struct CleanupSessions {
    pub store: JobStore,
}

impl JobHandler for CleanupSessions {
    const KIND: &'static str = "maintenance.cleanup-sessions";
    const QUEUE: Queue = Queue::Maintenance;
    type Payload = NoPayload;

    async fn handle(&self, _: NoPayload, _: JobContext) -> Result<(), JobError> {
        let now = self.store.now();
        let deleted = sqlx::query(
            "DELETE FROM sessions WHERE expires_at < $1 OR revoked_at < $1 - interval '1 day'",
        )
        .bind(now)
        .execute(self.store.pool())
        .await
        .map_err(JobError::retryable)?
        .rows_affected();
        tracing::info!(deleted, "cleaned up expired and revoked sessions");
        // Also hourly: credit holds whose answer will never run (its job died in a crash or a
        // timeout past its last attempt) go back to their payers.
        let released =
            crate::credits::release_orphaned_holds(self.store.pool(), Duration::from_secs(300))
                .await
                .map_err(JobError::retryable)?;
        if released > 0 {
            tracing::info!(released, "released orphaned credit holds");
        }
        // Failed sign-ins a day old with no wait left are forgotten.
        sqlx::query(
            "DELETE FROM login_failures WHERE last_failure_at < $1 - interval '1 day'
               AND (locked_until IS NULL OR locked_until < $1)",
        )
        .bind(now)
        .execute(self.store.pool())
        .await
        .map_err(JobError::retryable)?;
        Ok(())
    }
}

/// Removes accounts deleted more than `after` ago, in batches (the schema's `ON DELETE` rules
/// decide what goes with them: see `auth::credentials`).
pub struct PurgeDeletedAccounts {
    pub store: JobStore,
    pub after: Duration,
}

/// Accounts one statement removes; the job loops until none is left.
const PURGE_BATCH: i64 = 500;

impl JobHandler for PurgeDeletedAccounts {
    const KIND: &'static str = "maintenance.purge-deleted-accounts";
    const QUEUE: Queue = Queue::Maintenance;
    type Payload = NoPayload;

    async fn handle(&self, _: NoPayload, _: JobContext) -> Result<(), JobError> {
        let cutoff = self.store.now()
            - chrono::Duration::from_std(self.after).map_err(JobError::permanent)?;
        let mut purged = 0;
        loop {
            let n = sqlx::query(
                "DELETE FROM users WHERE id IN (
                    SELECT id FROM users WHERE status = 'Deleted' AND deleted_at <= $1 LIMIT $2)",
            )
            .bind(cutoff)
            .bind(PURGE_BATCH)
            .execute(self.store.pool())
            .await
            .map_err(JobError::retryable)?
            .rows_affected();
            purged += n;
            if n < PURGE_BATCH as u64 {
                break;
            }
        }
        if purged > 0 {
            tracing::info!(purged, "purged deleted accounts");
        }
        Ok(())
    }
}

fn purge_job() -> NewJob {
    NewJob::new(
        Queue::Maintenance,
        PurgeDeletedAccounts::KIND,
        serde_json::json!({}),
    )
    .priority(200)
}

fn prune_job() -> NewJob {
    NewJob::new(Queue::Maintenance, PruneJobs::KIND, serde_json::json!({})).priority(200)
}

fn cleanup_sessions_job() -> NewJob {
    NewJob::new(
        Queue::Maintenance,
        CleanupSessions::KIND,
        serde_json::json!({}),
    )
    .priority(200)
}

/// The built-in schedules: all hourly.
pub fn schedules() -> Vec<Schedule> {
    vec![
        Schedule {
            name: "purge-deleted-accounts",
            every: Duration::from_secs(3600),
            make: purge_job,
        },
        Schedule {
            name: "prune-jobs",
            every: Duration::from_secs(3600),
            make: prune_job,
        },
        Schedule {
            name: "cleanup-sessions",
            every: Duration::from_secs(3600),
            make: cleanup_sessions_job,
        },
    ]
}
