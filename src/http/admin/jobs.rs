//! Admin handlers for the job queues.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, delete, get, post, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::errors::Code;
use crate::http::bodies::Deleted;
use crate::http::error::ApiError;
use crate::http::paging::Relay;
use crate::http::path::Id;
use crate::http::reply::{Envelope, ok};
use crate::http::system_key::SystemCaller;
use crate::jobs::store::JobSummary;
use crate::jobs::{JobId, JobState, Queue};
use crate::state::AppState;

/// Every queue with its job count per state.
#[utoipa::path(
    tag = "admin",
    responses((status = 200, description = "Counts per queue and state", body = Envelope<Queues>)),
    security(("apiKey" = []), ("bearer" = [])),
)]
#[get("/admin/queues")]
pub async fn queue_counts(
    _: SystemCaller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let rows = state.infra.jobs.counts().await?;
    let mut queues: BTreeMap<&str, BTreeMap<&str, i64>> = Queue::ALL
        .iter()
        .map(|q| {
            (
                q.as_str(),
                JobState::ALL.iter().map(|s| (s.as_str(), 0)).collect(),
            )
        })
        .collect();
    for (queue, job_state, count) in &rows {
        if let Some(states) = queues.get_mut(queue.as_str())
            && let Some(slot) = states.get_mut(job_state.as_str())
        {
            *slot = *count;
        }
    }
    let queues = queues
        .into_iter()
        .map(|(queue, counts)| QueueCounts { queue, counts })
        .collect();
    Ok(ok(Queues { queues }))
}

#[derive(Serialize, ToSchema)]
pub struct Queues {
    queues: Vec<QueueCounts>,
}

#[derive(Serialize, ToSchema)]
pub struct QueueCounts {
    #[schema(value_type = String)]
    queue: &'static str,
    /// Jobs per state (`available`, `running`, `completed`, `retrying`, `dead`, `cancelled`).
    #[schema(value_type = BTreeMap<String, i64>)]
    counts: BTreeMap<&'static str, i64>,
}

/// A job's new state after an admin action.
#[derive(Serialize, ToSchema)]
pub struct JobMoved {
    id: JobId,
    state: JobState,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeadQuery {
    /// Only this queue's dead jobs.
    queue: Option<String>,
    /// Page size, 1–100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    take: Option<i64>,
    /// The `endCursor` of the previous page.
    after: Option<String>,
}

/// Dead jobs, newest first.
#[utoipa::path(
    tag = "admin",
    params(DeadQuery),
    responses((status = 200, description = "A page of dead jobs", body = Envelope<Relay<JobSummary>>)),
    security(("apiKey" = []), ("bearer" = [])),
)]
#[get("/admin/jobs/dead")]
pub async fn list_dead(
    _: SystemCaller,
    state: web::Data<AppState>,
    query: web::Query<DeadQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let queue =
        match query.queue.as_deref() {
            None => None,
            Some(name) => Some(Queue::parse(name).ok_or_else(|| {
                ApiError::of(Code::UnknownQueue, format!("No queue named {name}"))
            })?),
        };
    let (take, after) = crate::http::paging::params(query.take, query.after.as_deref())?;
    // One extra row tells whether another page exists.
    let jobs = state
        .infra
        .jobs
        .list_dead(queue, take + 1, after.map(JobId))
        .await?;
    Ok(ok(crate::http::paging::relay(jobs, take, |j| {
        j.id.to_string()
    })))
}

/// A dead job gets a fresh set of attempts, due now.
#[utoipa::path(
    tag = "admin",
    params(("id" = JobId, Path, description = "A dead job's id")),
    responses((status = 200, description = "The job is available again", body = Envelope<JobMoved>)),
    security(("apiKey" = []), ("bearer" = [])),
)]
#[post("/admin/jobs/{id}/retry")]
pub async fn retry(
    _: SystemCaller,
    state: web::Data<AppState>,
    Id(id): Id<JobId>,
) -> Result<HttpResponse, ApiError> {
    if state.infra.jobs.retry_dead(id).await? {
        Ok(ok(JobMoved {
            id,
            state: JobState::Available,
        }))
    } else {
        Err(ApiError::of(
            Code::DeadJobNotFound,
            "No dead job has this id",
        ))
    }
}

/// Discards a dead job.
#[utoipa::path(
    tag = "admin",
    params(("id" = JobId, Path, description = "A dead job's id")),
    responses((status = 200, description = "The job is gone", body = Envelope<Deleted<JobId>>)),
    security(("apiKey" = []), ("bearer" = [])),
)]
// Digits only: `/admin/jobs/dead` is another route (a DELETE there is a 405).
#[delete("/admin/jobs/{id:\\d+}")]
pub async fn discard(
    _: SystemCaller,
    state: web::Data<AppState>,
    Id(id): Id<JobId>,
) -> Result<HttpResponse, ApiError> {
    if state.infra.jobs.discard_dead(id).await? {
        Ok(ok(Deleted::new(id)))
    } else {
        Err(ApiError::of(
            Code::DeadJobNotFound,
            "No dead job has this id",
        ))
    }
}

/// Cancels a job that has not started.
#[utoipa::path(
    tag = "admin",
    params(("id" = JobId, Path, description = "A pending job's id")),
    responses((status = 200, description = "The job is cancelled", body = Envelope<JobMoved>)),
    security(("apiKey" = []), ("bearer" = [])),
)]
#[post("/admin/jobs/{id}/cancel")]
pub async fn cancel(
    _: SystemCaller,
    state: web::Data<AppState>,
    Id(id): Id<JobId>,
) -> Result<HttpResponse, ApiError> {
    if state.infra.jobs.cancel(id).await? {
        Ok(ok(JobMoved {
            id,
            state: JobState::Cancelled,
        }))
    } else {
        Err(ApiError::of(
            Code::JobNotPending,
            "Only a job that has not started can be cancelled",
        ))
    }
}
