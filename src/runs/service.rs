//! `RunService`: what the run endpoints call — start (snapshot + job in one transaction),
//! read, stop (cancel, pause), resume. The row is always written first; a live owner is then
//! told through its actor. Answers (`decide`) are `answers.rs`.
//! Reading runs (one, a list, a timeline, steps' io, statuses) and editing one are `read.rs`;
//! what a run started by a step inherits, and stops and resumes reaching such runs, `lineage.rs`.

use std::collections::HashMap;

use serde_json::json;
use vrooli_actors::{RunCommand, RunId as ActorRunId};

use super::start::start_job;
use super::*;
use crate::ids::{PublicId, ResourceVersionId, UserId};
use crate::routines::graph::Graph;
use crate::routines::{GraphLimits, RoutineError, load_graph};

impl RunService {
    /// Snapshots every routine version `graph` calls, to `max_depth` levels.
    async fn snapshot_calls(
        &self,
        user: UserId,
        graph: &Graph,
        limits: GraphLimits,
    ) -> Result<HashMap<String, Graph>, RunError> {
        let mut found = HashMap::new();
        let mut frontier: Vec<(String, usize)> = graph
            .subroutines()
            .into_iter()
            .map(|v| (v.to_owned(), 1))
            .collect();
        while let Some((version, depth)) = frontier.pop() {
            if found.contains_key(&version) {
                continue;
            }
            if depth > self.max_depth {
                return Err(RunError::TooDeep(self.max_depth));
            }
            let id: i64 = version
                .parse()
                .map_err(|_| RunError::Invalid(format!("bad routine version id {version:?}")))?;
            let row = self
                .routines
                .version(ResourceVersionId(id), Some(user))
                .await?;
            let child = load_graph(&row.resource_sub_type, &row.config, limits)
                .map_err(RoutineError::from)?;
            runnable(&child)?;
            frontier.extend(
                child
                    .subroutines()
                    .into_iter()
                    .map(|v| (v.to_owned(), depth + 1)),
            );
            found.insert(version, child);
        }
        Ok(found)
    }

    /// Writes the run (Scheduled, with its snapshot) and its `run-start` job in one
    /// transaction. The same Idempotency-Key and body answer the same run.
    pub async fn start(
        &self,
        user: UserId,
        request: StartRequest,
    ) -> Result<(i64, String), RunError> {
        if let Some(key) = &request.idempotency_key
            && let Some(found) = self.by_key(user, key, &request.request_hash).await?
        {
            return Ok(found);
        }
        if let Some(team) = request.team {
            let mut conn = self.pool.acquire().await?;
            crate::teams::require_in(
                &mut conn,
                team,
                Some(user),
                Some(crate::teams::TeamPermission::StartRuns),
            )
            .await
            .map_err(RoutineError::from)?;
        }
        let version = self.routines.version(request.version, Some(user)).await?;
        let limits = self.routines.limits();
        let graph = load_graph(&version.resource_sub_type, &version.config, limits)
            .map_err(RoutineError::from)?;
        runnable(&graph)?;
        let subroutines = self.snapshot_calls(user, &graph, limits).await?;
        let snapshot = json!({"graph": graph, "subroutines": subroutines});
        if !request.inputs.is_object() {
            return Err(RunError::Invalid("formValues is an object".into()));
        }
        let mut limits = self.limits.with(request.limits).map_err(RunError::Limits)?;
        let id = self.ids.next_id();
        let mut tx = self.pool.begin().await?;
        // A step's run is its parent's child: the parent's scope and tree (`lineage_in`);
        // any other run carries the key that asks, and what that key may do now.
        let (api_key, permissions, lineage) = match request.parent {
            Some(parent) => {
                let found = self.lineage_in(&mut tx, parent, user, request.team).await?;
                limits = found.limits;
                (found.api_key, found.permissions.clone(), Some(found))
            }
            None => {
                let permissions = match request.api_key {
                    Some(key) => Some(
                        super::scope::key_permissions(&mut tx, key)
                            .await?
                            .unwrap_or_default(),
                    ),
                    None => None,
                };
                (request.api_key, permissions, None)
            }
        };
        let inserted: Option<i64> = sqlx::query_scalar(
            "INSERT INTO runs (id, public_id, user_id, name, resource_version_id, snapshot, inputs,
                               idempotency_key, request_hash, limits, team_id, parent_run_id,
                               root_run_id, depth, api_key_id, permissions)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
             ON CONFLICT (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
             RETURNING id",
        )
        .bind(id)
        .bind(PublicId::generate().as_str())
        .bind(user)
        .bind(version.name.chars().take(128).collect::<String>())
        .bind(version.id)
        .bind(&snapshot)
        .bind(&request.inputs)
        .bind(&request.idempotency_key)
        .bind(&request.request_hash)
        .bind(sqlx::types::Json(limits))
        .bind(request.team)
        .bind(request.parent)
        .bind(lineage.as_ref().map(|l| l.root))
        .bind(lineage.as_ref().map_or(0, |l| l.depth))
        .bind(api_key)
        .bind(permissions)
        .fetch_optional(&mut *tx)
        .await?;
        if inserted.is_none() {
            // The same key at the same instant: the other request wrote it.
            drop(tx);
            let key = request.idempotency_key.as_deref().unwrap_or_default();
            return self
                .by_key(user, key, &request.request_hash)
                .await?
                .ok_or(RunError::KeyReused);
        }
        self.jobs
            .enqueue_in(&mut tx, start_job(id, request.source))
            .await?;
        tx.commit().await?;
        Ok((id, "Scheduled".into()))
    }

    async fn by_key(
        &self,
        user: UserId,
        key: &str,
        hash: &str,
    ) -> Result<Option<(i64, String)>, RunError> {
        let found: Option<(i64, String, Option<String>)> = sqlx::query_as(
            "SELECT id, status, request_hash FROM runs WHERE user_id = $1 AND idempotency_key = $2",
        )
        .bind(user)
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        match found {
            None => Ok(None),
            Some((id, status, Some(stored))) if stored == hash => Ok(Some((id, status))),
            Some(_) => Err(RunError::KeyReused),
        }
    }

    /// The run if `user` may see it: the owner, a member of its team, or anyone when public.
    pub async fn readable(&self, run: i64, user: Option<UserId>) -> Result<(), RunError> {
        match super::read::visibility(&self.pool, run, user).await? {
            Some(true) => Ok(()),
            _ => Err(RunError::NotFound),
        }
    }

    /// Whether `user` may act on a run (`access::CAN_ACT`): those who may only read it get
    /// NotAllowed, others NotFound.
    pub(super) async fn owned(&self, run: i64, user: UserId) -> Result<(), RunError> {
        let found: Option<(bool, bool)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {}, {} FROM runs r WHERE r.id = $1",
            super::access::CAN_ACT,
            super::access::CAN_READ
        )))
        .bind(run)
        .bind(user)
        .fetch_optional(&self.pool)
        .await?;
        match found {
            Some((true, _)) => Ok(()),
            Some((false, true)) => Err(RunError::NotAllowed),
            _ => Err(RunError::NotFound),
        }
    }

    /// Cancel or pause: the run, then every run its steps started (`descendants`).
    pub async fn stop(
        &self,
        run: i64,
        user: UserId,
        command: RunCommand,
    ) -> Result<String, RunError> {
        self.owned(run, user).await?;
        let status = self.stop_one(run, command).await?;
        self.stop_descendants(run, command).await?;
        Ok(status)
    }

    /// Cancel or pause one run: the row first; then the owner's actor (if a live one holds
    /// it), or done here when nobody runs it (scheduled, waiting).
    pub(super) async fn stop_one(&self, run: i64, command: RunCommand) -> Result<String, RunError> {
        let (desired, verb) = match command {
            RunCommand::Cancel => ("Cancelled", "cancelled"),
            _ => ("Paused", "paused"),
        };
        let mut tx = self.pool.begin().await?;
        let row: (String, Option<i32>, bool, Option<String>) = sqlx::query_as(
            "SELECT status, lease_owner, COALESCE(lease_expires_at > now(), false), waiting_for
               FROM runs WHERE id = $1 FOR UPDATE",
        )
        .bind(run)
        .fetch_one(&mut *tx)
        .await?;
        let (status, owner, live, _waiting) = row;
        match (status.as_str(), command) {
            ("Completed" | "Failed" | "Cancelled", _) => {
                return Err(RunError::Transition(status, verb));
            }
            ("Paused", RunCommand::Pause) => return Ok(status),
            _ => {}
        }
        if status == "InProgress"
            && live
            && let Some(owner) = owner
        {
            sqlx::query("UPDATE runs SET desired_status = $2 WHERE id = $1")
                .bind(run)
                .bind(desired)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            let owner = u16::try_from(owner).unwrap_or_default();
            if let Err(error) = self
                .deps
                .hub
                .command_run(owner, ActorRunId(run), command)
                .await
            {
                // The row says so: the owner stops at its next step boundary regardless.
                tracing::warn!(run, %error, "run command not delivered; the owner reads the row");
            }
            return Ok(status);
        }
        // Nobody runs it: scheduled, waiting, paused (cancel), or its owner's lease ran out.
        match command {
            RunCommand::Cancel => {
                store::end_in(&mut tx, run, "Cancelled", Some("Cancelled"), None).await?;
                store::event_in(&mut tx, run, "run/cancelled", json!({})).await?;
            }
            _ => {
                store::pause_in(&mut tx, run, "Requested").await?;
                store::event_in(&mut tx, run, "run/paused", json!({"reason": "Requested"})).await?;
            }
        }
        tx.commit().await?;
        self.kick(run);
        Ok(desired.to_owned())
    }

    /// Resumes a Paused or Failed run: Scheduled again, with a fresh `run-start` job. A step
    /// left in progress (an `UncertainStep`) is run again: a person said so. A run paused
    /// while it waited goes back to its wait instead, holding nothing (`Waiting`): a timer not
    /// due yet (the sweeper wakes it at its time), an approval or input not answered yet (the
    /// answer wakes it).
    pub async fn resume(
        &self,
        run: i64,
        user: UserId,
        limits: LimitOverrides,
    ) -> Result<(i64, String), RunError> {
        self.owned(run, user).await?;
        let limits = self.limits.with(limits).map_err(RunError::Limits)?;
        let mut tx = self.pool.begin().await?;
        let status: String = sqlx::query_scalar("SELECT status FROM runs WHERE id = $1 FOR UPDATE")
            .bind(run)
            .fetch_one(&mut *tx)
            .await?;
        if status != "Paused" && status != "Failed" {
            return Err(RunError::Transition(status, "resumed"));
        }
        // The wait it was paused in, if it is still to be waited for: a wait's step stores its
        // due time (`until`), an approval's or input's the key of its answer (`waits.rs`).
        let wait: Option<(String, Option<chrono::DateTime<chrono::Utc>>)> = if status != "Paused" {
            None
        } else {
            sqlx::query_as(
                "WITH waits AS (
               SELECT s.step_key, s.inputs,
                      CASE WHEN s.inputs = jsonb_build_object('until', s.inputs->'until')
                           THEN (s.inputs->>'until')::timestamptz END AS until
                 FROM run_steps s WHERE s.run_id = $1 AND s.status = 'InProgress')
             SELECT s.step_key, s.until FROM waits s
              WHERE s.until > now()
                 OR (s.inputs->>'kind' IN ('approval', 'input')
                      AND NOT EXISTS (SELECT 1 FROM run_decisions d
                                       WHERE d.run_id = $1 AND d.key = s.inputs->>'key'))
              LIMIT 1",
            )
            .bind(run)
            .fetch_optional(&mut *tx)
            .await?
        };
        if let Some((step, until)) = wait {
            let waiting_for = if until.is_some() { "Timer" } else { "Decision" };
            sqlx::query(
                "UPDATE runs SET status = 'InProgress', status_reason = NULL,
                        desired_status = NULL, completed_at = NULL, limits = $2,
                        waiting_for = $3, wake_at = $4
                  WHERE id = $1",
            )
            .bind(run)
            .bind(sqlx::types::Json(limits))
            .bind(waiting_for)
            .bind(until)
            .execute(&mut *tx)
            .await?;
            let until = until.map(|u| u.to_rfc3339());
            let data = json!({"stepKey": step, "until": until});
            store::event_in(&mut tx, run, "run/waiting", data).await?;
            // The runs its pause paused go on too, whether or not it was waiting.
            self.resume_descendants_in(&mut tx, run).await?;
            tx.commit().await?;
            self.kick(run);
            return Ok((run, "Waiting".into()));
        }
        sqlx::query(
            "UPDATE runs SET status = 'Scheduled', status_reason = NULL, desired_status = NULL,
                    completed_at = NULL, limits = $2
              WHERE id = $1",
        )
        .bind(run)
        .bind(sqlx::types::Json(limits))
        .execute(&mut *tx)
        .await?;
        // The step that failed, or the call whose outcome was uncertain (a non-idempotent http
        // call, an action: a tool that writes pauses so), runs again: a person said so. A wait
        // in progress keeps its time.
        sqlx::query(
            "UPDATE run_steps SET status = 'Failed', error = 'run again by a person'
              WHERE run_id = $1
                AND (status = 'Failed'
                     OR (status = 'InProgress'
                         AND (inputs->>'effect' = 'non-idempotent' OR inputs->>'kind' = 'action')))",
        )
        .bind(run)
        .execute(&mut *tx)
        .await?;
        self.jobs
            .enqueue_in(&mut tx, start_job(run, RunSource::RunView))
            .await?;
        self.resume_descendants_in(&mut tx, run).await?;
        tx.commit().await?;
        Ok((run, "Scheduled".into()))
    }

    fn kick(&self, run: i64) {
        if let Some(room) = vrooli_actors::RoomKey::run(&run.to_string()) {
            self.deps.outbox.kick(&room);
        }
    }
}
