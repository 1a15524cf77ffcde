//! The step loop of one run on the node that holds its lease: the server's `RunDriver`.
//!
//! ```text
//! RunActor ─▶ Driver::run ─▶ load the snapshot and the stored steps (never memory)
//!   walk the graph from its start: a step stored Completed is replayed from its outputs;
//!   the first one that is not is executed:
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
//! step, which pauses the run with `UncertainStep` until a person resumes it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use sqlx::{PgPool, Postgres, Transaction};
use tokio::sync::mpsc;
use vrooli_actors::fut::BoxFut;
use vrooli_actors::{Hub, NewEvent, RoomKey, RunControl, RunDriver, StopReason};

use super::context::Context;
use super::limits::RunLimits;
use super::nodes::{self, HttpLimits, StepFailure};
use super::store::{self, Lease, StepRow, WriteError};
use crate::ai::{AiRegistry, Prompt, Role, Usage};
use crate::credits::Credits;
use crate::ids::{Snowflake, UserId};
use crate::outbox::Outbox;
use crate::routines::graph::{Effect, Graph, Kind, Node, Retry};

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
    pub lease_ttl: Duration,
    pub renew_every: Duration,
    pub step_timeout: Duration,
    pub default_max_tokens: u32,
    /// This node's worker id: the lease owner it writes.
    pub node: i32,
}

/// Why the walk stopped before the end.
enum Stop {
    Fenced,
    Cancelled,
    Shutdown,
    Paused(&'static str),
    /// The lease was dropped for a wait (in the step's transaction).
    Waiting,
    Failed {
        step: String,
        reason: &'static str,
        message: String,
    },
    Sql(sqlx::Error),
}

impl From<WriteError> for Stop {
    fn from(error: WriteError) -> Self {
        match error {
            WriteError::Fenced(_) => Stop::Fenced,
            WriteError::Sql(error) => Stop::Sql(error),
        }
    }
}

impl From<sqlx::Error> for Stop {
    fn from(error: sqlx::Error) -> Self {
        Stop::Sql(error)
    }
}

/// A run's owner, snapshot, inputs and limits.
type RunRow = (Option<UserId>, Option<Value>, Value, Value);

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

/// One walk of a run: its user, snapshot, steps and control.
struct Walk<'a> {
    driver: &'a Driver,
    user: UserId,
    limits: RunLimits,
    snapshot: Snapshot,
    steps: HashMap<String, StepRow>,
    control: RunControl,
    announced: bool,
}

impl Driver {
    async fn drive(&self, control: RunControl) {
        let run = self.lease.run;
        let loaded: Result<Option<RunRow>, _> =
            sqlx::query_as("SELECT user_id, snapshot, inputs, limits FROM runs WHERE id = $1")
                .bind(run)
                .fetch_optional(&self.deps.pool)
                .await;
        let (user, snapshot, inputs, limits) = match loaded {
            Ok(Some((Some(user), Some(snapshot), inputs, limits))) => {
                (user, snapshot, inputs, limits)
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
                return self
                    .end(
                        "Failed",
                        "InvalidSnapshot",
                        json!({"reason": "InvalidSnapshot", "message": message}),
                        None,
                    )
                    .await;
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
            user,
            limits,
            announced: false,
            snapshot,
            steps,
            control,
        };
        if self.lease.epoch == 1 && walk.steps.is_empty() {
            walk.announced = true;
            if let Err(stop) = walk.event("run/started", json!({})).await {
                return self.stopped(stop).await;
            }
        }
        let graph = walk.snapshot.graph.clone();
        let mut context = Context::new(inputs);
        match walk.graph(&graph, "", &mut context).await {
            Ok(outputs) => {
                self.end("Completed", "", json!({"outputs": outputs}), Some(&outputs))
                    .await
            }
            Err(stop) => self.stopped(stop).await,
        }
    }

    async fn stopped(&self, stop: Stop) {
        let run = self.lease.run;
        match stop {
            Stop::Fenced => tracing::info!(run, "lease lost; another node has the run"),
            Stop::Shutdown => tracing::info!(run, "node stopping; the run's lease will expire"),
            Stop::Waiting => {}
            Stop::Sql(error) => {
                tracing::warn!(run, %error, "run interrupted; its lease will expire")
            }
            Stop::Cancelled => self.end("Cancelled", "Cancelled", json!({}), None).await,
            Stop::Paused(reason) => {
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
            Stop::Failed {
                step,
                reason,
                message,
            } => {
                let data = json!({"reason": reason, "message": message, "stepKey": step});
                self.end("Failed", reason, data, None).await
            }
        }
    }

    /// Ends the run with `status` and its event, if the lease is still ours.
    async fn end(&self, status: &str, reason: &str, data: Value, outputs: Option<&Value>) {
        let run = self.lease.run;
        let event = match status {
            "Completed" => "run/completed",
            "Cancelled" => "run/cancelled",
            _ => "run/failed",
        };
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

impl Walk<'_> {
    fn deps(&self) -> &RunDeps {
        &self.driver.deps
    }

    fn run(&self) -> i64 {
        self.driver.lease.run
    }

    /// A fenced transaction; what a person asked for meanwhile stops the walk here.
    async fn begin(&self) -> Result<Transaction<'static, Postgres>, Stop> {
        let mut tx = self.deps().pool.begin().await?;
        match store::fence(&mut tx, self.driver.lease).await? {
            Some(desired) if desired == "Cancelled" => Err(Stop::Cancelled),
            Some(desired) if desired == "Paused" => Err(Stop::Paused("Requested")),
            _ => Ok(tx),
        }
    }

    async fn commit(&self, tx: Transaction<'static, Postgres>) -> Result<(), Stop> {
        tx.commit().await?;
        if let Some(room) = RoomKey::run(&self.run().to_string()) {
            self.deps().outbox.kick(&room);
        }
        Ok(())
    }

    async fn event(&self, event_type: &str, data: Value) -> Result<(), Stop> {
        let mut tx = self.begin().await?;
        store::event_in(&mut tx, self.run(), event_type, data).await?;
        self.commit(tx).await
    }

    /// Before a step: stop, cancel or pause asked for through the actor.
    fn boundary(&self) -> Result<(), Stop> {
        self.halted()?;
        if self.control.pause_requested() {
            return Err(Stop::Paused("Requested"));
        }
        Ok(())
    }

    /// After a step's work: only a stop counts (a pause waits until its result is stored).
    fn halted(&self) -> Result<(), Stop> {
        match self.control.stopped() {
            Some(StopReason::Cancelled) => Err(Stop::Cancelled),
            Some(StopReason::Fenced) => Err(Stop::Fenced),
            Some(StopReason::Shutdown) => Err(Stop::Shutdown),
            None => Ok(()),
        }
    }

    /// The run's limits, before a step that may spend up to `hold` credits.
    async fn within_limits(&self, key: &str, hold: i64, new_step: bool) -> Result<(), Stop> {
        let (credits, steps, active_ms) = store::usage(&self.deps().pool, self.run()).await?;
        let limits = self.limits;
        let fail = |reason: &'static str, message: String| Stop::Failed {
            step: key.to_owned(),
            reason,
            message,
        };
        if new_step && steps >= limits.max_steps {
            return Err(fail(
                "MaxSteps",
                format!("{steps} steps taken; the limit is {}", limits.max_steps),
            ));
        }
        if active_ms >= limits.max_time_ms {
            return Err(fail(
                "MaxTime",
                format!(
                    "{active_ms} ms in steps; the limit is {}",
                    limits.max_time_ms
                ),
            ));
        }
        if credits.saturating_add(hold) > limits.max_credits {
            return Err(Stop::Paused("MaxCredits"));
        }
        Ok(())
    }

    /// The most an llm step can cost (its hold): the prompt's bytes as tokens in, its token
    /// limit out, at the dearest model of its fallback chain.
    fn llm_hold(&self, node: &Node, context: &Context) -> i64 {
        let Kind::Llm {
            prompt,
            model,
            max_tokens,
            ..
        } = &node.kind
        else {
            return 0;
        };
        let deps = self.deps();
        let model = model.as_deref().unwrap_or(&deps.ai.default_model);
        let input = context
            .render_string(prompt)
            .map_or(prompt.len(), |p| p.len()) as i64;
        let usage = Usage {
            input_tokens: input + 16,
            output_tokens: i64::from(max_tokens.unwrap_or(deps.default_max_tokens)),
        };
        deps.ai.worst_case_cost(model, usage)
    }

    /// Walks a graph from its start; its outputs.
    fn graph<'b>(
        &'b mut self,
        graph: &'b Graph,
        prefix: &'b str,
        context: &'b mut Context,
    ) -> BoxFut<'b, Result<Value, Stop>> {
        Box::pin(async move {
            let mut current = graph.start.clone();
            loop {
                let node = graph
                    .node(&current)
                    .ok_or_else(|| Stop::Failed {
                        step: current.clone(),
                        reason: "InvalidSnapshot",
                        message: format!("no node {current:?}"),
                    })?
                    .clone();
                let key = format!("{}:{prefix}{}", self.run(), node.id);
                let outputs = match self.steps.get(&key) {
                    Some(step) if step.status == "Completed" || step.status == "Skipped" => {
                        step.outputs.clone().unwrap_or_else(|| json!({}))
                    }
                    existing => {
                        let existing = existing.cloned();
                        self.step(&node, &key, prefix, context, existing).await?
                    }
                };
                context.nodes.insert(node.id.clone(), outputs.clone());
                let next = match &node.kind {
                    Kind::Decision { .. } => outputs["branch"].as_str().map(str::to_owned),
                    _ => graph.next_of(&node.id).first().map(|s| (*s).to_owned()),
                };
                match next {
                    Some(next) => current = next,
                    None if graph.outputs.is_empty() => return Ok(outputs),
                    None => {
                        let picked = graph
                            .outputs
                            .iter()
                            .map(|(name, path)| {
                                (name.clone(), context.lookup(path).unwrap_or(Value::Null))
                            })
                            .collect();
                        return Ok(Value::Object(picked));
                    }
                }
            }
        })
    }

    /// Runs one node that has no stored result.
    async fn step(
        &mut self,
        node: &Node,
        key: &str,
        prefix: &str,
        context: &mut Context,
        existing: Option<StepRow>,
    ) -> Result<Value, Stop> {
        self.boundary()?;
        let hold = self.llm_hold(node, context);
        // A step already begun (a wait resuming, a takeover) was counted when it began.
        self.within_limits(key, hold, existing.is_none()).await?;
        let failed = |reason: &'static str, message: String| Stop::Failed {
            step: key.to_owned(),
            reason,
            message,
        };
        if let Some(skip) = &node.skip_condition
            && nodes::holds(skip, context)
        {
            let mut tx = self.begin().await?;
            let id = self.deps().ids.next_id();
            store::start_step_in(&mut tx, id, self.run(), &node.id, key, &json!({})).await?;
            store::finish_step_in(&mut tx, key, "Skipped", Some(&json!({})), None, 0).await?;
            store::event_in(
                &mut tx,
                self.run(),
                "step/skipped",
                json!({"stepKey": key, "nodeId": node.id}),
            )
            .await?;
            self.commit(tx).await?;
            return Ok(json!({}));
        }
        let in_flight = existing.as_ref().is_some_and(|s| s.status == "InProgress");
        match &node.kind {
            Kind::Wait { duration_ms, until } => {
                return self
                    .wait(node, key, existing, *duration_ms, until.as_deref())
                    .await;
            }
            Kind::Approval { .. } | Kind::Input { .. } => {
                return self.decision(node, key, prefix, in_flight).await;
            }
            Kind::Subroutine { version_id, inputs } => {
                let Some(child) = self.snapshot.subroutines.get(version_id).cloned() else {
                    return Err(failed(
                        "InvalidSnapshot",
                        format!("no snapshot of routine version {version_id}"),
                    ));
                };
                let mut rendered = serde_json::Map::new();
                for (name, template) in inputs {
                    let value = context
                        .render_text(template)
                        .map_err(|m| failed("MissingOutput", format!("input {name:?}: {m}")))?;
                    rendered.insert(name.clone(), value);
                }
                let inputs = Value::Object(rendered);
                if !in_flight {
                    let mut tx = self.begin().await?;
                    let id = self.deps().ids.next_id();
                    let attempt =
                        store::start_step_in(&mut tx, id, self.run(), &node.id, key, &inputs)
                            .await?;
                    self.started_in(&mut tx, node, key, attempt).await?;
                    self.commit(tx).await?;
                }
                let mut child_context = Context::new(inputs);
                let child_prefix = format!("{prefix}{}/", node.id);
                let outputs = self
                    .graph(&child, &child_prefix, &mut child_context)
                    .await?;
                return self
                    .completed(node, key, &outputs, 0)
                    .await
                    .map(|()| outputs);
            }
            Kind::Http {
                effect: Effect::NonIdempotent,
                ..
            } if in_flight => {
                // It may have happened: a person decides (resume retries it).
                return Err(Stop::Paused("UncertainStep"));
            }
            _ => {}
        }
        let retry = node.retry.unwrap_or(Retry {
            max_attempts: 1,
            backoff_ms: 0,
        });
        loop {
            let rendered = self
                .render_inputs(node, context)
                .map_err(|m| failed("MissingOutput", m))?;
            let mut tx = self.begin().await?;
            let id = self.deps().ids.next_id();
            let attempt =
                store::start_step_in(&mut tx, id, self.run(), &node.id, key, &rendered).await?;
            if hold > 0 {
                // Reserved with the step's start: concurrent runs of one user cannot overspend.
                // A second hold under the same key (a retry, a takeover) holds nothing more.
                match self
                    .deps()
                    .credits
                    .hold_in(&mut tx, self.user, None, key, hold)
                    .await
                {
                    Ok(()) => {}
                    Err(crate::credits::CreditError::Database(error)) => return Err(error.into()),
                    Err(_) => return Err(Stop::Paused("InsufficientCredits")),
                }
            }
            self.started_in(&mut tx, node, key, attempt).await?;
            self.commit(tx).await?;

            let timeout = node
                .timeout_ms
                .map_or(self.deps().step_timeout, Duration::from_millis);
            let result = match tokio::time::timeout(timeout, self.execute(node, key, context)).await
            {
                Ok(result) => result,
                Err(_) => Err(StepFailure::retryable(
                    "StepTimeout",
                    format!("took longer than {} ms", timeout.as_millis()),
                )),
            };
            if let Err(stop) = self.halted() {
                if matches!(stop, Stop::Cancelled) && hold > 0 {
                    // Cancelled mid-step: nothing was finished, nothing is charged.
                    let _ = self.deps().credits.release(key).await;
                }
                return Err(stop);
            }
            match result {
                Ok((outputs, cost)) => {
                    self.completed(node, key, &outputs, cost).await?;
                    return Ok(outputs);
                }
                Err(failure) if failure.retryable && (attempt as u32) < retry.max_attempts => {
                    let delay = retry
                        .backoff_ms
                        .saturating_mul(1 << (attempt - 1).clamp(0, 16));
                    self.event(
                        "step/retrying",
                        json!({"stepKey": key, "attempt": attempt, "delayMs": delay, "error": failure.message}),
                    )
                    .await?;
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(delay)) => {}
                        _ = self.control.token().cancelled() => {}
                    }
                    self.boundary()?;
                }
                Err(failure) => {
                    if hold > 0 {
                        let _ = self.deps().credits.release(key).await;
                    }
                    let mut tx = self.begin().await?;
                    store::finish_step_in(&mut tx, key, "Failed", None, Some(&failure.message), 0)
                        .await?;
                    store::event_in(
                        &mut tx,
                        self.run(),
                        "step/failed",
                        json!({"stepKey": key, "nodeId": node.id, "reason": failure.reason, "message": failure.message}),
                    )
                    .await?;
                    self.commit(tx).await?;
                    return Err(failed(
                        failure.reason,
                        format!("{}: {}", node.id, failure.message),
                    ));
                }
            }
        }
    }

    /// `step/started` (and, the first time after a takeover, `run/resumed`).
    async fn started_in(
        &mut self,
        tx: &mut Transaction<'static, Postgres>,
        node: &Node,
        key: &str,
        attempt: i32,
    ) -> Result<(), Stop> {
        if !self.announced {
            self.announced = true;
            store::event_in(tx, self.run(), "run/resumed", json!({"fromStep": key})).await?;
        }
        store::event_in(
            tx,
            self.run(),
            "step/started",
            json!({"stepKey": key, "nodeId": node.id, "kind": node.kind.name(), "attempt": attempt}),
        )
        .await?;
        Ok(())
    }

    /// Stores a step's outputs and its debit (once, under the step key) with its event.
    async fn completed(
        &mut self,
        node: &Node,
        key: &str,
        outputs: &Value,
        cost: i64,
    ) -> Result<(), Stop> {
        let mut tx = self.begin().await?;
        let mut charged = 0;
        if cost > 0 || matches!(node.kind, Kind::Llm { .. }) {
            // Settles the step's hold against its cost; the ledger entry, keyed by the step,
            // says what was charged, once.
            self.deps()
                .credits
                .settle_in(&mut tx, self.user, None, key, cost, "RunStep", key)
                .await?;
            charged = sqlx::query_scalar(
                "SELECT COALESCE(-sum(amount), 0)::BIGINT FROM credit_ledger_entries
                  WHERE idempotency_key = $1",
            )
            .bind(key)
            .fetch_one(&mut *tx)
            .await?;
        }
        store::finish_step_in(&mut tx, key, "Completed", Some(outputs), None, charged).await?;
        store::event_in(
            &mut tx,
            self.run(),
            "step/completed",
            json!({"stepKey": key, "nodeId": node.id, "outputs": outputs, "credits": charged}),
        )
        .await?;
        self.commit(tx).await?;
        self.steps.insert(
            key.to_owned(),
            StepRow {
                node_id: node.id.clone(),
                step_key: key.to_owned(),
                status: "Completed".into(),
                attempt: 1,
                inputs: None,
                outputs: Some(outputs.clone()),
            },
        );
        Ok(())
    }

    fn render_inputs(&self, node: &Node, context: &Context) -> Result<Value, String> {
        let value = serde_json::to_value(&node.kind).unwrap_or(Value::Null);
        context
            .render(&value)
            .map_err(|m| format!("{}: {m}", node.id))
    }

    /// Executes an `http`, `llm` or `decision` node; its outputs and cost in credits.
    async fn execute(
        &self,
        node: &Node,
        key: &str,
        context: &Context,
    ) -> Result<(Value, i64), StepFailure> {
        let missing =
            |m: super::context::Missing| StepFailure::permanent("MissingOutput", m.to_string());
        match &node.kind {
            Kind::Http {
                method,
                url,
                headers,
                body,
                outputs,
                ..
            } => {
                let url = context.render_string(url).map_err(missing)?;
                let mut rendered_headers = std::collections::BTreeMap::new();
                for (name, value) in headers {
                    rendered_headers
                        .insert(name.clone(), context.render_string(value).map_err(missing)?);
                }
                let body = body
                    .as_ref()
                    .map(|b| context.render(b))
                    .transpose()
                    .map_err(missing)?;
                let timeout = node
                    .timeout_ms
                    .map_or(self.deps().http_limits.timeout, Duration::from_millis);
                let outputs = nodes::http(
                    &self.deps().http,
                    &self.deps().http_limits,
                    method,
                    &url,
                    &rendered_headers,
                    body.as_ref(),
                    outputs,
                    key,
                    timeout,
                    self.control.token(),
                )
                .await?;
                Ok((outputs, 0))
            }
            Kind::Llm {
                prompt,
                model,
                max_tokens,
                outputs,
            } => {
                let text = context.render_string(prompt).map_err(missing)?;
                self.llm(key, &text, model.as_deref(), *max_tokens, outputs)
                    .await
            }
            Kind::Decision { branches, default } => {
                let to = nodes::decide(branches, default, context);
                Ok((json!({"branch": to}), 0))
            }
            other => Err(StepFailure::permanent(
                "NodeKindUnavailable",
                format!("{} steps cannot run yet", other.name()),
            )),
        }
    }

    async fn llm(
        &self,
        key: &str,
        text: &str,
        model: Option<&str>,
        max_tokens: Option<u32>,
        declared: &std::collections::BTreeMap<String, String>,
    ) -> Result<(Value, i64), StepFailure> {
        let deps = self.deps();
        let model = model.unwrap_or(&deps.ai.default_model).to_owned();
        let prompt = Prompt {
            system: None,
            turns: vec![(Role::User, text.to_owned())],
            max_tokens: max_tokens.unwrap_or(deps.default_max_tokens),
        };
        let (tx, mut rx) = mpsc::channel::<String>(64);
        let room = RoomKey::run(&self.run().to_string());
        let hub = deps.hub.clone();
        let stream_key = key.to_owned();
        let run = self.run();
        // Chunks go to the room as they come (volatile: a client that misses them gets the
        // whole answer with step/completed).
        let forward = async move {
            let mut answer = String::new();
            let mut n = 0u64;
            while let Some(chunk) = rx.recv().await {
                answer.push_str(&chunk);
                if let Some(room) = &room {
                    n += 1;
                    let event = NewEvent {
                        id: format!("run-{run}-stream-{stream_key}-{n}"),
                        event_type: "step/stream".into(),
                        timestamp_ms: chrono::Utc::now().timestamp_millis(),
                        room: room.clone(),
                        data: json!({"runId": run.to_string(), "stepKey": stream_key, "chunk": chunk}),
                    };
                    let _ = hub.publish_volatile(&event).await;
                }
            }
            answer
        };
        let (completion, answer) = tokio::join!(
            deps.ai.stream(&model, &prompt, tx, self.control.token()),
            forward
        );
        let completion = completion.map_err(|e| match e {
            crate::ai::AiError::UnknownModel(m) => StepFailure::permanent("UnknownModel", m),
            crate::ai::AiError::Cancelled { .. } => StepFailure::permanent("Cancelled", "stopped"),
            other => StepFailure::retryable("ModelError", other.to_string()),
        })?;
        let outputs = nodes::llm_outputs(&answer, declared)?;
        Ok((outputs, completion.model.cost(completion.usage)))
    }

    /// A `wait`: done when its time has come; otherwise the lease is dropped until then.
    async fn wait(
        &mut self,
        node: &Node,
        key: &str,
        existing: Option<StepRow>,
        duration_ms: Option<u64>,
        until: Option<&str>,
    ) -> Result<Value, Stop> {
        let now = chrono::Utc::now();
        let stored_until = existing
            .as_ref()
            .filter(|s| s.status == "InProgress")
            .and_then(|s| s.inputs.as_ref())
            .and_then(|i| i["until"].as_str())
            .and_then(|u| chrono::DateTime::parse_from_rfc3339(u).ok())
            .map(|u| u.with_timezone(&chrono::Utc));
        let due = match (stored_until, until) {
            (Some(at), _) => at,
            (None, Some(until)) => chrono::DateTime::parse_from_rfc3339(until)
                .map(|u| u.with_timezone(&chrono::Utc))
                .unwrap_or(now),
            (None, None) => now + chrono::Duration::milliseconds(duration_ms.unwrap_or(0) as i64),
        };
        if stored_until.is_none() {
            let mut tx = self.begin().await?;
            let id = self.deps().ids.next_id();
            let inputs = json!({"until": due.to_rfc3339()});
            let attempt =
                store::start_step_in(&mut tx, id, self.run(), &node.id, key, &inputs).await?;
            self.started_in(&mut tx, node, key, attempt).await?;
            if due > now {
                store::wait_in(&mut tx, self.run(), "Timer", Some(due)).await?;
                store::event_in(
                    &mut tx,
                    self.run(),
                    "run/waiting",
                    json!({"stepKey": key, "until": due.to_rfc3339()}),
                )
                .await?;
                self.commit(tx).await?;
                return Err(Stop::Waiting);
            }
            self.commit(tx).await?;
        } else if due > now {
            let mut tx = self.begin().await?;
            store::wait_in(&mut tx, self.run(), "Timer", Some(due)).await?;
            self.commit(tx).await?;
            return Err(Stop::Waiting);
        }
        let outputs = json!({});
        self.completed(node, key, &outputs, 0).await?;
        Ok(outputs)
    }

    /// An `approval` or `input`: done when its answer is stored (it may have come first);
    /// otherwise the lease is dropped until the answer wakes the run.
    async fn decision(
        &mut self,
        node: &Node,
        key: &str,
        prefix: &str,
        in_flight: bool,
    ) -> Result<Value, Stop> {
        let decision_key = format!("{prefix}{}", node.id);
        let mut tx = self.begin().await?;
        // Read under the run's row lock: an answer is either seen here or, if it comes after,
        // finds the run waiting and wakes it (POST /run/{id}/decision takes the same lock).
        let answer: Option<Value> =
            sqlx::query_scalar("SELECT value FROM run_decisions WHERE run_id = $1 AND key = $2")
                .bind(self.run())
                .bind(&decision_key)
                .fetch_optional(&mut *tx)
                .await?;
        if !in_flight {
            let id = self.deps().ids.next_id();
            let attempt =
                store::start_step_in(&mut tx, id, self.run(), &node.id, key, &json!({})).await?;
            self.started_in(&mut tx, node, key, attempt).await?;
        }
        let Some(answer) = answer else {
            if !in_flight {
                let data = match &node.kind {
                    Kind::Approval { message } => {
                        json!({"key": decision_key, "kind": "approval", "message": message})
                    }
                    Kind::Input { fields } => {
                        json!({"key": decision_key, "kind": "input", "fields": fields})
                    }
                    _ => json!({"key": decision_key}),
                };
                store::event_in(&mut tx, self.run(), "run/decision/requested", data).await?;
            }
            store::wait_in(&mut tx, self.run(), "Decision", None).await?;
            self.commit(tx).await?;
            return Err(Stop::Waiting);
        };
        self.commit(tx).await?;
        let outputs = match &node.kind {
            Kind::Approval { .. } => {
                let approved = answer
                    .get("approved")
                    .and_then(Value::as_bool)
                    .or(answer.as_bool())
                    .unwrap_or(false);
                json!({"approved": approved, "comment": answer.get("comment").cloned().unwrap_or(Value::Null)})
            }
            _ => answer,
        };
        self.completed(node, key, &outputs, 0).await?;
        Ok(outputs)
    }
}
