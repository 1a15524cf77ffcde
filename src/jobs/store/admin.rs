//! The operator side of the queue: counts by state, the backlog for health, dead letters
//! (list, retry, discard), cancelling a pending job, and pruning finished jobs.

use chrono::{DateTime, Utc};

use super::{JobId, JobStore, JobSummary, WAKE_CHANNEL};
use crate::jobs::queue::Queue;

impl JobStore {
    /// Cancels a job that has not started. False if it is running, finished or unknown.
    pub async fn cancel(&self, id: JobId) -> Result<bool, sqlx::Error> {
        let result = sqlx::query(
            "UPDATE jobs SET state = 'cancelled', finished_at = $2
              WHERE id = $1 AND state IN ('available', 'retrying')",
        )
        .bind(id)
        .bind(self.now())
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Job counts by queue and state.
    pub async fn counts(&self) -> Result<Vec<(String, String, i64)>, sqlx::Error> {
        sqlx::query_as(
            "SELECT queue, state, count(*) FROM jobs GROUP BY queue, state ORDER BY queue, state",
        )
        .fetch_all(&self.pool)
        .await
    }

    /// Per queue: jobs due but not started, and dead jobs (for health).
    pub async fn backlog_and_dead(&self) -> Result<Vec<(String, i64, i64)>, sqlx::Error> {
        sqlx::query_as(
            "SELECT queue,
                    count(*) FILTER (WHERE state IN ('available', 'retrying') AND run_at <= $1),
                    count(*) FILTER (WHERE state = 'dead')
               FROM jobs WHERE state IN ('available', 'retrying', 'dead')
              GROUP BY queue",
        )
        .bind(self.now())
        .fetch_all(&self.pool)
        .await
    }

    /// Dead jobs, newest first, `limit` at most, before `before` (a job id) when paging.
    pub async fn list_dead(
        &self,
        queue: Option<Queue>,
        limit: i64,
        before: Option<JobId>,
    ) -> Result<Vec<JobSummary>, sqlx::Error> {
        sqlx::query_as(
            "SELECT id, queue, kind, payload, priority, state, attempt, max_attempts, run_at, last_error,
                    created_at, finished_at
               FROM jobs
              WHERE state = 'dead' AND ($1::text IS NULL OR queue = $1) AND ($2::bigint IS NULL OR id < $2)
              ORDER BY id DESC
              LIMIT $3",
        )
        .bind(queue.map(Queue::as_str))
        .bind(before.map(|id| id.0))
        .bind(limit)
        .fetch_all(&self.pool)
        .await
    }

    /// Gives a dead job a fresh set of attempts, due now. False if it is not dead.
    pub async fn retry_dead(&self, id: JobId) -> Result<bool, sqlx::Error> {
        let result = sqlx::query(
            "WITH up AS (
                UPDATE jobs SET state = 'available', attempt = 0, run_at = $2, finished_at = NULL
                 WHERE id = $1 AND state = 'dead' RETURNING queue
             )
             SELECT pg_notify($3, queue)::text FROM up",
        )
        .bind(id)
        .bind(self.now())
        .bind(WAKE_CHANNEL)
        .fetch_optional(&self.pool)
        .await?;
        Ok(result.is_some())
    }

    /// Deletes a dead job. False if it is not dead.
    pub async fn discard_dead(&self, id: JobId) -> Result<bool, sqlx::Error> {
        let result = sqlx::query("DELETE FROM jobs WHERE id = $1 AND state = 'dead'")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Deletes completed and cancelled jobs that finished before `before`.
    pub async fn prune_finished(&self, before: DateTime<Utc>) -> Result<u64, sqlx::Error> {
        let result = sqlx::query(
            "DELETE FROM jobs WHERE state IN ('completed', 'cancelled') AND finished_at < $1",
        )
        .bind(before)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected())
    }
}
