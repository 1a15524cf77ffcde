//! Runs: a routine version executed step by step by the node that holds the run's lease.
//!
//! ```text
//! POST /task/start/run ─▶ RunService::start: snapshot (graph + called versions) ─▶ one tx:
//!                         run row (Scheduled) + job `run-start` ─▶ 200 {runId}
//! job run-start (any node) ─▶ claim the lease ─▶ hub.start_run(Driver) ─▶ RunActor ─▶ executor
//! sweeper (every node) ─▶ expired leases, due waits ─▶ claim ─▶ hub.start_run
//! cancel / pause ─▶ the row first (desired_status) ─▶ hub.command_run(owner) ─▶ its RunActor
//!                  no live owner (scheduled, waiting) ─▶ ended or paused here, in one tx
//! decision ─▶ stored (kept if early) ─▶ a run waiting for it is woken (claimed here)
//! a step's run_routine start ─▶ a child run: the parent's scope, depth + 1 (≤ the subroutine
//!                  depth), the root's limits over the whole tree; a stop reaches descendants
//! ```
//!
//! `service.rs` is what handlers call (`lineage.rs` for runs started by runs' steps, `answers.rs`:
//! the keys a run's answers take), `start.rs` the `run-start` job and the sweeper,
//! `code.rs` the `sandbox-execution` job of `code` steps,
//! `store.rs` the SQL (lease, fencing, timeline), `scope.rs` who a run acts for (its key,
//! permissions and team, handed to its `action` steps' tools), `executor/` the step loop (its decisions,
//! pure, in `executor/decide/`), `nodes.rs` what each kind does, `context.rs` templates, `limits.rs` limits. ADR 20 says what was decided.

pub(crate) mod access;
mod answers;
pub mod code;
pub mod context;
pub mod executor;
pub mod limits;
mod lineage;
pub mod nodes;
pub mod read;
pub mod scope;
mod service;
mod start;
pub mod store;

use crate::errors::{Code, ErrorCode, Told};
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;
use sqlx::PgPool;

pub use executor::{Driver, RunDeps};
pub use limits::{LimitOverrides, RunLimits};
pub use start::{RunStart, RunStartPayload, start_sweeper, take_over};

use crate::ids::ResourceVersionId;
use crate::jobs::JobStore;
use crate::routines::graph::{Graph, Kind};
use crate::routines::{RoutineError, RoutineService};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Routine(#[from] RoutineError),
    #[error("node {node:?}: {kind} cannot run yet")]
    KindUnavailable { node: String, kind: &'static str },
    #[error("routine versions call each other deeper than {0} levels")]
    TooDeep(usize),
    /// A step started a run whose ancestors are already `runs.max_subroutine_depth` deep.
    #[error("runs started by runs' steps may nest at most {0} deep")]
    RunTooDeep(usize),
    /// A run's step asked to start a run while that run is stopping or ended.
    #[error("a run that is {0} starts no runs")]
    ParentStopped(String),
    #[error("no such run")]
    NotFound,
    /// The caller may read the run but not act on it (a team run without `ManageRuns`).
    #[error("only who started this run, or a member allowed ManageRuns, may do that")]
    NotAllowed,
    #[error("a run that is {0} cannot be {1}")]
    Transition(String, &'static str),
    #[error("this Idempotency-Key was used for another request")]
    KeyReused,
    /// An answer for a key no approval or input of the run has: it would wait forever.
    #[error("no approval or input of this run has the key {key:?}; it takes {}", match .keys.is_empty() { true => "none".to_owned(), false => .keys.join(", ") })]
    UnknownDecisionKey { key: String, keys: Vec<String> },
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Limits(String),
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
}

impl ErrorCode for RunError {
    fn told(&self) -> Told {
        let code = match self {
            RunError::Routine(e) => return e.told(),
            RunError::KindUnavailable { .. } => Code::NodeKindUnavailable,
            RunError::TooDeep(_) => Code::InvalidRoutineGraph,
            RunError::RunTooDeep(_) => Code::RunTooDeep,
            RunError::ParentStopped(_) => Code::InvalidTransition,
            RunError::NotFound => Code::RunNotFound,
            RunError::NotAllowed => Code::NotAllowed,
            RunError::Transition(..) => Code::InvalidTransition,
            RunError::KeyReused => Code::IdempotencyKeyReused,
            RunError::UnknownDecisionKey { .. } => Code::UnknownDecisionKey,
            RunError::Invalid(_) => Code::InvalidBody,
            RunError::Limits(_) => Code::InvalidLimits,
            RunError::Sql(e) => return e.told(),
        };
        Told::says(code, self)
    }
}

/// Who started a run: decides its place in the `run-start` queue (the original's bonuses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
pub enum RunSource {
    RunView,
    Api,
    Chat,
    Schedule,
}

impl RunSource {
    fn priority(self) -> i32 {
        100 - match self {
            RunSource::RunView => 20,
            RunSource::Api => 16,
            RunSource::Chat => 14,
            RunSource::Schedule => 3,
        }
    }
}

/// What `POST /task/start/run` asks for.
pub struct StartRequest {
    pub version: ResourceVersionId,
    /// Start it as this team (the caller needs `StartRuns` there; the team pays).
    pub team: Option<crate::ids::TeamId>,
    pub inputs: Value,
    pub source: RunSource,
    pub idempotency_key: Option<String>,
    /// A digest of the request body: the same key with another body is refused.
    pub request_hash: String,
    pub limits: LimitOverrides,
    /// The API key that asks (`None`: a signed-in session): the run keeps it and its
    /// permissions, and its llm steps spend within the key's credit limits.
    pub api_key: Option<crate::ids::ApiKeyId>,
    /// The run whose `action` step asks: the new run is its child, in its scope and tree.
    pub parent: Option<i64>,
}

#[derive(Clone)]
pub struct RunService {
    pub pool: PgPool,
    pub ids: Arc<crate::ids::Snowflake>,
    pub jobs: JobStore,
    pub routines: RoutineService,
    pub deps: Arc<RunDeps>,
    pub max_depth: usize,
    /// The `[runs]` limits; a run may ask for lower ones.
    pub limits: RunLimits,
}

/// What the executor cannot run yet: a wait, a person's answer or a subroutine inside a
/// parallel branch or as a map's body (a wait drops the lease the other branches still write
/// under), and a join that waits for `any` branch.
fn runnable(graph: &Graph) -> Result<(), RunError> {
    let waits = |node: &crate::routines::graph::Node| {
        matches!(
            node.kind,
            Kind::Wait { .. }
                | Kind::Approval { .. }
                | Kind::Input { .. }
                | Kind::Subroutine { .. }
        )
    };
    let refuse =
        |node: &crate::routines::graph::Node, what: &'static str| RunError::KindUnavailable {
            node: node.id.clone(),
            kind: what,
        };
    for node in &graph.nodes {
        match &node.kind {
            Kind::Join {
                wait_for: crate::routines::graph::WaitFor::Any,
            } => return Err(refuse(node, "join waitFor \"any\"")),
            Kind::Map { node: body, .. } => {
                if let Some(body) = graph.node(body)
                    && (waits(body)
                        || matches!(body.kind, Kind::Parallel { .. } | Kind::Map { .. }))
                {
                    return Err(refuse(body, "waiting, subroutine and fan-out map bodies"));
                }
            }
            Kind::Parallel { branches, join } => {
                for start in branches {
                    let mut current = Some(start.as_str());
                    let mut seen = 0;
                    while let Some(id) = current.filter(|id| id != join) {
                        let Some(branch_node) = graph.node(id) else {
                            break;
                        };
                        if waits(branch_node) {
                            return Err(refuse(
                                branch_node,
                                "waiting and subroutine steps in parallel branches",
                            ));
                        }
                        seen += 1;
                        if seen > graph.nodes.len() {
                            break;
                        }
                        current = match &branch_node.kind {
                            Kind::Parallel { join, .. } => Some(join.as_str()),
                            _ => graph.next_of(id).first().copied(),
                        };
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}
