//! Where runs start on a node: the `run-start` job (a person or schedule started it) and the
//! sweeper (an owner's lease expired, or a wait is due). Both claim the lease, then start the
//! run's actor here.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;
use vrooli_actors::RunId as ActorRunId;

use super::{Driver, RunDeps, RunSource, store};
use crate::jobs::{JobContext, JobError, JobHandler, NewJob, Queue};

/// `run-start`: claim the run's lease and start its actor here.
pub struct RunStart {
    pub deps: Arc<RunDeps>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunStartPayload {
    pub run_id: String,
}

impl JobHandler for RunStart {
    const KIND: &'static str = "run-start";
    const QUEUE: Queue = Queue::RunStart;
    type Payload = RunStartPayload;

    async fn handle(&self, payload: RunStartPayload, _: JobContext) -> Result<(), JobError> {
        let run: i64 = payload.run_id.parse().map_err(JobError::permanent)?;
        take_over(&self.deps, run)
            .await
            .map_err(JobError::retryable)?;
        Ok(())
    }
}

/// Claims `run` if nobody holds it and starts its actor here. True when this node took it.
pub async fn take_over(deps: &Arc<RunDeps>, run: i64) -> Result<bool, sqlx::Error> {
    if deps.hub.is_shutting_down() {
        return Ok(false);
    }
    let Some(lease) = store::claim(&deps.pool, run, deps.node, deps.lease_ttl).await? else {
        return Ok(false);
    };
    tracing::info!(run, epoch = lease.epoch, "run claimed");
    let driver = Arc::new(Driver::new(Arc::clone(deps), lease));
    Ok(deps
        .hub
        .start_run(ActorRunId(run), driver, deps.renew_every))
}

/// Takes over runs whose owner is gone or whose wait is due, every `every`, until the node
/// shuts down.
pub fn start_sweeper(deps: Arc<RunDeps>, every: Duration) {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            if deps.hub.is_shutting_down() {
                return;
            }
            match store::claimable(&deps.pool, 50).await {
                Ok(runs) => {
                    for run in runs {
                        if let Err(error) = take_over(&deps, run).await {
                            tracing::warn!(run, %error, "run not taken over");
                        }
                    }
                }
                Err(error) if deps.pool.is_closed() => {
                    tracing::debug!(%error, "run sweeper stops with the pool");
                    return;
                }
                Err(error) => tracing::warn!(%error, "run sweep failed"),
            }
        }
    });
}

pub(super) fn start_job(run: i64, source: RunSource) -> NewJob {
    NewJob::new(
        Queue::RunStart,
        RunStart::KIND,
        json!({"runId": run.to_string()}),
    )
    .priority(source.priority())
}
