//! The queue's SQL: the worker path here, the operator path (counts, dead letters, cancel,
//! prune) in `admin.rs`. Every statement that changes a job is guarded so a worker that lost its lock
//! (its node stalled, the job was rescued and re-run elsewhere) cannot complete or fail the job a
//! second time: completion matches `(id, attempt, locked_by)`.
//!
//! This file is the worker path (enqueue, claim, complete, fail, heartbeat, rescue, release),
//! kept together because each is guarded by the same `(id, attempt, locked_by)` rule and they
//! are easiest to check side by side; `types.rs` holds the job's id, states and rows.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

use super::clock::Clock;
use super::queue::Queue;
use crate::ids::Snowflake;

mod admin;
mod types;

pub use types::{ClaimedJob, FailOutcome, JobId, JobState, JobSummary, NewJob, WAKE_CHANNEL};

use crate::metrics::{JobMetrics, Metrics};

/// The queue's storage: the pool, the id generator, the clock, and this node's name in locks.
#[derive(Clone)]
pub struct JobStore {
    pool: PgPool,
    ids: Arc<Snowflake>,
    clock: Arc<dyn Clock>,
    node: Arc<str>,
    default_max_attempts: i32,
    metrics: Option<Arc<Metrics>>,
}

impl JobStore {
    pub fn new(
        pool: PgPool,
        ids: Arc<Snowflake>,
        clock: Arc<dyn Clock>,
        node: impl Into<Arc<str>>,
        default_max_attempts: i32,
    ) -> Self {
        Self {
            pool,
            ids,
            clock,
            node: node.into(),
            default_max_attempts,
            metrics: None,
        }
    }

    /// Counts enqueued jobs in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    pub fn metrics(&self) -> Option<&Arc<Metrics>> {
        self.metrics.as_ref()
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    /// Enqueues on the pool (its own transaction). `None` when `unique_key` already exists.
    pub async fn enqueue(&self, job: NewJob) -> Result<Option<JobId>, sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        self.enqueue_in(&mut conn, job).await
    }

    /// Enqueues on `conn`, usually a transaction (`&mut *tx`): the job exists if and only if the
    /// transaction commits, and its wake-up NOTIFY is delivered at commit.
    pub async fn enqueue_in(
        &self,
        conn: &mut PgConnection,
        job: NewJob,
    ) -> Result<Option<JobId>, sqlx::Error> {
        Ok(self
            .enqueue_many_in(conn, vec![job])
            .await?
            .into_iter()
            .next()
            .flatten())
    }

    /// Enqueues many jobs in one statement; one entry per job, `None` where de-duplicated.
    pub async fn enqueue_many_in(
        &self,
        conn: &mut PgConnection,
        jobs: Vec<NewJob>,
    ) -> Result<Vec<Option<JobId>>, sqlx::Error> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let now = self.now();
        let n = jobs.len();
        let mut ids = Vec::with_capacity(n);
        let mut queues = Vec::with_capacity(n);
        let mut kinds = Vec::with_capacity(n);
        let mut payloads = Vec::with_capacity(n);
        let mut priorities = Vec::with_capacity(n);
        let mut run_ats = Vec::with_capacity(n);
        let mut attempts = Vec::with_capacity(n);
        let mut keys = Vec::with_capacity(n);
        for job in jobs {
            ids.push(self.ids.next_id());
            queues.push(job.queue.as_str());
            kinds.push(job.kind);
            payloads.push(job.payload);
            priorities.push(job.priority);
            run_ats.push(job.run_at.unwrap_or(now));
            attempts.push(job.max_attempts.unwrap_or(self.default_max_attempts));
            keys.push(job.unique_key);
        }
        // NOTIFY inside the statement: delivered when (and only if) the transaction commits.
        let inserted: Vec<i64> = sqlx::query_scalar(
            "WITH ins AS (
                INSERT INTO jobs (id, queue, kind, payload, priority, run_at, max_attempts, unique_key, created_at)
                SELECT *, $9::timestamptz FROM unnest($1::bigint[], $2::text[], $3::text[], $4::jsonb[],
                                                     $5::int[], $6::timestamptz[], $7::int[], $8::text[])
                ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL DO NOTHING
                RETURNING id, queue
             ), woken AS (
                SELECT pg_notify($10, queue) FROM (SELECT DISTINCT queue FROM ins) q
             )
             SELECT id FROM ins WHERE (SELECT count(*) FROM woken) >= 0",
        )
        .bind(&ids)
        .bind(&queues)
        .bind(&kinds)
        .bind(&payloads)
        .bind(&priorities)
        .bind(&run_ats)
        .bind(&attempts)
        .bind(&keys)
        .bind(now)
        .bind(WAKE_CHANNEL)
        .fetch_all(&mut *conn)
        .await?;
        let inserted: std::collections::HashSet<i64> = inserted.into_iter().collect();
        if let Some(metrics) = &self.metrics {
            for (id, queue) in ids.iter().zip(&queues) {
                if inserted.contains(id) {
                    JobMetrics::inc(&metrics.jobs.enqueued, queue, 1);
                }
            }
        }
        Ok(ids
            .into_iter()
            .map(|id| inserted.contains(&id).then_some(JobId(id)))
            .collect())
    }

    /// Claims up to `limit` due jobs of `queue`, best priority first, locking them for `lock`.
    pub async fn claim(
        &self,
        queue: Queue,
        limit: u32,
        lock: Duration,
    ) -> Result<Vec<ClaimedJob>, sqlx::Error> {
        let now = self.now();
        sqlx::query_as(
            "WITH next AS (
                SELECT id FROM jobs
                 WHERE queue = $1 AND state IN ('available', 'retrying') AND run_at <= $2
                 ORDER BY priority, run_at, id
                 LIMIT $3
                 FOR UPDATE SKIP LOCKED
             )
             UPDATE jobs j
                SET state = 'running', attempt = j.attempt + 1, locked_by = $4,
                    locked_until = $2 + make_interval(secs => $5), started_at = $2
               FROM next
              WHERE j.id = next.id
             RETURNING j.id, j.queue, j.kind, j.payload, j.attempt, j.max_attempts, j.run_at, j.started_at",
        )
        .bind(queue.as_str())
        .bind(now)
        .bind(i64::from(limit))
        .bind(&*self.node)
        .bind(lock.as_secs_f64())
        .fetch_all(&self.pool)
        .await
    }

    /// Marks finished attempts completed, in one statement. Returns how many were still ours.
    pub async fn complete(&self, done: &[(JobId, i32)]) -> Result<u64, sqlx::Error> {
        if done.is_empty() {
            return Ok(0);
        }
        let ids: Vec<i64> = done.iter().map(|(id, _)| id.0).collect();
        let attempts: Vec<i32> = done.iter().map(|(_, a)| *a).collect();
        let result = sqlx::query(
            "UPDATE jobs j
                SET state = 'completed', finished_at = $3, locked_by = NULL, locked_until = NULL
               FROM unnest($1::bigint[], $2::int[]) AS d(id, attempt)
              WHERE j.id = d.id AND j.attempt = d.attempt AND j.state = 'running' AND j.locked_by = $4",
        )
        .bind(&ids)
        .bind(&attempts)
        .bind(self.now())
        .bind(&*self.node)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected())
    }

    /// Records a failed attempt: retry at `retry_at`, or dead when attempts are used up or the
    /// failure is permanent (`retry_at = None`).
    pub async fn fail(
        &self,
        job: &ClaimedJob,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<FailOutcome, sqlx::Error> {
        let dead = retry_at.is_none() || job.attempt >= job.max_attempts;
        let now = self.now();
        let run_at = if dead { now } else { retry_at.unwrap_or(now) };
        let result = sqlx::query(
            "UPDATE jobs
                SET state = $3, run_at = $4, last_error = $5, locked_by = NULL, locked_until = NULL,
                    finished_at = CASE WHEN $3 = 'dead' THEN $6 ELSE NULL END
              WHERE id = $1 AND attempt = $2 AND state = 'running' AND locked_by = $7",
        )
        .bind(job.id)
        .bind(job.attempt)
        .bind(if dead { "dead" } else { "retrying" })
        .bind(run_at)
        .bind(truncate(error, 4000))
        .bind(now)
        .bind(&*self.node)
        .execute(&self.pool)
        .await?;
        Ok(match (result.rows_affected(), dead) {
            (0, _) => FailOutcome::LostLock,
            (_, true) => FailOutcome::Dead,
            (_, false) => FailOutcome::Retrying { at: run_at },
        })
    }

    /// Extends the locks of jobs this node is running.
    pub async fn heartbeat(&self, running: &[JobId], lock: Duration) -> Result<u64, sqlx::Error> {
        if running.is_empty() {
            return Ok(0);
        }
        let ids: Vec<i64> = running.iter().map(|id| id.0).collect();
        let result = sqlx::query(
            "UPDATE jobs SET locked_until = $2 + make_interval(secs => $3)
              WHERE id = ANY($1) AND state = 'running' AND locked_by = $4",
        )
        .bind(&ids)
        .bind(self.now())
        .bind(lock.as_secs_f64())
        .bind(&*self.node)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected())
    }

    /// Retries (or buries, if it was the last attempt) every job whose lock has expired: its
    /// worker died or stalled. Returns how many were rescued.
    pub async fn rescue_expired(&self) -> Result<u64, sqlx::Error> {
        let now = self.now();
        let result = sqlx::query(
            "UPDATE jobs
                SET state = CASE WHEN attempt >= max_attempts THEN 'dead' ELSE 'retrying' END,
                    finished_at = CASE WHEN attempt >= max_attempts THEN $1 ELSE NULL END,
                    run_at = $1, locked_by = NULL, locked_until = NULL,
                    last_error = 'lock expired: the worker running it stopped (attempt ' || attempt || ')'
              WHERE state = 'running' AND locked_until < $1",
        )
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected())
    }

    /// Hands jobs this node will not finish back to the queue at once, as if never started.
    pub async fn release(&self, jobs: &[(JobId, i32)]) -> Result<u64, sqlx::Error> {
        if jobs.is_empty() {
            return Ok(0);
        }
        let ids: Vec<i64> = jobs.iter().map(|(id, _)| id.0).collect();
        let attempts: Vec<i32> = jobs.iter().map(|(_, a)| *a).collect();
        let result = sqlx::query(
            "UPDATE jobs j
                SET state = 'available', attempt = j.attempt - 1, run_at = $3,
                    locked_by = NULL, locked_until = NULL, started_at = NULL
               FROM unnest($1::bigint[], $2::int[]) AS d(id, attempt)
              WHERE j.id = d.id AND j.attempt = d.attempt AND j.state = 'running' AND j.locked_by = $4",
        )
        .bind(&ids)
        .bind(&attempts)
        .bind(self.now())
        .bind(&*self.node)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected())
    }
}

fn truncate(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}
