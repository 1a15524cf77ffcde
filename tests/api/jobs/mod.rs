//! The job queue against the real PostgreSQL: `queue` (transactional enqueue, priority, backoff
//! driven by a manual clock, dead letters, rescue of a dead worker's job), `runtime` (two pools
//! never running one job twice, the scheduler across three nodes, maintenance, graceful hand-back,
//! NOTIFY wake-ups), `admin` (the admin API and queue health). Shared here: the harness and the
//! test handlers.

mod admin;
mod queue;
mod runtime;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use vrooli::config::JobsSettings;
use vrooli::ids::Snowflake;
use vrooli::jobs::maintenance;
use vrooli::jobs::scheduler::Scheduler;
use vrooli::jobs::{
    Clock, Executor, JobContext, JobError, JobHandler, JobRuntime, JobStore, ManualClock, NewJob,
    Outcome, Queue, Registry, SystemClock,
};

use crate::helpers::{TestDb, spawn_app_with, test_settings, wait_until};

pub struct Harness {
    pub db: TestDb,
    pub settings: Arc<JobsSettings>,
    pub clock: Arc<ManualClock>,
}

impl Harness {
    pub async fn new() -> Self {
        let settings = test_settings();
        let db = TestDb::new(&settings).await;
        Self {
            db,
            settings: Arc::new(settings.jobs.clone()),
            clock: Arc::new(ManualClock::new(Utc::now())),
        }
    }

    pub fn store_with(&self, node: &str, worker: u16, clock: Arc<dyn Clock>) -> JobStore {
        JobStore::new(
            self.db.pool.clone(),
            Arc::new(Snowflake::new(worker).unwrap()),
            clock,
            node,
            self.settings.max_attempts,
        )
    }

    pub fn store(&self, node: &str, worker: u16) -> JobStore {
        self.store_with(node, worker, self.clock.clone())
    }

    pub fn executor(&self, store: JobStore, registry: Registry) -> Executor {
        Executor::new(store, registry, Arc::clone(&self.settings))
    }

    pub async fn state_of(&self, id: vrooli::jobs::JobId) -> (String, i32, Option<String>) {
        sqlx::query_as("SELECT state, attempt, last_error FROM jobs WHERE id = $1")
            .bind(id)
            .fetch_one(&self.db.pool)
            .await
            .unwrap()
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Numbered {
    pub n: u64,
}

/// Records the payload number of every run.
#[derive(Clone, Default)]
pub struct Recorder(pub Arc<Mutex<Vec<u64>>>);

impl JobHandler for Recorder {
    const KIND: &'static str = "test.record";
    const QUEUE: Queue = Queue::NotificationCreate;
    type Payload = Numbered;

    async fn handle(&self, payload: Numbered, _: JobContext) -> Result<(), JobError> {
        self.0.lock().unwrap().push(payload.n);
        Ok(())
    }
}

impl Recorder {
    pub fn runs(&self) -> Vec<u64> {
        self.0.lock().unwrap().clone()
    }
}

/// Fails every attempt, retryably.
pub struct Flaky;

impl JobHandler for Flaky {
    const KIND: &'static str = "test.flaky";
    const QUEUE: Queue = Queue::NotificationCreate;
    type Payload = Numbered;

    async fn handle(&self, _: Numbered, ctx: JobContext) -> Result<(), JobError> {
        Err(JobError::retryable(format!(
            "provider unavailable (attempt {})",
            ctx.attempt
        )))
    }
}

pub fn numbered(n: u64) -> NewJob {
    Recorder::job(&Numbered { n }).unwrap()
}
