//! What the run routes read and answer: request bodies, query strings and the small answers
//! that replaced `json!` maps; each is the type the handler (de)serialises, so the OpenAPI
//! document describes exactly what travels.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::ids::{ResourceVersionId, RunId};
use crate::runs::RunSource;
use crate::runs::read::{RunEvent, RunStatus, StepIo};

fn yes() -> bool {
    true
}

/// `POST /task/start/run`: a new run, or (`isNewRun: false`) the resumption of one.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StartRunBody {
    /// The routine version to run (a new run needs it).
    pub(super) resource_version_id: Option<ResourceVersionId>,
    /// False to resume the Paused or Failed run `runId`. Default true.
    #[serde(default = "yes")]
    #[schema(default = true)]
    pub(super) is_new_run: bool,
    /// The run to resume (with `isNewRun: false`).
    pub(super) run_id: Option<RunId>,
    /// Start it as this team: the caller needs `StartRuns` there (or to be an admin); the
    /// team's members see it, and its credits pay for its steps.
    pub(super) team_id: Option<crate::ids::TeamId>,
    /// The routine's inputs: an object (422 `InvalidBody` otherwise), read by the graph's
    /// templates and nodes. Default `{}`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub(super) form_values: Option<Value>,
    #[serde(default)]
    pub(super) config: Option<StartRunConfig>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StartRunConfig {
    /// Who starts it, which orders the queue. Default `Api` for an API key, else `RunView`.
    pub(super) source: Option<RunSource>,
    /// Lower limits for this run (`maxCredits`, `maxSteps`, `maxTimeMs`).
    #[serde(default)]
    pub(super) limits: crate::runs::LimitOverrides,
}

/// `POST /task/cancel`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CancelRunBody {
    pub(super) task_id: RunId,
    /// Always `"Run"` (400 `InvalidTaskType` otherwise).
    #[schema(example = "Run")]
    pub(super) task_type: String,
}

/// `POST /task/pause`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PauseRunBody {
    pub(super) run_id: RunId,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct StatusQuery {
    /// Always `Run` (400 `InvalidTaskType` otherwise).
    pub(super) task_type: String,
    /// Run ids (the `runId`s that `POST /task/start/run` answered), comma-separated; the first
    /// 100 are read.
    pub(super) task_ids: String,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only runs with this status.
    #[param(value_type = Option<RunStatus>)]
    pub(super) status: Option<String>,
    /// Page size, 1–100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub(super) take: Option<i64>,
    /// The `endCursor` of the previous page.
    pub(super) after: Option<String>,
}

/// `PUT /run/{id}`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpdateRunBody {
    /// At most 128 characters, no control characters.
    pub(super) name: Option<String>,
    pub(super) is_private: Option<bool>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Only events after this `seq` (default 0: from the start).
    pub(super) after: Option<i64>,
    /// At most this many, 1–1000 (default 500).
    #[param(minimum = 1, maximum = 1000)]
    pub(super) take: Option<i64>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct IoQuery {
    /// The run.
    pub(super) run_id: RunId,
}

/// `POST /run/{id}/decision`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionBody {
    /// The wait's key, 1–255 characters.
    pub(super) key: String,
    /// The answer: any JSON, read by the node that waits for it.
    pub(super) value: Value,
}

// Bodies. Fields are in alphabetical order, as the `serde_json::json!` maps they replace wrote
// them.

/// `POST /task/start/run`: `{runId, status}`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunStarted {
    pub(super) run_id: RunId,
    /// `Scheduled` for a new run; an idempotent retry answers the run's status now; a resumed
    /// run is `Scheduled`, or `Waiting` when it went back to the wait it was paused in.
    #[schema(value_type = RunStatus)]
    pub(super) status: String,
}

/// `POST /task/cancel`, `POST /task/pause`: `{requested, runId, status}`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StopRequested {
    /// `Cancelled` or `Paused`.
    pub(super) requested: RunStatus,
    pub(super) run_id: RunId,
    /// The status now: the run may reach `requested` a moment later (at its step boundary).
    #[schema(value_type = RunStatus)]
    pub(super) status: String,
}

/// `GET /task/checkStatuses`: `{statuses: [{id, status}]}`.
#[derive(Serialize, ToSchema)]
pub struct RunStatuses {
    pub(super) statuses: Vec<TaskStatus>,
}

#[derive(Serialize, ToSchema)]
pub struct TaskStatus {
    pub(super) id: RunId,
    #[schema(value_type = RunStatus)]
    pub(super) status: String,
}

/// `GET /run/{id}/events`: `{events}`.
#[derive(Serialize, ToSchema)]
pub struct RunEvents {
    pub(super) events: Vec<RunEvent>,
}

/// `GET /run/io`: `{io}`.
#[derive(Serialize, ToSchema)]
pub struct RunIo {
    pub(super) io: Vec<StepIo>,
}

/// `POST /run/{id}/decision`: `{stored}`.
#[derive(Serialize, ToSchema)]
pub struct DecisionStored {
    pub(super) stored: bool,
}
