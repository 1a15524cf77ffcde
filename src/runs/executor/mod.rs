//! The step loop of one run on the node that holds its lease: the server's `RunDriver`.
//!
//! ```text
//! RunActor ─▶ Driver::run ─▶ load the snapshot and the stored steps (never memory)
//!   walk the graph from its start: a step stored Completed (or Skipped) is replayed from its
//!   outputs; the first one that is not is executed:
//!     fenced tx: step InProgress + step/started ─▶ execute (cancellable, timed out, retried)
//!     fenced tx: outputs + debit (ledger key = step key) + step/completed ─▶ next node
//!   wait / approval / input ─▶ fenced tx: lease dropped, waiting_for set ─▶ the actor stops
//!   the end ─▶ fenced tx: Completed | Failed | Cancelled | Paused + its event
//! ```
//!
//! Every write starts with `store::fence`: if the lease is no longer this node's, nothing is
//! written and the run stops here. Events go to the run's timeline and, through the outbox, to
//! its room, in the same transaction as the write they describe. A step found InProgress (its
//! node died mid-step) runs again with the same step key — except a `non-idempotent` http
//! step or a writing `action`, which pauses the run with `UncertainStep` until a person
//! resumes it.
//!
//! Every choice on the way (replay or run, stop or pause, limits, skip, retry with which delay
//! or fail, the next node, a wait's due time, how the run ends) is made in `decide/`, pure and
//! unit-tested; the files here do the I/O it asks for: `walk.rs` the walk and one step's
//! protocol, `work.rs` what a step does, `waits.rs` timers and people, `fanout.rs` parallel
//! and map, `budget.rs` usage and credit holds, this file the run's start and end.

mod budget;
mod decide;
mod fanout;
mod waits;
mod walk;
mod work;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use sqlx::{PgPool, Postgres, Transaction};
use tokio::sync::mpsc;
use vrooli_actors::fut::BoxFut;
use vrooli_actors::{Hub, NewEvent, RoomKey, RunControl, RunDriver};

use self::decide::{End, Ending, Halt};
use super::context::Context;
use super::limits::RunLimits;
use super::nodes::{self, HttpLimits, StepFailure};
use super::store::{self, Lease, StepRow, WriteError};
use crate::ai::{AiRegistry, Prompt, Role, Usage};
use crate::credits::Credits;
use crate::ids::{Snowflake, UserId};
use crate::outbox::Outbox;
use crate::routines::graph::{Graph, Kind, Node, Retry};

/// What every run's driver on this node uses.
pub struct RunDeps {
    pub pool: PgPool,
    pub ids: Arc<Snowflake>,
    pub hub: Hub,
    pub outbox: Outbox,
    pub ai: Arc<AiRegistry>,
    pub credits: Credits,
    pub http: reqwest::Client,
    pub http_limits: HttpLimits,
    /// `code` steps wait here for their `sandbox-execution` jobs (`runs/code.rs`).
    pub code: Arc<crate::runs::code::CodeResults>,
    pub jobs: crate::jobs::JobStore,
    /// `action` steps call these (set once at start-up, after the tools are built: they use
    /// the run service, which holds these deps).
    pub actions: std::sync::OnceLock<Arc<dyn crate::runs::nodes::ActionTools>>,
    pub lease_ttl: Duration,
    pub renew_every: Duration,
    pub step_timeout: Duration,
    /// Steps of one run doing work at once (parallel branches, map items).
    pub max_concurrent_steps: usize,
    /// Items a `map` may have: a node's `maxItems` may lower it, never raise it.
    pub map_max_items: usize,
    /// The longest a `wait` may last (a snapshot stored before a lower setting is held to it).
    pub max_wait_ms: u64,
    pub default_max_tokens: u32,
    /// This node's worker id: the lease owner it writes.
    pub node: i32,
}

/// Why the walk stopped before the end: a decision (`decide.rs`) or a database error.
enum Stop {
    Halt(Halt),
    Sql(sqlx::Error),
}

impl From<Halt> for Stop {
    fn from(halt: Halt) -> Self {
        Stop::Halt(halt)
    }
}

impl From<WriteError> for Stop {
    fn from(error: WriteError) -> Self {
        match error {
            WriteError::Fenced(_) => Stop::Halt(Halt::Fenced),
            WriteError::Sql(error) => Stop::Sql(error),
        }
    }
}

impl From<sqlx::Error> for Stop {
    fn from(error: sqlx::Error) -> Self {
        Stop::Sql(error)
    }
}

/// A run's owner, snapshot, inputs, limits (its root's, for a run a step started) and the API
/// key that started it.
type RunRow = (
    Option<UserId>,
    Option<crate::ids::TeamId>,
    Option<Value>,
    Value,
    Value,
    Option<crate::ids::ApiKeyId>,
);

/// A run's snapshot: its graph and those of the routine versions it calls.
#[derive(serde::Deserialize)]
struct Snapshot {
    graph: Graph,
    #[serde(default)]
    subroutines: HashMap<String, Graph>,
}

pub struct Driver {
    deps: Arc<RunDeps>,
    lease: Lease,
}

impl Driver {
    pub fn new(deps: Arc<RunDeps>, lease: Lease) -> Self {
        Self { deps, lease }
    }
}

impl RunDriver for Driver {
    fn run(self: Arc<Self>, control: RunControl) -> BoxFut<'static, ()> {
        Box::pin(async move { self.drive(control).await })
    }

    fn renew(self: Arc<Self>) -> BoxFut<'static, Result<bool, String>> {
        Box::pin(async move {
            store::renew(&self.deps.pool, self.lease, self.deps.lease_ttl)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

/// One walk of a run: who pays, its snapshot, steps and control.
struct Walk<'a> {
    driver: &'a Driver,
    /// Pays for its steps: the run's team when it has one, else its user.
    payer: crate::credits::Payer,
    /// The key that started the run: its llm steps spend within the key's credit limits.
    api_key: Option<crate::ids::ApiKeyId>,
    limits: RunLimits,
    snapshot: Arc<Snapshot>,
    steps: HashMap<String, StepRow>,
    control: RunControl,
    /// Cancels this walk's step in flight: the run's token, or a child of it for a branch.
    cancel: tokio_util::sync::CancellationToken,
    /// Steps of the run doing work at once (`runs.max_concurrent_steps`), shared by branches.
    permits: Arc<tokio::sync::Semaphore>,
    announced: bool,
}

impl Driver {
    async fn drive(&self, control: RunControl) {
        let run = self.lease.run;
        // A run started by a step spends from its tree's budget: the root's limits.
        let loaded: Result<Option<RunRow>, _> = sqlx::query_as(
            "SELECT r.user_id, r.team_id, r.snapshot, r.inputs, COALESCE(root.limits, r.limits),
                    r.api_key_id
               FROM runs r LEFT JOIN runs root ON root.id = r.root_run_id WHERE r.id = $1",
        )
        .bind(run)
        .fetch_optional(&self.deps.pool)
        .await;
        let (user, team, snapshot, inputs, limits, api_key) = match loaded {
            Ok(Some((Some(user), team, Some(snapshot), inputs, limits, api_key))) => {
                (user, team, snapshot, inputs, limits, api_key)
            }
            Ok(_) => return tracing::error!(run, "run has no owner or snapshot"),
            Err(error) => {
                return tracing::warn!(run, %error, "run not loaded; its lease will expire");
            }
        };
        let snapshot: Snapshot = match serde_json::from_value(snapshot) {
            Ok(s) => s,
            Err(error) => {
                let message = format!("the stored snapshot does not parse: {error}");
                let data = json!({"reason": "InvalidSnapshot", "message": message});
                return self.end(End::Failed, "InvalidSnapshot", data, None).await;
            }
        };
        let steps = match store::steps(&self.deps.pool, run).await {
            Ok(steps) => steps,
            Err(error) => return tracing::warn!(run, %error, "steps not loaded"),
        };
        // Runs written before limits existed have none: nothing to enforce.
        let limits = serde_json::from_value(limits).unwrap_or(RunLimits {
            max_credits: i64::MAX,
            max_steps: i64::MAX,
            max_time_ms: i64::MAX,
        });
        let mut walk = Walk {
            driver: self,
            payer: crate::credits::Payer::of(user, team),
            api_key,
            limits,
            announced: false,
            snapshot: Arc::new(snapshot),
            steps,
            cancel: control.token().clone(),
            control,
            permits: Arc::new(tokio::sync::Semaphore::new(self.deps.max_concurrent_steps)),
        };
        if decide::first_walk(self.lease.epoch, walk.steps.len()) {
            walk.announced = true;
            if let Err(stop) = walk.event("run/started", json!({})).await {
                return self.stopped(stop).await;
            }
        }
        let graph = walk.snapshot.graph.clone();
        let mut context = Context::new(inputs).with_optional(graph.optional_inputs.clone());
        match walk.graph(&graph, "", &mut context).await {
            Ok(outputs) => {
                let data = json!({"outputs": outputs});
                self.end(End::Completed, "", data, Some(&outputs)).await
            }
            Err(stop) => self.stopped(stop).await,
        }
    }

    /// Carries out what a stop makes of the run (`decide::ending`).
    async fn stopped(&self, stop: Stop) {
        let run = self.lease.run;
        let halt = match stop {
            Stop::Halt(halt) => halt,
            Stop::Sql(error) => {
                return tracing::warn!(run, %error, "run interrupted; its lease will expire");
            }
        };
        match decide::ending(halt) {
            Ending::Left(why) => {
                if let Some(why) = why {
                    tracing::info!(run, "{why}");
                }
            }
            Ending::Ended { end, reason, data } => self.end(end, reason, data, None).await,
            Ending::Paused(reason) => {
                let result = async {
                    let mut tx = self.deps.pool.begin().await?;
                    store::fence(&mut tx, self.lease).await?;
                    store::pause_in(&mut tx, self.lease.run, reason).await?;
                    store::event_in(&mut tx, run, "run/paused", json!({"reason": reason})).await?;
                    tx.commit().await?;
                    Ok::<_, WriteError>(())
                }
                .await;
                self.after_write(result);
            }
        }
    }

    /// Ends the run with its event, if the lease is still ours.
    async fn end(&self, end: End, reason: &str, data: Value, outputs: Option<&Value>) {
        let run = self.lease.run;
        let (status, event) = (end.status(), end.event());
        let result = async {
            let mut tx = self.deps.pool.begin().await?;
            store::fence(&mut tx, self.lease).await?;
            let reason = (!reason.is_empty()).then_some(reason);
            store::end_in(&mut tx, run, status, reason, outputs).await?;
            store::event_in(&mut tx, run, event, data).await?;
            tx.commit().await?;
            Ok::<_, WriteError>(())
        }
        .await;
        self.after_write(result);
    }

    fn after_write(&self, result: Result<(), WriteError>) {
        if let Some(room) = RoomKey::run(&self.lease.run.to_string()) {
            self.deps.outbox.kick(&room);
        }
        match result {
            Ok(()) | Err(WriteError::Fenced(_)) => {}
            Err(WriteError::Sql(error)) => {
                tracing::warn!(run = self.lease.run, %error, "run not ended; its lease will expire")
            }
        }
    }
}
