//! The queue's data: a job's id (a string in JSON), its states, a job to enqueue (with its
//! setters), a claimed job, the admin's summary and what a failed attempt became; and the
//! NOTIFY channel that wakes workers. No SQL here.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::jobs::queue::Queue;

/// The NOTIFY channel that wakes workers; the payload is the queue name.
pub const WAKE_CHANNEL: &str = "vrooli_jobs";

/// A job's id: a Snowflake, a string in JSON.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    sqlx::Type,
    Serialize,
    utoipa::ToSchema,
)]
#[sqlx(transparent)]
#[schema(value_type = String, pattern = "^[0-9]{1,19}$")]
pub struct JobId(#[serde(serialize_with = "as_string")] pub i64);

fn as_string<S: serde::Serializer>(id: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(id)
}

impl std::str::FromStr for JobId {
    type Err = std::num::ParseIntError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(JobId)
    }
}

impl std::fmt::Display for JobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Available,
    Running,
    Completed,
    Retrying,
    Dead,
    Cancelled,
}

impl JobState {
    pub const ALL: [JobState; 6] = [
        JobState::Available,
        JobState::Running,
        JobState::Completed,
        JobState::Retrying,
        JobState::Dead,
        JobState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Available => "available",
            JobState::Running => "running",
            JobState::Completed => "completed",
            JobState::Retrying => "retrying",
            JobState::Dead => "dead",
            JobState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == s)
    }
}

/// A job to enqueue. Built with [`NewJob::new`] and the chained setters.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub queue: Queue,
    pub kind: String,
    pub payload: Value,
    pub priority: i32,
    pub run_at: Option<DateTime<Utc>>,
    pub max_attempts: Option<i32>,
    pub unique_key: Option<String>,
}

impl NewJob {
    pub fn new(queue: Queue, kind: impl Into<String>, payload: Value) -> Self {
        Self {
            queue,
            kind: kind.into(),
            payload,
            priority: 100,
            run_at: None,
            max_attempts: None,
            unique_key: None,
        }
    }

    /// Lower runs first (base 100, as in the original).
    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }

    /// Not before this time (a delayed job).
    pub fn run_at(mut self, at: DateTime<Utc>) -> Self {
        self.run_at = Some(at);
        self
    }

    pub fn max_attempts(mut self, attempts: i32) -> Self {
        self.max_attempts = Some(attempts);
        self
    }

    /// At most one job with this key exists (until pruned); a duplicate enqueue does nothing.
    pub fn unique_key(mut self, key: impl Into<String>) -> Self {
        self.unique_key = Some(key.into());
        self
    }
}

/// A job a worker has claimed.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClaimedJob {
    pub id: JobId,
    pub queue: String,
    pub kind: String,
    pub payload: Value,
    pub attempt: i32,
    pub max_attempts: i32,
    pub run_at: DateTime<Utc>,
    pub started_at: DateTime<Utc>,
}

/// A job as the admin API lists it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobSummary {
    pub id: JobId,
    pub queue: String,
    pub kind: String,
    pub payload: Value,
    pub priority: i32,
    pub state: String,
    pub attempt: i32,
    pub max_attempts: i32,
    pub run_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// What happened to a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOutcome {
    Retrying {
        at: DateTime<Utc>,
    },
    Dead,
    /// The job was no longer ours (rescued elsewhere); nothing written.
    LostLock,
}
