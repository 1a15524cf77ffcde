//! Run endpoints (docs/ROUTINES.md, "The API"): start (idempotent by `Idempotency-Key`), resume, cancel,
//! pause, statuses, a run with its steps, its timeline, its steps' inputs and outputs, and the
//! answers to its waits. Who may: the owner and its team's members; others get 404. The
//! handlers are here; what they read and answer is in `bodies`.
//!
//! Just over 400 lines: one short handler per run route, with its OpenAPI annotation; the bodies
//! are `bodies.rs`.

use actix_web::{HttpRequest, HttpResponse, get, post, put, web};
use serde_json::Value;
use vrooli_actors::RunCommand;

mod bodies;

use super::auth::readers::{Reader, TeamReader};
use super::auth::session::{ReadPrivate, Require, RequireTeam, WritePrivate};
use super::error::ApiError;
use super::openapi::ErrorEnvelope;
use super::paging::Relay;
use super::path::Id;
use super::reply::{Envelope, ok};
use crate::domain::secret::sha256_hex;
use crate::errors::Code;
use crate::ids::RunId;
use crate::runs::read::{Run, RunStatus, RunSummary};
use crate::runs::{RunSource, StartRequest};
use crate::state::AppState;
use bodies::*;

pub fn config(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    // `/run/io` before `/run/{id}`, which would take `io` for an id.
    cfg.service(start_run)
        .service(cancel_run)
        .service(pause_run)
        .service(run_statuses)
        .service(list_runs)
        .service(run_io)
        .service(get_run)
        .service(update_run)
        .service(run_events)
        .service(decide);
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

/// Start a run of a routine version, or resume a Paused or Failed run.
///
/// A new run is `{resourceVersionId, formValues, config?}`; `{isNewRun: false, runId}` resumes
/// one (with `config.limits` raised, e.g. after `MaxCredits`). The run is Scheduled and
/// executes in the background: follow it in the run room over the WebSocket or through
/// `GET /run/{id}`. The same `Idempotency-Key` with the same body answers the same run.
#[utoipa::path(
    tag = "runs",
    params(("Idempotency-Key" = Option<String>, Header, description = "1–255 visible characters: a retry with the same key and body answers the first request's run")),
    request_body = StartRunBody,
    responses(
        (status = 200, description = "The run and its status", body = Envelope<RunStarted>),
        (status = 409, description = "The `Idempotency-Key` was used with another body (`IdempotencyKeyReused`), or the run cannot be resumed (`InvalidTransition`)", body = ErrorEnvelope),
    ),
)]
#[post("/task/start/run")]
pub async fn start_run(
    req: HttpRequest,
    caller: RequireTeam<WritePrivate>,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let parsed: StartRunBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::of(Code::InvalidBody, format!("Bad start request: {e}")))?;
    if !parsed.is_new_run {
        let run = parsed
            .run_id
            .ok_or_else(|| ApiError::of(Code::InvalidBody, "runId names the run to resume"))?;
        if caller.team.is_some() {
            caller.within(state.runs.runs.team_of(run.0).await?)?;
        }
        let limits = parsed.config.map(|c| c.limits).unwrap_or_default();
        let (run, status) = state.runs.runs.resume(run.0, caller.user, limits).await?;
        return Ok(ok(RunStarted {
            run_id: RunId(run),
            status,
        }));
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
    // A team's key starts its team's runs, of its team's routines or public ones: never a
    // private routine of the key's maker (a team run would show it to the team).
    let team = parsed.team_id.or(caller.team);
    if caller.team.is_some() {
        caller.within(team)?;
        let routine = state
            .runs
            .routines
            .version(version, Some(caller.user))
            .await?;
        if routine.is_private {
            caller.within(routine.team_id)?;
        }
    }
    let request = StartRequest {
        version,
        team,
        inputs: parsed
            .form_values
            .unwrap_or_else(|| Value::Object(Default::default())),
        source,
        idempotency_key: idempotency_key(&req)?,
        request_hash: sha256_hex(&String::from_utf8_lossy(&body)),
        limits,
        // The run keeps the key: its steps act with the key's permissions and spend within
        // its credit limits.
        api_key: caller.api_key,
        parent: None,
    };
    let (run, status) = state.runs.runs.start(caller.user, request).await?;
    Ok(ok(RunStarted {
        run_id: RunId(run),
        status,
    }))
}

/// Cancel a run, aborting the step in flight.
#[utoipa::path(
    tag = "runs",
    request_body = CancelRunBody,
    responses((status = 200, description = "The run's status now, and what was asked", body = Envelope<StopRequested>)),
)]
#[post("/task/cancel")]
pub async fn cancel_run(
    caller: RequireTeam<WritePrivate>,
    state: web::Data<AppState>,
    body: web::Json<CancelRunBody>,
) -> Result<HttpResponse, ApiError> {
    if body.task_type != "Run" {
        return Err(ApiError::of(Code::InvalidTaskType, "taskType is \"Run\""));
    }
    if caller.team.is_some() {
        caller.within(state.runs.runs.team_of(body.task_id.0).await?)?;
    }
    let status = state
        .runs
        .runs
        .stop(body.task_id.0, caller.user, RunCommand::Cancel)
        .await?;
    Ok(ok(StopRequested {
        requested: RunStatus::Cancelled,
        run_id: body.task_id,
        status,
    }))
}

/// Pause a run at its next step boundary.
#[utoipa::path(
    tag = "runs",
    request_body = PauseRunBody,
    responses((status = 200, description = "The run's status now, and what was asked", body = Envelope<StopRequested>)),
)]
#[post("/task/pause")]
pub async fn pause_run(
    caller: Require<WritePrivate>,
    state: web::Data<AppState>,
    body: web::Json<PauseRunBody>,
) -> Result<HttpResponse, ApiError> {
    let status = state
        .runs
        .runs
        .stop(body.run_id.0, caller.user, RunCommand::Pause)
        .await?;
    Ok(ok(StopRequested {
        requested: RunStatus::Paused,
        run_id: body.run_id,
        status,
    }))
}

/// The statuses of some runs.
///
/// Runs the caller may not act on, or that do not exist, are left out.
#[utoipa::path(
    tag = "runs",
    params(StatusQuery),
    responses((status = 200, description = "The known runs' statuses, in id order", body = Envelope<RunStatuses>)),
)]
#[get("/task/checkStatuses")]
pub async fn run_statuses(
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
    let rows: Vec<(i64, String)> = state.runs.runs.statuses(&ids, caller.user).await?;
    let statuses = rows
        .into_iter()
        .map(|(id, status)| TaskStatus {
            id: RunId(id),
            status,
        })
        .collect();
    Ok(ok(RunStatuses { statuses }))
}

const STATUSES: [&str; 6] = [
    "Scheduled",
    "InProgress",
    "Paused",
    "Completed",
    "Failed",
    "Cancelled",
];

/// The caller's runs (and its teams'), newest first.
#[utoipa::path(
    tag = "runs",
    params(ListQuery),
    responses((status = 200, description = "A page of runs, cursors being run ids", body = Envelope<Relay<RunSummary>>)),
)]
#[get("/runs")]
pub async fn list_runs(
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
        .runs
        .list(caller.user, query.status.as_deref(), take, after)
        .await?;
    Ok(ok(super::paging::relay(rows, take, |r| r.id.to_string())))
}

/// Rename a run or change its privacy.
#[utoipa::path(
    tag = "runs",
    params(("id" = RunId, Path, description = "The run's id")),
    request_body = UpdateRunBody,
    responses((status = 200, description = "The run with its steps", body = Envelope<Run>)),
)]
// Digits only: `/run/io` is another route, so `PUT /run/io` is a 405, not a bad run id.
#[put("/run/{id:\\d+}")]
pub async fn update_run(
    caller: Require<WritePrivate>,
    state: web::Data<AppState>,
    Id(run): Id<RunId>,
    body: web::Json<UpdateRunBody>,
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
        .runs
        .update(run.0, caller.user, body.name.as_deref(), body.is_private)
        .await?;
    Ok(ok(typed_run(run)?))
}

/// One run with its steps: the caller's or its team's, or a public one (others are 404).
#[utoipa::path(
    tag = "runs",
    params(("id" = RunId, Path, description = "The run's id")),
    responses(
        (status = 200, description = "The run with its steps", body = Envelope<Run>),
        (status = 404, description = "No such run, or not one the caller may see (`RunNotFound`)", body = ErrorEnvelope),
    ),
    security((), ("cookie" = []), ("bearer" = []), ("apiKey" = [])),
)]
#[get("/run/{id:\\d+}")]
pub async fn get_run(
    reader: TeamReader,
    state: web::Data<AppState>,
    Id(run): Id<RunId>,
) -> Result<HttpResponse, ApiError> {
    if reader.team.is_some() {
        reader.within(state.runs.runs.team_of(run.0).await?)?;
    }
    Ok(ok(typed_run(
        state.runs.runs.get(run.0, reader.user).await?,
    )?))
}

/// The run as `RunService::get` builds it (JSON from PostgreSQL, which the MCP tools read too),
/// read into its documented shape: the same JSON, key for key.
fn typed_run(run: Value) -> Result<Run, ApiError> {
    serde_json::from_value(run).map_err(ApiError::internal)
}

/// A run's timeline.
///
/// Read from PostgreSQL, for a client that was away longer than the run room's history.
#[utoipa::path(
    tag = "runs",
    params(("id" = RunId, Path, description = "The run's id"), EventsQuery),
    responses((status = 200, description = "Events in `seq` order", body = Envelope<RunEvents>)),
    security((), ("cookie" = []), ("bearer" = []), ("apiKey" = [])),
)]
#[get("/run/{id}/events")]
pub async fn run_events(
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
        .runs
        .events(run.0, reader.0, query.after.unwrap_or(0), take)
        .await?;
    Ok(ok(RunEvents { events }))
}

/// Each step's inputs and outputs.
#[utoipa::path(
    tag = "runs",
    params(IoQuery),
    responses((status = 200, description = "The steps' inputs and outputs, in the order they started", body = Envelope<RunIo>)),
    security((), ("cookie" = []), ("bearer" = []), ("apiKey" = [])),
)]
#[get("/run/io")]
pub async fn run_io(
    reader: Reader,
    state: web::Data<AppState>,
    query: web::Query<IoQuery>,
) -> Result<HttpResponse, ApiError> {
    Ok(ok(RunIo {
        io: state.runs.runs.io(query.run_id.0, reader.0).await?,
    }))
}

/// Answer a run's `input`, `approval` or manual decision.
///
/// Kept when it comes before the run reaches the wait; a run waiting for it is woken. The key
/// is an `approval` or `input` node's id (after `<step>/` for each `subroutine` step it is
/// inside); `GET /run/{id}` shows the keys a waiting run asks for in `waitingKeys`.
#[utoipa::path(
    tag = "runs",
    params(("id" = RunId, Path, description = "The run's id")),
    request_body = DecisionBody,
    responses(
        (status = 200, description = "Whether the answer was stored (false: answered before)", body = Envelope<DecisionStored>),
        (status = 422, description = "No approval or input of the run has this key (`UnknownDecisionKey`, naming the keys it takes)", body = ErrorEnvelope),
    ),
)]
#[post("/run/{id}/decision")]
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
        .runs
        .decide(run.0, caller.user, &body.key, body.value)
        .await?;
    Ok(ok(DecisionStored { stored }))
}
