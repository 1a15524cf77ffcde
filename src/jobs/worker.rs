//! Running jobs: [`Executor`] runs one claimed job (timeout, outcome, retry schedule, metrics);
//! [`run_pool`] is one queue's worker pool on this node.
//!
//! A pool runs at most `concurrency` jobs at once and claims ahead: it holds up to
//! `min(fetch_batch, concurrency)` more claimed jobs (locked, heartbeated) waiting for a free runner, so a finished handler is
//! followed at once by the next job from memory, not by a round trip, and claims go in batches
//! of at least half of `fetch_batch` instead of one per finished job. When a claim comes back
//! short the queue is drained, so the pool sleeps until a NOTIFY wake-up, the poll interval, or
//! shutdown — no busy polling. Claimed jobs that had not started when shutdown came are handed
//! back at once. Finished attempts go to a completer task that writes them in batches. A
//! heartbeat extends the locks of running jobs every third of the lock time. On shutdown the pool
//! stops claiming, waits for running jobs until the deadline, then aborts the rest and hands them
//! back to the queue so another node starts them at once.
//!
//! Just over 400 lines: one queue's pool and the executor it drives share their bookkeeping
//! (running jobs, the completer, the heartbeat); apart, each would need the other's insides.

use std::any::Any;
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use tokio::sync::{Notify, Semaphore, mpsc, watch};
use tokio::task::JoinSet;

use super::backoff::retry_delay;
use super::handler::{JobContext, JobError, Registry};
use super::queue::Queue;
use super::store::{ClaimedJob, FailOutcome, JobId, JobStore};
use crate::config::JobsSettings;
use crate::metrics::JobMetrics;

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Completed(JobId),
    Retrying(JobId),
    Dead(JobId),
    /// The job's lock had been taken over (rescued elsewhere); this attempt's result was dropped.
    LostLock(JobId),
}

/// Runs claimed jobs through their handlers and records what happened.
pub struct Executor {
    store: JobStore,
    registry: Registry,
    settings: Arc<JobsSettings>,
}

impl Executor {
    pub fn new(store: JobStore, registry: Registry, settings: Arc<JobsSettings>) -> Self {
        Self {
            store,
            registry,
            settings,
        }
    }

    pub fn store(&self) -> &JobStore {
        &self.store
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn settings(&self) -> &JobsSettings {
        &self.settings
    }

    fn lock(&self) -> Duration {
        Duration::from_secs(self.settings.lock_secs)
    }

    fn timeout(&self, queue: Queue) -> Duration {
        Duration::from_secs(self.settings.queues.get(queue).timeout_secs)
    }

    /// Claims one due job of `queue` and runs it to its end on this task, completion included.
    /// `None` when nothing is due. Tests drain queues with it instead of sleeping.
    pub async fn try_execute_one(&self, queue: Queue) -> Result<Option<Outcome>, sqlx::Error> {
        let Some(job) = self
            .store
            .claim(queue, 1, self.lock())
            .await?
            .into_iter()
            .next()
        else {
            return Ok(None);
        };
        let span =
            tracing::info_span!("job", job_id = %job.id, kind = %job.kind, attempt = job.attempt);
        let result = tracing::Instrument::instrument(self.attempt(queue, &job), span).await;
        Ok(Some(match result {
            Ok(()) => {
                if self.store.complete(&[(job.id, job.attempt)]).await? == 1 {
                    self.count_completed(queue, 1);
                    Outcome::Completed(job.id)
                } else {
                    Outcome::LostLock(job.id)
                }
            }
            Err(error) => self.record_failure(queue, &job, error).await?,
        }))
    }

    /// Runs the handler under the queue's timeout.
    async fn attempt(&self, queue: Queue, job: &ClaimedJob) -> Result<(), JobError> {
        if let Some(m) = self.store.metrics() {
            let waited = (job.started_at - job.run_at).num_milliseconds().max(0) as f64 / 1000.0;
            JobMetrics::observe(&m.jobs.wait_seconds, queue.as_str(), waited);
        }
        let ctx = JobContext {
            id: job.id,
            attempt: job.attempt,
            max_attempts: job.max_attempts,
        };
        let start = Instant::now();
        let timeout = self.timeout(queue);
        // A panicking handler is a failed attempt, not a stuck job: without catching it the
        // job's task would vanish while its heartbeat kept the lock alive.
        let run = AssertUnwindSafe(self.registry.dispatch(&job.kind, job.payload.clone(), ctx))
            .catch_unwind();
        let result = match tokio::time::timeout(timeout, run).await {
            Ok(Ok(result)) => result,
            Ok(Err(panic)) => Err(JobError::Retryable(format!(
                "handler panicked: {}",
                panic_message(&*panic)
            ))),
            Err(_) => Err(JobError::Retryable(format!(
                "timed out after {} s",
                timeout.as_secs()
            ))),
        };
        if let Some(m) = self.store.metrics() {
            JobMetrics::observe(
                &m.jobs.run_seconds,
                queue.as_str(),
                start.elapsed().as_secs_f64(),
            );
        }
        result
    }

    /// Writes a failed attempt: a retry with backoff, or dead.
    async fn record_failure(
        &self,
        queue: Queue,
        job: &ClaimedJob,
        error: JobError,
    ) -> Result<Outcome, sqlx::Error> {
        let retry_at = match &error {
            JobError::Permanent(_) => None,
            JobError::Retryable(_) => {
                let delay = retry_delay(
                    job.attempt,
                    Duration::from_secs(self.settings.backoff_base_secs),
                    Duration::from_secs(self.settings.backoff_max_secs),
                    &mut rand::rng(),
                );
                Some(
                    self.store.now()
                        + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX),
                )
            }
        };
        let outcome = self.store.fail(job, &error.to_string(), retry_at).await?;
        let metrics = self.store.metrics();
        Ok(match outcome {
            FailOutcome::Retrying { at } => {
                tracing::warn!(job_id = %job.id, kind = %job.kind, attempt = job.attempt, %error, retry_at = %at, "job failed; will retry");
                if let Some(m) = metrics {
                    JobMetrics::inc(&m.jobs.retried, queue.as_str(), 1);
                }
                Outcome::Retrying(job.id)
            }
            FailOutcome::Dead => {
                tracing::error!(job_id = %job.id, kind = %job.kind, attempt = job.attempt, %error, "job is dead");
                if let Some(m) = metrics {
                    JobMetrics::inc(&m.jobs.dead, queue.as_str(), 1);
                }
                // Once the row says dead (never for a job still to be retried); a panic in it
                // must not take the pool's task with it.
                let bury = (self.registry).bury(&job.kind, job.payload.clone(), error.to_string());
                if let Err(p) = AssertUnwindSafe(bury).catch_unwind().await {
                    tracing::error!(job_id = %job.id, panic = panic_message(&*p), "on_dead panicked");
                }
                Outcome::Dead(job.id)
            }
            FailOutcome::LostLock => Outcome::LostLock(job.id),
        })
    }

    fn count_completed(&self, queue: Queue, n: u64) {
        if let Some(m) = self.store.metrics() {
            JobMetrics::inc(&m.jobs.completed, queue.as_str(), n);
        }
    }
}

/// Jobs this pool is running: id → attempt (for heartbeats and the hand-back at shutdown).
type Running = Arc<Mutex<HashMap<JobId, i32>>>;

/// One queue's worker pool. Returns when `shutdown` turns true and the pool has drained.
pub async fn run_pool(
    executor: Arc<Executor>,
    queue: Queue,
    wake: Arc<Notify>,
    mut shutdown: watch::Receiver<bool>,
    drain_deadline: Duration,
) {
    let settings = Arc::clone(&executor.settings);
    let concurrency = settings.queues.get(queue).concurrency as usize;
    // Jobs claimed ahead, at most: one more round of the pool, and no more than one claim. Not
    // more: jobs claimed here wait for this node's runners while another node may be idle.
    let batch = (settings.fetch_batch as usize).clamp(1, concurrency.max(1));
    // Runners: jobs executing. Slots: jobs claimed (executing or waiting for a runner).
    let runners = Arc::new(Semaphore::new(concurrency));
    let slots = Arc::new(Semaphore::new(concurrency + batch));
    // Claim when at least this many slots are free, so claims come in batches.
    let min_claim = (batch / 2).max(1);
    let running: Running = Arc::default();
    let unstarted: Arc<Mutex<Vec<(JobId, i32)>>> = Arc::default();
    let poll = Duration::from_millis(settings.poll_interval_ms);
    let lock = executor.lock();

    let (done_tx, done_rx) = mpsc::channel(settings.completion_batch * 4);
    let completer = tokio::spawn(complete_in_batches(Arc::clone(&executor), queue, done_rx));
    let heartbeat = tokio::spawn(heartbeat(Arc::clone(&executor), Arc::clone(&running), lock));
    let mut tasks = JoinSet::new();

    tracing::info!(%queue, concurrency, "job worker pool started");
    'claiming: loop {
        while tasks.try_join_next().is_some() {}
        let first = tokio::select! {
            permit = Arc::clone(&slots).acquire_many_owned(min_claim as u32) => match permit {
                Ok(permit) => permit,
                Err(_) => break 'claiming,
            },
            _ = shutdown.changed() => break 'claiming,
        };
        if *shutdown.borrow() {
            break;
        }
        let mut held = first;
        while held.num_permits() < batch {
            match Arc::clone(&slots).try_acquire_owned() {
                Ok(permit) => held.merge(permit),
                Err(_) => break,
            }
        }
        let wanted = held.num_permits();
        let jobs = match executor.store.claim(queue, wanted as u32, lock).await {
            Ok(jobs) => jobs,
            Err(error) => {
                tracing::warn!(%queue, %error, "claiming jobs failed; backing off");
                drop(held);
                tokio::select! {
                    _ = tokio::time::sleep(poll) => continue,
                    _ = shutdown.changed() => break,
                }
            }
        };
        let got = jobs.len();
        for job in jobs {
            let Some(slot) = held.split(1) else { break };
            lock_map(&running).insert(job.id, job.attempt);
            let executor = Arc::clone(&executor);
            let running = Arc::clone(&running);
            let runners = Arc::clone(&runners);
            let unstarted = Arc::clone(&unstarted);
            let mut stop = shutdown.clone();
            let done = done_tx.clone();
            // Everything the attempt logs carries the job's id, kind and attempt.
            let span = tracing::info_span!(
                "job",
                job_id = %job.id,
                kind = %job.kind,
                attempt = job.attempt,
                queue = %queue
            );
            tasks.spawn(tracing::Instrument::instrument(async move {
                // Wait for a runner; a shutdown meanwhile hands the job back unstarted.
                let runner = tokio::select! {
                    biased;
                    runner = runners.acquire_owned() => runner.ok(),
                    _ = stop.wait_for(|stopping| *stopping) => None,
                };
                let Some(runner) = runner.filter(|_| !*stop.borrow()) else {
                    lock_map(&running).remove(&job.id);
                    unstarted.lock().unwrap_or_else(|p| p.into_inner()).push((job.id, job.attempt));
                    drop(slot);
                    return;
                };
                let result = executor.attempt(queue, &job).await;
                match result {
                    // The completer writes it; the lock stays valid meanwhile.
                    Ok(()) => {
                        let _ = done.send((job.id, job.attempt)).await;
                    }
                    Err(error) => {
                        if let Err(db) = executor.record_failure(queue, &job, error).await {
                            tracing::error!(job_id = %job.id, error = %db, "could not record a failed attempt; its lock will expire and it will be retried");
                        }
                    }
                }
                lock_map(&running).remove(&job.id);
                drop(runner);
                drop(slot);
            }, span));
        }
        drop(held);
        if got < wanted {
            // Drained: wait for new work instead of polling in a loop.
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(poll) => {}
                _ = shutdown.changed() => break,
            }
        }
    }

    // Shutdown: no more claims. Let running jobs finish until the deadline...
    let finished = tokio::time::timeout(drain_deadline, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    // ...then stop the rest and hand them back so another node starts them at once, with the
    // claimed jobs that never started.
    let mut unfinished: Vec<(JobId, i32)> =
        std::mem::take(&mut *unstarted.lock().unwrap_or_else(|p| p.into_inner()));
    if finished.is_err() {
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
        unfinished.extend(lock_map(&running).drain());
    }
    if !unfinished.is_empty() {
        match executor.store.release(&unfinished).await {
            Ok(n) => {
                tracing::warn!(%queue, released = n, "jobs not finished (deadline passed) or not started handed back")
            }
            Err(error) => {
                tracing::error!(%queue, %error, "could not hand back unfinished jobs; their locks will expire")
            }
        }
    }
    drop(done_tx);
    let _ = completer.await;
    heartbeat.abort();
    tracing::info!(%queue, "job worker pool stopped");
}

fn panic_message(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

fn lock_map(running: &Running) -> std::sync::MutexGuard<'_, HashMap<JobId, i32>> {
    // The map holds plain ids; a panic elsewhere cannot leave it inconsistent.
    running.lock().unwrap_or_else(|p| p.into_inner())
}

/// Writes completions in batches of up to `completion_batch`, waiting at most
/// `completion_flush_ms` for a batch to fill.
async fn complete_in_batches(
    executor: Arc<Executor>,
    queue: Queue,
    mut done: mpsc::Receiver<(JobId, i32)>,
) {
    let max = executor.settings.completion_batch;
    let flush = Duration::from_millis(executor.settings.completion_flush_ms);
    let mut batch = Vec::with_capacity(max);
    while let Some(first) = done.recv().await {
        batch.push(first);
        let deadline = tokio::time::Instant::now() + flush;
        while batch.len() < max {
            match tokio::time::timeout_at(deadline, done.recv()).await {
                Ok(Some(item)) => batch.push(item),
                Ok(None) | Err(_) => break,
            }
        }
        match executor.store.complete(&batch).await {
            Ok(n) => executor.count_completed(queue, n),
            Err(error) => tracing::error!(
                %queue, %error, jobs = batch.len(),
                "could not record completions; the jobs will be retried when their locks expire"
            ),
        }
        batch.clear();
    }
}

async fn heartbeat(executor: Arc<Executor>, running: Running, lock: Duration) {
    let mut ticker = tokio::time::interval(lock / 3);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        let ids: Vec<JobId> = lock_map(&running).keys().copied().collect();
        if let Err(error) = executor.store.heartbeat(&ids, lock).await {
            tracing::warn!(%error, "job heartbeat failed");
        }
    }
}
