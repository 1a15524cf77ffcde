//! `run_routine`: start a routine version's run, or read, pause, resume or cancel one, through
//! the run service; a `sync` start polls the run until it ends or the wait does. Called by a
//! run's step, a start makes that run's child (`RunService::start`: the run's scope, one level
//! deeper, within its tree's limits), and a team run's step touches only its team's runs.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use super::context::{Caller, Tools, need, parse_id, wait_for, within};
use crate::auth::api_keys::Permission;
use crate::errors::Code;
use crate::mcp::errors::ToolError;
use crate::runs::{RunSource, StartRequest};

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RunRoutine {
    action: String,
    routine_id: Option<String>,
    run_id: Option<String>,
    inputs: Option<Value>,
    mode: Option<String>,
    timeout_ms: Option<u64>,
}

impl Tools {
    pub(super) async fn run_routine(
        &self,
        caller: &Caller,
        a: RunRoutine,
    ) -> Result<Value, ToolError> {
        let run_id = || -> Result<i64, ToolError> {
            let id = a
                .run_id
                .as_deref()
                .ok_or_else(|| ToolError::new(Code::InvalidArguments, "runId names the run"))?;
            parse_id(id, "runId")
        };
        let run = match a.action.as_str() {
            "start" => {
                need(caller, Permission::WritePrivate)?;
                let named = a.routine_id.as_deref().ok_or_else(|| {
                    ToolError::new(
                        Code::InvalidArguments,
                        "routineId names the routine (its latest version) or a routine version",
                    )
                })?;
                let version = self
                    .routines
                    .version_to_run(parse_id(named, "routineId")?, Some(caller.user))
                    .await?;
                if caller.team.is_some() {
                    // A team run's step runs its team's routines, or public ones.
                    let found = self.routines.version(version, Some(caller.user)).await?;
                    if found.is_private {
                        within(caller, found.team_id)?;
                    }
                }
                // A step's start makes its run's child: the run's scope, tree and limits.
                let (run, _) = self
                    .runs
                    .start(
                        caller.user,
                        StartRequest {
                            version,
                            team: caller.team,
                            inputs: a.inputs.clone().unwrap_or_else(|| json!({})),
                            source: RunSource::Api,
                            idempotency_key: None,
                            request_hash: String::new(),
                            limits: Default::default(),
                            api_key: caller.api_key,
                            parent: caller.run,
                        },
                    )
                    .await?;
                run
            }
            "status" => {
                need(caller, Permission::ReadPrivate)?;
                self.runs_team(caller, run_id()?).await?
            }
            "pause" | "cancel" => {
                need(caller, Permission::WritePrivate)?;
                let run = self.runs_team(caller, run_id()?).await?;
                let command = if a.action == "pause" {
                    vrooli_actors::RunCommand::Pause
                } else {
                    vrooli_actors::RunCommand::Cancel
                };
                self.runs.stop(run, caller.user, command).await?;
                run
            }
            "resume" => {
                need(caller, Permission::WritePrivate)?;
                let run = self.runs_team(caller, run_id()?).await?;
                let (run, _) = self
                    .runs
                    .resume(run, caller.user, Default::default())
                    .await?;
                run
            }
            other => {
                return Err(ToolError::new(
                    Code::InvalidArguments,
                    format!("unknown action {other:?}"),
                ));
            }
        };
        let mut found = self.runs.get(run, Some(caller.user)).await?;
        if a.action == "start" && a.mode.as_deref() == Some("sync") {
            let deadline = tokio::time::Instant::now() + wait_for(a.timeout_ms);
            // Polled: the run executes on whichever node holds its lease.
            while !matches!(
                found["status"].as_str(),
                Some("Completed" | "Failed" | "Cancelled" | "Paused")
            ) && tokio::time::Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(200)).await;
                found = self.runs.get(run, Some(caller.user)).await?;
            }
        }
        Ok(json!({"runId": run.to_string(), "run": found}))
    }
}

impl Tools {
    /// `run` when a team run's step may touch it (a run of its team); any other caller's run
    /// is checked by the run service.
    async fn runs_team(&self, caller: &Caller, run: i64) -> Result<i64, ToolError> {
        if caller.team.is_some() {
            within(caller, self.runs.team_of(run).await?)?;
        }
        Ok(run)
    }
}
