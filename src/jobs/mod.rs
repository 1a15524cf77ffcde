//! Durable background jobs in PostgreSQL (ADR 2).
//!
//! - `store`: the SQL — enqueue (inside the caller's transaction, or on the pool; one row per
//!   job, NOTIFY at commit), claim (`FOR UPDATE SKIP LOCKED`, priority order), complete in
//!   batches, fail (retry with backoff, or dead), heartbeat, rescue expired locks, release,
//!   cancel, dead-letter listing, retry and discard, prune.
//! - `handler`: `JobHandler` (a typed payload per kind) and the `Registry` that dispatches by kind.
//! - `worker`: `Executor` (one attempt: timeout, outcome, metrics; `try_execute_one` for tests)
//!   and `run_pool` (a queue's concurrent workers on this node).
//! - `scheduler`: recurring jobs, once per tick across all nodes (unique key per tick).
//! - `runtime`: starts and stops all of it; `maintenance`: the built-in housekeeping jobs.
//!
//! Flow: a request handler enqueues in its transaction → commit → NOTIFY wakes a pool on some
//! node → the pool claims a batch → one task per job runs its handler → completions are written
//! in batches; failures are retried with exponential backoff and jitter until dead.

pub mod backoff;
pub mod clock;
pub mod handler;
pub mod maintenance;
pub mod queue;
pub mod runtime;
pub mod scheduler;
pub mod store;
pub mod worker;

pub use clock::{Clock, DatabaseClock, ManualClock, SystemClock};
pub use handler::{JobContext, JobError, JobHandler, Registry};
pub use queue::Queue;
pub use runtime::{JobRuntime, StopJobs};
pub use store::{JobId, JobState, JobStore, NewJob};
pub use worker::{Executor, Outcome};
