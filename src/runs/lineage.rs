//! Runs started by runs' steps (issue 34): a step's `run_routine start` makes a child of the
//! run, in its scope and its tree.
//!
//! ```text
//! RunService::start(parent) ─▶ lineage_in: the parent's row locked; going? depth + 1 ≤ max?
//!     ─▶ the child: parent_run_id, root_run_id, depth, the parent's key, permissions and team,
//!        the root's limits (`store::usage` sums steps, time and credits over the tree)
//! stop(run) ─▶ stop_descendants: every round stops the children still going, until none
//! resume(run) ─▶ resume_descendants_in: the children its pause paused go on with it
//! ```

use serde_json::Value;
use vrooli_actors::RunCommand;

use super::start::start_job;
use super::*;
use crate::ids::UserId;

/// What a child run inherits from its parent (`RunService::lineage_in`).
pub(super) struct Lineage {
    pub(super) root: i64,
    pub(super) depth: i32,
    pub(super) api_key: Option<crate::ids::ApiKeyId>,
    pub(super) permissions: Option<Vec<String>>,
    /// The root's: a child spends from its tree's budget (`store::usage` sums the tree).
    pub(super) limits: super::RunLimits,
}

impl RunService {
    /// What a run started by run `parent`'s step inherits: its user, team, key and permissions,
    /// its root and the root's limits, one level deeper. The parent's row is locked: a stop of
    /// the parent (which marks it first) and this start take turns, so a parent that is
    /// stopping starts nothing and a cascading stop finds every child.
    pub(super) async fn lineage_in(
        &self,
        tx: &mut sqlx::PgConnection,
        parent: i64,
        user: UserId,
        team: Option<crate::ids::TeamId>,
    ) -> Result<Lineage, RunError> {
        type Row = (
            Option<UserId>,
            Option<crate::ids::TeamId>,
            Option<crate::ids::ApiKeyId>,
            Option<Vec<String>>,
            i32,
            i64,
            String,
            Option<String>,
            Value,
        );
        let row: Option<Row> = sqlx::query_as(
            "SELECT p.user_id, p.team_id, p.api_key_id, p.permissions, p.depth,
                    COALESCE(p.root_run_id, p.id), p.status, p.desired_status,
                    COALESCE(root.limits, p.limits)
               FROM runs p LEFT JOIN runs root ON root.id = p.root_run_id
              WHERE p.id = $1 FOR UPDATE OF p",
        )
        .bind(parent)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((owner, parent_team, api_key, permissions, depth, root, status, desired, limits)) =
            row
        else {
            return Err(RunError::NotFound);
        };
        // The tools' caller is the run's own scope; anything else is not this run's step.
        if owner != Some(user) || parent_team != team {
            return Err(RunError::NotFound);
        }
        if status != "InProgress" || desired.is_some() {
            return Err(RunError::ParentStopped(desired.unwrap_or(status)));
        }
        let depth = depth + 1;
        if usize::try_from(depth).unwrap_or(usize::MAX) > self.max_depth {
            return Err(RunError::RunTooDeep(self.max_depth));
        }
        Ok(Lineage {
            root,
            depth,
            api_key,
            permissions,
            // Runs written before limits existed have none: the configured ones.
            limits: serde_json::from_value(limits).unwrap_or(self.limits),
        })
    }

    /// Stops the runs `run`'s steps started, and theirs, until none is left going. A child
    /// starts only while its parent is going (`lineage_in`, under the parent's row lock), so
    /// a child made while a round ran is found by the next, and rounds end.
    pub(super) async fn stop_descendants(
        &self,
        run: i64,
        command: RunCommand,
    ) -> Result<(), RunError> {
        let cancel = matches!(command, RunCommand::Cancel);
        loop {
            let going: Vec<i64> = sqlx::query_scalar(
                "WITH RECURSIVE d AS (
                     SELECT id FROM runs WHERE parent_run_id = $1
                     UNION SELECT r.id FROM runs r JOIN d ON r.parent_run_id = d.id)
                 SELECT r.id FROM runs r JOIN d ON d.id = r.id
                  WHERE r.status NOT IN ('Completed', 'Failed', 'Cancelled')
                    AND CASE WHEN $2 THEN r.desired_status IS DISTINCT FROM 'Cancelled'
                             ELSE r.desired_status IS NULL AND r.status <> 'Paused' END",
            )
            .bind(run)
            .bind(cancel)
            .fetch_all(&self.pool)
            .await?;
            if going.is_empty() {
                return Ok(());
            }
            for child in going {
                match self.stop_one(child, command).await {
                    // Ended meanwhile: nothing to stop.
                    Ok(_) | Err(RunError::Transition(..)) => {}
                    Err(error) => return Err(error),
                }
            }
        }
    }

    /// The runs `run`'s steps started (and theirs) that a pause of it paused go on with it:
    /// Scheduled again, each with its `run-start` job, in the resume's transaction.
    pub(super) async fn resume_descendants_in(
        &self,
        tx: &mut sqlx::PgConnection,
        run: i64,
    ) -> Result<(), RunError> {
        let children: Vec<i64> = sqlx::query_scalar(
            "WITH RECURSIVE d AS (
                 SELECT id FROM runs WHERE parent_run_id = $1
                 UNION SELECT r.id FROM runs r JOIN d ON r.parent_run_id = d.id)
             UPDATE runs r SET status = 'Scheduled', status_reason = NULL, desired_status = NULL
               FROM d
              WHERE r.id = d.id AND r.status = 'Paused' AND r.status_reason = 'Requested'
             RETURNING r.id",
        )
        .bind(run)
        .fetch_all(&mut *tx)
        .await?;
        for child in children {
            self.jobs
                .enqueue_in(&mut *tx, start_job(child, RunSource::RunView))
                .await?;
        }
        Ok(())
    }
}
