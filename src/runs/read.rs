//! Reading runs as the API shows them — one with its steps, the user's list, the timeline,
//! the steps' inputs and outputs, statuses — and editing one's name and privacy. Who may: the
//! owner and its team's members; others too when the run is public (reads only).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::PgPool;
use utoipa::ToSchema;

use super::{RunError, RunService};
use crate::ids::{ResourceVersionId, RunId, UserId};

/// A run's status (the `runs.status` check constraint).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum RunStatus {
    Scheduled,
    InProgress,
    Paused,
    Completed,
    Failed,
    Cancelled,
    /// Only in a resume's answer: the run went back to the wait it was paused in, holding
    /// nothing (`GET /run/{id}` shows it InProgress with its `waitingFor`).
    Waiting,
}

/// A step's status (the `run_steps.status` check constraint).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum StepStatus {
    InProgress,
    Completed,
    Failed,
    Skipped,
}

// The shapes below are what the SQL's `json_build_object` writes, read back through serde
// (timestamps stay PostgreSQL's text, e.g. `2026-12-01T10:00:00.123456+00:00`). Their fields
// are in alphabetical order, as the `serde_json::Value` they replace wrote them; an unknown key
// is refused so the SQL and these cannot drift apart unseen.

/// `GET /run/{id}`: a run with its steps.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Run {
    #[schema(format = DateTime)]
    pub completed_at: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    pub credits_used: i64,
    pub id: RunId,
    /// The `formValues` it started with: an object (start refuses anything else).
    #[schema(value_type = Object)]
    pub inputs: Value,
    pub is_private: bool,
    pub name: String,
    /// What the run produced once Completed: free-form JSON, as its last steps wrote it.
    #[schema(value_type = Option<Object>)]
    pub outputs: Option<Value>,
    /// Null once the routine version is deleted.
    pub resource_version_id: Option<ResourceVersionId>,
    #[schema(format = DateTime)]
    pub started_at: Option<String>,
    pub status: RunStatus,
    /// What went wrong, in words, while Failed (its `run/failed` event's message, e.g. which
    /// input was missing); else null.
    pub status_message: Option<String>,
    /// Why it ended or paused (e.g. `MaxSteps`, `MaxCredits`, an error).
    pub status_reason: Option<String>,
    /// In the order they started.
    pub steps: Vec<RunStep>,
    /// What a waiting run waits for (a timer, `Decision`, …).
    pub waiting_for: Option<String>,
    /// While it waits for a `Decision`: the keys of the approvals or inputs asked for and not
    /// answered yet (answer them with `POST /run/{id}/decision`); else null.
    pub waiting_keys: Option<Vec<String>>,
}

/// One step of a run.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RunStep {
    pub attempts: i64,
    #[schema(format = DateTime)]
    pub completed_at: Option<String>,
    pub credits: i64,
    pub error: Option<String>,
    /// The graph node it ran.
    pub node_id: String,
    /// What the step produced: free-form JSON, as its node kind writes it.
    #[schema(value_type = Option<Object>)]
    pub outputs: Option<Value>,
    #[schema(format = DateTime)]
    pub started_at: String,
    pub status: StepStatus,
    /// `<run>:<node>`; `<run>:<map>[<index>]` for a map's item, `<run>:<node>/<child node>`
    /// inside a subroutine.
    pub step_key: String,
}

/// `GET /runs`: a run without its steps, inputs and outputs.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RunSummary {
    #[schema(format = DateTime)]
    pub completed_at: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    pub credits_used: i64,
    pub id: RunId,
    pub is_private: bool,
    pub name: String,
    pub resource_version_id: Option<ResourceVersionId>,
    #[schema(format = DateTime)]
    pub started_at: Option<String>,
    pub status: RunStatus,
    pub status_reason: Option<String>,
}

/// One event of a run's timeline, as the run room sent it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RunEvent {
    /// The event as sent (with `runId` and `seq`); its fields depend on `type`
    /// (docs/PROTOCOL.md).
    #[schema(value_type = Object)]
    pub data: Value,
    /// Its place in the run's timeline (gapless from 1); pass as `after` to read on.
    #[schema(value_type = i64)]
    pub seq: Value,
    #[serde(rename = "type")]
    pub event_type: String,
}

/// One step's inputs and outputs.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StepIo {
    /// What the step was given: free-form JSON, as its node kind reads it.
    #[schema(value_type = Option<Object>)]
    pub inputs: Option<Value>,
    pub node_id: String,
    /// What the step produced: free-form JSON, as its node kind writes it.
    #[schema(value_type = Option<Object>)]
    pub outputs: Option<Value>,
    pub step_key: String,
}

/// Whether `user` (or nobody) may read `run`: its owner, a member of its team, or anyone when it
/// is public. `None` when there is no such run. The REST reads and the run room's join both ask
/// this.
pub async fn visibility(
    pool: &PgPool,
    run: i64,
    user: Option<UserId>,
) -> Result<Option<bool>, sqlx::Error> {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT {} FROM runs r WHERE r.id = $1",
        super::access::CAN_READ
    )))
    .bind(run)
    .bind(user)
    .fetch_optional(pool)
    .await
}

impl RunService {
    /// The team a run belongs to (`None`: no team, or no such run).
    pub async fn team_of(&self, run: i64) -> Result<Option<crate::ids::TeamId>, RunError> {
        Ok(sqlx::query_scalar::<_, Option<crate::ids::TeamId>>(
            "SELECT team_id FROM runs WHERE id = $1",
        )
        .bind(run)
        .fetch_optional(&self.pool)
        .await?
        .flatten())
    }

    /// `GET /run/{id}`: the run and its steps.
    pub async fn get(&self, run: i64, user: Option<UserId>) -> Result<Value, RunError> {
        self.readable(run, user).await?;
        let row: Value = sqlx::query_scalar(
            "SELECT json_build_object(
                'id', r.id::text, 'name', r.name, 'status', r.status,
                'statusReason', r.status_reason, 'isPrivate', r.is_private,
                'resourceVersionId', r.resource_version_id::text, 'inputs', r.inputs,
                'outputs', r.outputs, 'creditsUsed', r.credits_used,
                'waitingFor', r.waiting_for, 'startedAt', r.started_at,
                'statusMessage', CASE WHEN r.status = 'Failed' THEN
                    (SELECT e.data->>'message' FROM run_events e
                      WHERE e.run_id = r.id AND e.event_type = 'run/failed'
                      ORDER BY e.seq DESC LIMIT 1) END,
                'waitingKeys', CASE WHEN r.waiting_for = 'Decision' THEN
                    COALESCE((SELECT json_agg(DISTINCT e.data->>'key') FROM run_events e
                      WHERE e.run_id = r.id AND e.event_type = 'run/decision/requested'
                        AND NOT EXISTS (SELECT 1 FROM run_decisions d
                                         WHERE d.run_id = r.id AND d.key = e.data->>'key')),
                      '[]'::json) END,
                'completedAt', r.completed_at, 'createdAt', r.created_at,
                'steps', COALESCE((SELECT json_agg(json_build_object(
                    'nodeId', s.node_id, 'stepKey', s.step_key, 'status', s.status,
                    'attempts', s.attempt, 'outputs', s.outputs, 'error', s.error,
                    'credits', s.credits, 'startedAt', s.started_at,
                    'completedAt', s.completed_at) ORDER BY s.started_at, s.id)
                  FROM run_steps s WHERE s.run_id = r.id), '[]'::json))
               FROM runs r WHERE r.id = $1",
        )
        .bind(run)
        .fetch_one(&self.pool)
        .await?;
        Ok(row)
    }

    /// `GET /runs`: the user's runs (and their teams'), newest first; `take + 1` rows.
    pub async fn list(
        &self,
        user: UserId,
        status: Option<&str>,
        take: i64,
        before: Option<i64>,
    ) -> Result<Vec<RunSummary>, RunError> {
        let rows: Vec<sqlx::types::Json<RunSummary>> = sqlx::query_scalar(
            "SELECT json_build_object(
                'id', r.id::text, 'name', r.name, 'status', r.status,
                'statusReason', r.status_reason, 'isPrivate', r.is_private,
                'resourceVersionId', r.resource_version_id::text, 'creditsUsed', r.credits_used,
                'startedAt', r.started_at, 'completedAt', r.completed_at,
                'createdAt', r.created_at)
               FROM runs r
              WHERE (r.user_id = $1
                     OR EXISTS (SELECT 1 FROM members m WHERE m.team_id = r.team_id AND m.user_id = $1))
                AND ($2::TEXT IS NULL OR r.status = $2)
                AND ($3::BIGINT IS NULL OR r.id < $3)
              ORDER BY r.id DESC LIMIT $4",
        )
        .bind(user)
        .bind(status)
        .bind(before)
        .bind(take + 1)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|row| row.0).collect())
    }

    /// `PUT /run/{id} {name?, isPrivate?}`.
    pub async fn update(
        &self,
        run: i64,
        user: UserId,
        name: Option<&str>,
        is_private: Option<bool>,
    ) -> Result<Value, RunError> {
        self.owned(run, user).await?;
        sqlx::query(
            "UPDATE runs SET name = COALESCE($2, name), is_private = COALESCE($3, is_private)
              WHERE id = $1",
        )
        .bind(run)
        .bind(name)
        .bind(is_private)
        .execute(&self.pool)
        .await?;
        self.get(run, Some(user)).await
    }

    /// `GET /run/{id}/events?after=`: the timeline, in `seq` order.
    pub async fn events(
        &self,
        run: i64,
        user: Option<UserId>,
        after: i64,
        take: i64,
    ) -> Result<Vec<RunEvent>, RunError> {
        self.readable(run, user).await?;
        let rows: Vec<(String, Value)> = sqlx::query_as(
            "SELECT event_type, data FROM run_events WHERE run_id = $1 AND seq > $2
              ORDER BY seq LIMIT $3",
        )
        .bind(run)
        .bind(after)
        .bind(take)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(event_type, data)| RunEvent {
                seq: data["seq"].clone(),
                data,
                event_type,
            })
            .collect())
    }

    /// `GET /run/io?runId=`: each step's inputs and outputs.
    pub async fn io(&self, run: i64, user: Option<UserId>) -> Result<Vec<StepIo>, RunError> {
        self.readable(run, user).await?;
        let rows: Vec<(String, String, Option<Value>, Option<Value>)> = sqlx::query_as(
            "SELECT node_id, step_key, inputs, outputs FROM run_steps WHERE run_id = $1
              ORDER BY started_at, id",
        )
        .bind(run)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(node_id, step_key, inputs, outputs)| StepIo {
                inputs,
                node_id,
                outputs,
                step_key,
            })
            .collect())
    }

    /// Statuses of the runs among `ids` that `user` may act on.
    pub async fn statuses(
        &self,
        ids: &[i64],
        user: UserId,
    ) -> Result<Vec<(i64, String)>, RunError> {
        Ok(sqlx::query_as(
            "SELECT r.id, r.status FROM runs r
              WHERE r.id = ANY($1) AND (r.user_id = $2
                 OR EXISTS (SELECT 1 FROM members m WHERE m.team_id = r.team_id AND m.user_id = $2))
              ORDER BY r.id",
        )
        .bind(ids)
        .bind(user)
        .fetch_all(&self.pool)
        .await?)
    }
}
