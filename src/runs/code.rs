//! `code` steps through the `sandbox-execution` queue (the original's queue of that name):
//!
//! ```text
//! step (run actor, lease held) ─▶ enqueue job {runId, stepKey, attempt, code, input}
//!        unique per step attempt ─▶ wait: woken by this node's handler, or polling the result
//!        (another node's pool ran it); cancel stops the wait
//! job (any node's pool; the queue's concurrency bounds the children of a node)
//!        ─▶ run ended? nothing to do ─▶ Sandbox::run (a child process, src/sandbox/)
//!        ─▶ run_code_results (the first outcome stored counts) ─▶ wake a waiter on this node
//! ```
//!
//! The outcome lives in its own table, not in `run_decisions`: people answer those, and nobody
//! may answer for a script. Scripts have no host functions, so running one again (a takeover
//! starts a new attempt) repeats nothing outside the sandbox.

use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::PgPool;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::jobs::{JobContext, JobError, JobHandler, JobStore, Queue};
use crate::sandbox::{Sandbox, SandboxError};

/// How often a waiting step looks for an outcome stored by another node (one on this node
/// wakes it at once). Short: scripts last at most `sandbox.timeout_ms`.
const POLL: Duration = Duration::from_millis(100);

/// What a script gave, as stored.
pub type Outcome = Result<Value, SandboxError>;

/// The `code` steps of this node waiting for their jobs, by job key.
#[derive(Default)]
pub struct CodeResults {
    waiting: DashMap<String, Arc<Notify>>,
}

fn job_key(step_key: &str, attempt: i32) -> String {
    format!("sandbox:{step_key}#{attempt}")
}

/// A script to run for one attempt of one step.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SandboxPayload {
    pub run_id: String,
    pub step_key: String,
    pub attempt: i32,
    pub code: String,
    pub input: Value,
    pub timeout_ms: Option<u64>,
}

impl CodeResults {
    /// Enqueues the script of `payload`'s step attempt (once: a second call finds the first
    /// job) and waits for its outcome. `None` when `cancel` fired first.
    pub async fn run(
        &self,
        pool: &PgPool,
        jobs: &JobStore,
        payload: SandboxPayload,
        cancel: &CancellationToken,
    ) -> Result<Option<Outcome>, sqlx::Error> {
        let key = job_key(&payload.step_key, payload.attempt);
        let (step_key, attempt) = (payload.step_key.clone(), payload.attempt);
        let notify = Arc::clone(self.waiting.entry(key.clone()).or_default().value());
        let _registered = Deregister(&self.waiting, &key);
        let job = SandboxExecution::job(&payload)
            .map_err(|e| sqlx::Error::Encode(Box::new(e)))?
            .unique_key(key.clone());
        jobs.enqueue(job).await?;
        loop {
            // Registered before the check: a wake between the check and the wait is kept.
            let woken = notify.notified();
            if let Some(outcome) = stored(pool, &step_key, attempt, &key).await? {
                return Ok(Some(outcome));
            }
            tokio::select! {
                _ = woken => {}
                _ = tokio::time::sleep(POLL) => {}
                _ = cancel.cancelled() => return Ok(None),
            }
        }
    }

    fn wake(&self, key: &str) {
        if let Some(notify) = self.waiting.get(key) {
            notify.notify_waiters();
        }
    }
}

/// Removes a waiter's entry however its wait ends.
struct Deregister<'a>(&'a DashMap<String, Arc<Notify>>, &'a str);

impl Drop for Deregister<'_> {
    fn drop(&mut self) {
        self.0.remove(self.1);
    }
}

/// The stored outcome; or, when the job is gone without one (dead, cancelled, pruned), a
/// failure another attempt may get past. `None` while the job is still to run.
async fn stored(
    pool: &PgPool,
    step_key: &str,
    attempt: i32,
    key: &str,
) -> Result<Option<Outcome>, sqlx::Error> {
    let (outcome, state): (Option<Value>, Option<String>) = sqlx::query_as(
        "SELECT (SELECT outcome FROM run_code_results WHERE step_key = $1 AND attempt = $2),
                (SELECT state FROM jobs WHERE unique_key = $3)",
    )
    .bind(step_key)
    .bind(attempt)
    .bind(key)
    .fetch_one(pool)
    .await?;
    if let Some(outcome) = outcome {
        let outcome = serde_json::from_value(outcome)
            .unwrap_or_else(|e| Err(SandboxError::Crashed(format!("unreadable outcome: {e}"))));
        return Ok(Some(outcome));
    }
    Ok(match state.as_deref() {
        Some("available" | "running" | "retrying") => None,
        // Completed without an outcome: the run had ended when it ran (see the handler).
        _ => Some(Err(SandboxError::Unavailable(
            "the sandbox job ended without a result".into(),
        ))),
    })
}

/// `sandbox-execution`: runs one script and stores its outcome for the step.
pub struct SandboxExecution {
    pub pool: PgPool,
    pub sandbox: Sandbox,
    pub results: Arc<CodeResults>,
}

impl JobHandler for SandboxExecution {
    const KIND: &'static str = "sandbox-execution";
    const QUEUE: Queue = Queue::SandboxExecution;
    type Payload = SandboxPayload;

    async fn handle(&self, p: SandboxPayload, ctx: JobContext) -> Result<(), JobError> {
        let run: i64 = p.run_id.parse().map_err(JobError::permanent)?;
        let status: Option<String> = sqlx::query_scalar("SELECT status FROM runs WHERE id = $1")
            .bind(run)
            .fetch_optional(&self.pool)
            .await
            .map_err(JobError::retryable)?;
        if !matches!(status.as_deref(), Some("InProgress" | "Paused")) {
            // Cancelled, failed or deleted meanwhile: nobody waits for this script.
            return Ok(());
        }
        let outcome = self
            .sandbox
            .run(&p.code, &p.input, p.timeout_ms.map(Duration::from_millis))
            .await;
        if let Err(SandboxError::Unavailable(reason)) = &outcome
            && ctx.attempt < ctx.max_attempts
        {
            // No child could start (the host's limits): the queue tries again later. The
            // last attempt stores the failure instead, so the step never waits for nothing.
            return Err(JobError::retryable(reason));
        }
        let outcome = serde_json::to_value(&outcome).map_err(JobError::permanent)?;
        sqlx::query(
            "INSERT INTO run_code_results (run_id, step_key, attempt, outcome)
             VALUES ($1, $2, $3, $4) ON CONFLICT (step_key, attempt) DO NOTHING",
        )
        .bind(run)
        .bind(&p.step_key)
        .bind(p.attempt)
        .bind(outcome)
        .execute(&self.pool)
        .await
        .map_err(JobError::retryable)?;
        self.results.wake(&job_key(&p.step_key, p.attempt));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outcome_reads_back_as_it_was_stored() {
        for outcome in [
            Ok(serde_json::json!({"sum": 42})),
            Err(SandboxError::Timeout(500)),
            Err(SandboxError::OutOfMemory),
            Err(SandboxError::Script("boom".into())),
        ] {
            let stored = serde_json::to_value(&outcome).unwrap();
            let back: Outcome = serde_json::from_value(stored).unwrap();
            assert_eq!(back, outcome);
        }
    }
}
