//! Admin handlers for the job queues.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use crate::http::Code;
use crate::http::path::Id;
use crate::http::system_key::SystemCaller;
use crate::http::{ApiError, ok};
use crate::jobs::{JobId, JobState, Queue};
use crate::state::AppState;

/// `GET /api/v2/admin/queues`: every queue with its job count per state.
pub async fn queue_counts(
    _: SystemCaller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let rows = state.jobs.counts().await?;
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
    let queues: Vec<_> = queues
        .into_iter()
        .map(|(queue, counts)| json!({ "queue": queue, "counts": counts }))
        .collect();
    Ok(ok(json!({ "queues": queues })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadQuery {
    queue: Option<String>,
    take: Option<i64>,
    after: Option<String>,
}

/// `GET /api/v2/admin/jobs/dead?queue=&take=&after=`: dead jobs, newest first, Relay-style.
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
        .jobs
        .list_dead(queue, take + 1, after.map(JobId))
        .await?;
    Ok(ok(crate::http::paging::relay(jobs, take, |j| {
        j.id.to_string()
    })))
}

/// `POST /api/v2/admin/jobs/{id}/retry`: a dead job gets a fresh set of attempts, due now.
pub async fn retry(
    _: SystemCaller,
    state: web::Data<AppState>,
    Id(id): Id<JobId>,
) -> Result<HttpResponse, ApiError> {
    if state.jobs.retry_dead(id).await? {
        Ok(ok(json!({ "id": id, "state": JobState::Available })))
    } else {
        Err(ApiError::of(
            Code::DeadJobNotFound,
            "No dead job has this id",
        ))
    }
}

/// `DELETE /api/v2/admin/jobs/{id}`: discards a dead job.
pub async fn discard(
    _: SystemCaller,
    state: web::Data<AppState>,
    Id(id): Id<JobId>,
) -> Result<HttpResponse, ApiError> {
    if state.jobs.discard_dead(id).await? {
        Ok(ok(json!({ "id": id, "deleted": true })))
    } else {
        Err(ApiError::of(
            Code::DeadJobNotFound,
            "No dead job has this id",
        ))
    }
}

/// `POST /api/v2/admin/jobs/{id}/cancel`: cancels a job that has not started.
pub async fn cancel(
    _: SystemCaller,
    state: web::Data<AppState>,
    Id(id): Id<JobId>,
) -> Result<HttpResponse, ApiError> {
    if state.jobs.cancel(id).await? {
        Ok(ok(json!({ "id": id, "state": JobState::Cancelled })))
    } else {
        Err(ApiError::of(
            Code::JobNotPending,
            "Only a job that has not started can be cancelled",
        ))
    }
}
