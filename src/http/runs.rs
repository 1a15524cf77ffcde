//! Run endpoints (RUNS.md, "Runs"): start (idempotent by `Idempotency-Key`), resume, cancel,
//! pause, statuses, a run with its steps, its timeline, its steps' inputs and outputs, and the
//! answers to its waits. Who may: the owner and its team's members; others get 404.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};
use vrooli_actors::RunCommand;

use super::auth::session::{ReadPrivate, Reader, Require, WritePrivate};
use super::path::Id;
use super::{ApiError, Code, ok};
use crate::domain::secret::sha256_hex;
use crate::ids::{ResourceVersionId, RunId};
use crate::runs::{RunError, RunSource, StartRequest};
use crate::state::AppState;

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/task/start/run").route(web::post().to(start)))
        .service(web::resource("/task/cancel").route(web::post().to(cancel)))
        .service(web::resource("/task/pause").route(web::post().to(pause)))
        .service(web::resource("/task/checkStatuses").route(web::get().to(statuses)))
        .service(web::resource("/runs").route(web::get().to(list)))
        .service(web::resource("/run/io").route(web::get().to(io)))
        .service(
            web::resource("/run/{id}")
                .route(web::get().to(get))
                .route(web::put().to(update)),
        )
        .service(web::resource("/run/{id}/events").route(web::get().to(events)))
        .service(web::resource("/run/{id}/decision").route(web::post().to(decide)));
}

impl From<RunError> for ApiError {
    fn from(error: RunError) -> Self {
        let message = error.to_string();
        match error {
            RunError::Routine(error) => error.into(),
            RunError::KindUnavailable { .. } => ApiError::of(Code::NodeKindUnavailable, message),
            RunError::TooDeep(_) => ApiError::of(Code::InvalidRoutineGraph, message),
            RunError::NotFound => ApiError::of(Code::RunNotFound, message),
            RunError::Transition(..) => ApiError::of(Code::InvalidTransition, message),
            RunError::KeyReused => ApiError::of(Code::IdempotencyKeyReused, message),
            RunError::Invalid(_) => ApiError::of(Code::InvalidBody, message),
            RunError::Limits(_) => ApiError::of(Code::InvalidLimits, message),
            RunError::Sql(error) => error.into(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StartBody {
    resource_version_id: Option<ResourceVersionId>,
    #[serde(default = "yes")]
    is_new_run: bool,
    run_id: Option<RunId>,
    #[serde(default)]
    form_values: Option<Value>,
    #[serde(default)]
    config: Option<StartConfig>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StartConfig {
    source: Option<RunSource>,
    /// Lower limits for this run (`maxCredits`, `maxSteps`, `maxTimeMs`).
    #[serde(default)]
    limits: crate::runs::LimitOverrides,
}

fn yes() -> bool {
    true
}

fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= 255)
        .ok_or_else(|| {
            ApiError::of(
                Code::InvalidBody,
                "Idempotency-Key is 1-255 visible characters",
            )
        })?;
    Ok(Some(key.to_owned()))
}

/// `POST /task/start/run {resourceVersionId, isNewRun: true, formValues, config?}`, or
/// `{isNewRun: false, runId}` to resume a Paused or Failed run.
pub async fn start(
    req: HttpRequest,
    caller: Require<WritePrivate>,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let parsed: StartBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::of(Code::InvalidBody, format!("Bad start request: {e}")))?;
    if !parsed.is_new_run {
        let run = parsed
            .run_id
            .ok_or_else(|| ApiError::of(Code::InvalidBody, "runId names the run to resume"))?;
        let limits = parsed.config.map(|c| c.limits).unwrap_or_default();
        let (run, status) = state.runs.resume(run.0, caller.user, limits).await?;
        return Ok(ok(json!({"runId": run.to_string(), "status": status})));
    }
    let version = parsed.resource_version_id.ok_or_else(|| {
        ApiError::of(
            Code::InvalidBody,
            "resourceVersionId names the routine version",
        )
    })?;
    let limits = parsed.config.as_ref().map(|c| c.limits).unwrap_or_default();
    let source = match (parsed.config.and_then(|c| c.source), caller.api_key) {
        (Some(source), _) => source,
        (None, Some(_)) => RunSource::Api,
        (None, None) => RunSource::RunView,
    };
    let request = StartRequest {
        version,
        inputs: parsed.form_values.unwrap_or_else(|| json!({})),
        source,
        idempotency_key: idempotency_key(&req)?,
        request_hash: sha256_hex(&String::from_utf8_lossy(&body)),
        limits,
    };
    let (run, status) = state.runs.start(caller.user, request).await?;
    Ok(ok(json!({"runId": run.to_string(), "status": status})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CancelBody {
    task_id: RunId,
    task_type: String,
}

/// `POST /task/cancel {taskId, taskType: "Run"}`: stops the run, aborting the step in flight.
pub async fn cancel(
    caller: Require<WritePrivate>,
    state: web::Data<AppState>,
    body: web::Json<CancelBody>,
) -> Result<HttpResponse, ApiError> {
    if body.task_type != "Run" {
        return Err(ApiError::of(Code::InvalidTaskType, "taskType is \"Run\""));
    }
    let status = state
        .runs
        .stop(body.task_id.0, caller.user, RunCommand::Cancel)
        .await?;
    Ok(ok(
        json!({"runId": body.task_id.to_string(), "status": status, "requested": "Cancelled"}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PauseBody {
    run_id: RunId,
}

/// `POST /task/pause {runId}`: the run pauses at its next step boundary.
pub async fn pause(
    caller: Require<WritePrivate>,
    state: web::Data<AppState>,
    body: web::Json<PauseBody>,
) -> Result<HttpResponse, ApiError> {
    let status = state
        .runs
        .stop(body.run_id.0, caller.user, RunCommand::Pause)
        .await?;
    Ok(ok(
        json!({"runId": body.run_id.to_string(), "status": status, "requested": "Paused"}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StatusQuery {
    task_type: String,
    task_ids: String,
}

/// `GET /task/checkStatuses?taskType=Run&taskIds=a,b`: the runs' statuses (unknown ones left
/// out).
pub async fn statuses(
    caller: Require<ReadPrivate>,
    state: web::Data<AppState>,
    query: web::Query<StatusQuery>,
) -> Result<HttpResponse, ApiError> {
    if query.task_type != "Run" {
        return Err(ApiError::of(Code::InvalidTaskType, "taskType is \"Run\""));
    }
    let mut ids = Vec::new();
    for id in query
        .task_ids
        .split(',')
        .filter(|s| !s.is_empty())
        .take(100)
    {
        ids.push(
            id.parse::<i64>()
                .map_err(|_| ApiError::of(Code::InvalidRunId, "A run id is a decimal number"))?,
        );
    }
    let rows: Vec<(i64, String)> = state.runs.statuses(&ids, caller.user).await?;
    let statuses: Vec<Value> = rows
        .into_iter()
        .map(|(id, status)| json!({"id": id.to_string(), "status": status}))
        .collect();
    Ok(ok(json!({"statuses": statuses})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    status: Option<String>,
    take: Option<i64>,
    after: Option<String>,
}

const STATUSES: [&str; 6] = [
    "Scheduled",
    "InProgress",
    "Paused",
    "Completed",
    "Failed",
    "Cancelled",
];

/// `GET /runs?status=&take=&after=`: the caller's runs, newest first.
pub async fn list(
    caller: Require<ReadPrivate>,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    if let Some(status) = query.status.as_deref()
        && !STATUSES.contains(&status)
    {
        return Err(ApiError::of(
            Code::InvalidQuery,
            format!("status is one of {STATUSES:?}"),
        ));
    }
    let (take, after) = super::paging::params(query.take, query.after.as_deref())?;
    let rows = state
        .runs
        .list(caller.user, query.status.as_deref(), take, after)
        .await?;
    Ok(ok(super::paging::relay(rows, take, |r| {
        r["id"].as_str().unwrap_or_default().to_owned()
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpdateBody {
    name: Option<String>,
    is_private: Option<bool>,
}

/// `PUT /run/{id} {name?, isPrivate?}`.
pub async fn update(
    caller: Require<WritePrivate>,
    state: web::Data<AppState>,
    Id(run): Id<RunId>,
    body: web::Json<UpdateBody>,
) -> Result<HttpResponse, ApiError> {
    if let Some(name) = body.name.as_deref()
        && (name.chars().count() > 128 || name.chars().any(char::is_control))
    {
        return Err(ApiError::of(
            Code::InvalidName,
            "A run name is at most 128 characters, no control characters",
        ));
    }
    let run = state
        .runs
        .update(run.0, caller.user, body.name.as_deref(), body.is_private)
        .await?;
    Ok(ok(run))
}

pub async fn get(
    reader: Reader,
    state: web::Data<AppState>,
    Id(run): Id<RunId>,
) -> Result<HttpResponse, ApiError> {
    Ok(ok(state.runs.get(run.0, reader.0).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    after: Option<i64>,
    take: Option<i64>,
}

/// `GET /run/{id}/events?after=<seq>&take=`: the timeline from PostgreSQL, for a client that
/// was away longer than the room's history.
pub async fn events(
    reader: Reader,
    state: web::Data<AppState>,
    Id(run): Id<RunId>,
    query: web::Query<EventsQuery>,
) -> Result<HttpResponse, ApiError> {
    let take = query.take.unwrap_or(500);
    if !(1..=1000).contains(&take) {
        return Err(ApiError::of(
            Code::InvalidTake,
            "take must be between 1 and 1000",
        ));
    }
    let events = state
        .runs
        .events(run.0, reader.0, query.after.unwrap_or(0), take)
        .await?;
    Ok(ok(json!({"events": events})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IoQuery {
    run_id: RunId,
}

pub async fn io(
    reader: Reader,
    state: web::Data<AppState>,
    query: web::Query<IoQuery>,
) -> Result<HttpResponse, ApiError> {
    Ok(ok(
        json!({"io": state.runs.io(query.run_id.0, reader.0).await?}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionBody {
    key: String,
    value: Value,
}

/// `POST /run/{id}/decision {key, value}`: answers an `input`, `approval` or manual decision;
/// kept when it comes before the run reaches it. `stored` is false when it was answered before.
pub async fn decide(
    caller: Require<WritePrivate>,
    state: web::Data<AppState>,
    Id(run): Id<RunId>,
    body: web::Json<DecisionBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    if body.key.is_empty() || body.key.len() > 255 {
        return Err(ApiError::of(Code::InvalidBody, "key is 1-255 characters"));
    }
    let stored = state
        .runs
        .decide(run.0, caller.user, &body.key, body.value)
        .await?;
    Ok(ok(json!({"stored": stored})))
}
