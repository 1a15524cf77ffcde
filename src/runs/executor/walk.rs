//! The walk of a run's graph and one step's protocol, as I/O: fenced transactions, the step's
//! rows and events, its attempts (timed out, cancellable) and what a finished step writes.
//! Every choice on the way (replay or run, stop or pause, skip, retry or fail, where next) is
//! `decide`'s; this file carries it out. What a step does is in `work.rs`, waits in `waits.rs`,
//! fan-outs in `fanout.rs`, limits in `budget.rs`.
//! Just over 400 lines: the walk and the protocol of one step read together, as one story.

use super::decide::{self, After, AfterAttempt, Entry, Stored};
use super::*;

impl Walk<'_> {
    pub(super) fn deps(&self) -> &RunDeps {
        &self.driver.deps
    }

    pub(super) fn run(&self) -> i64 {
        self.driver.lease.run
    }

    /// A fenced transaction; what a person asked for meanwhile stops the walk here.
    pub(super) async fn begin(&self) -> Result<Transaction<'static, Postgres>, Stop> {
        let mut tx = self.deps().pool.begin().await?;
        let desired = store::fence(&mut tx, self.driver.lease).await?;
        match decide::desired(desired.as_deref()) {
            Some(halt) => Err(halt.into()),
            None => Ok(tx),
        }
    }

    pub(super) async fn commit(&self, tx: Transaction<'static, Postgres>) -> Result<(), Stop> {
        tx.commit().await?;
        if let Some(room) = RoomKey::run(&self.run().to_string()) {
            self.deps().outbox.kick(&room);
        }
        Ok(())
    }

    pub(super) async fn event(&self, event_type: &str, data: Value) -> Result<(), Stop> {
        let mut tx = self.begin().await?;
        store::event_in(&mut tx, self.run(), event_type, data).await?;
        self.commit(tx).await
    }

    /// Before a step: stop, cancel or pause asked for through the actor.
    pub(super) fn boundary(&self) -> Result<(), Stop> {
        let stopped = self.control.stopped();
        match decide::at_boundary(stopped, self.control.pause_requested()) {
            Some(halt) => Err(halt.into()),
            None => Ok(()),
        }
    }

    /// Walks a graph from its start; its outputs.
    pub(super) fn graph<'b>(
        &'b mut self,
        graph: &'b Graph,
        prefix: &'b str,
        context: &'b mut Context,
    ) -> BoxFut<'b, Result<Value, Stop>> {
        self.walk_from(graph, &graph.start, None, prefix, context)
    }

    /// Walks from `start` until the graph ends or the next node is `stop_at` (a parallel
    /// branch stops before its join); the last node's outputs, or the graph's at its end.
    pub(super) fn walk_from<'b>(
        &'b mut self,
        graph: &'b Graph,
        start: &'b str,
        stop_at: Option<&'b str>,
        prefix: &'b str,
        context: &'b mut Context,
    ) -> BoxFut<'b, Result<Value, Stop>> {
        Box::pin(async move {
            let mut current = start.to_owned();
            loop {
                let node = graph
                    .node(&current)
                    .ok_or_else(|| {
                        Halt::failed(&current, "InvalidSnapshot", format!("no node {current:?}"))
                    })?
                    .clone();
                let key = format!("{}:{prefix}{}", self.run(), node.id);
                let existing = self.steps.get(&key).cloned();
                let stored = Stored::of(existing.as_ref().map(|s| s.status.as_str()));
                let outputs = if stored.replays() {
                    let outputs = existing
                        .and_then(|s| s.outputs)
                        .unwrap_or_else(|| json!({}));
                    // A parallel's outputs carry what its branches' nodes produced.
                    if let (Kind::Parallel { .. }, Some(Value::Object(nodes))) =
                        (&node.kind, outputs.get("nodes"))
                    {
                        context.extend_nodes(nodes.clone());
                    }
                    outputs
                } else {
                    match &node.kind {
                        Kind::Parallel { .. } | Kind::Map { .. } => {
                            self.fan_out(graph, &node, &key, prefix, context, stored)
                                .await?
                        }
                        _ => self.step(&node, &key, prefix, context, existing).await?,
                    }
                };
                context.insert_node(node.id.clone(), outputs.clone());
                match decide::after(graph, &node, &outputs, stop_at) {
                    After::Node(next) => current = next,
                    After::Return => return Ok(outputs),
                    After::Outputs => {
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

    /// Runs one node that has no stored result, as `decide::enter` says.
    pub(super) async fn step(
        &mut self,
        node: &Node,
        key: &str,
        prefix: &str,
        context: &Context,
        existing: Option<StepRow>,
    ) -> Result<Value, Stop> {
        self.boundary()?;
        let stored = Stored::of(existing.as_ref().map(|s| s.status.as_str()));
        let hold = self.llm_hold(node, context);
        self.within_limits(key, hold, stored).await?;
        let skip = (node.skip_condition.as_ref()).is_some_and(|c| nodes::holds(c, context));
        match decide::enter(node, stored, skip) {
            Entry::Skip => {
                let mut tx = self.begin().await?;
                let id = self.deps().ids.next_id();
                store::start_step_in(&mut tx, id, self.run(), &node.id, key, &json!({})).await?;
                store::finish_step_in(&mut tx, key, "Skipped", Some(&json!({})), None, 0).await?;
                let data = json!({"stepKey": key, "nodeId": node.id});
                store::event_in(&mut tx, self.run(), "step/skipped", data).await?;
                self.commit(tx).await?;
                Ok(json!({}))
            }
            Entry::Join { begin } => {
                if begin {
                    self.begin_step(node, key, &json!({})).await?;
                }
                let outputs = json!({});
                self.completed(node, key, &outputs, 0).await?;
                Ok(outputs)
            }
            Entry::Wait { duration_ms, until } => {
                let stored_until = existing.as_ref().and_then(|s| s.inputs.as_ref());
                let stored_until = stored_until.and_then(|i| i["until"].as_str());
                let most = self.deps().max_wait_ms;
                let now = chrono::Utc::now();
                let timer = decide::timer(stored, stored_until, until, duration_ms, most, now)
                    .map_err(|message| Halt::failed(key, "WaitTooLong", message))?;
                self.wait(node, key, timer).await
            }
            Entry::Ask { begin } => self.decision(node, key, prefix, context, begin).await,
            Entry::Subroutine {
                begin,
                version_id,
                inputs,
            } => {
                let failed = |reason: &'static str, message: String| {
                    Stop::from(Halt::failed(key, reason, message))
                };
                let Some(child) = self.snapshot.subroutines.get(version_id).cloned() else {
                    let message = format!("no snapshot of routine version {version_id}");
                    return Err(failed("InvalidSnapshot", message));
                };
                let mut rendered = serde_json::Map::new();
                for (name, template) in inputs {
                    let value = match context.render_text(template) {
                        Ok(value) => value,
                        // The called routine's form lets this input be left unfilled.
                        Err(_) if child.optional_inputs.contains(name) => Value::Null,
                        Err(m) => {
                            let message = format!("input {name:?}: {m}");
                            return Err(failed("MissingOutput", message));
                        }
                    };
                    rendered.insert(name.clone(), value);
                }
                // An input given as null is one left unfilled upstream: optional here too.
                let unfilled: Vec<String> = (rendered.iter())
                    .filter(|(_, value)| value.is_null())
                    .map(|(name, _)| name.clone())
                    .collect();
                let inputs = Value::Object(rendered);
                if begin {
                    self.begin_step(node, key, &inputs).await?;
                }
                let optional = child.optional_inputs.iter().cloned().chain(unfilled);
                let mut child_context = Context::new(inputs).with_optional(optional);
                let child_prefix = format!("{prefix}{}/", node.id);
                let outputs = self
                    .graph(&child, &child_prefix, &mut child_context)
                    .await?;
                self.completed(node, key, &outputs, 0).await?;
                Ok(outputs)
            }
            Entry::Halt(halt) => Err(halt.into()),
            Entry::Work(retry) => self.attempts(node, key, context, hold, retry).await,
        }
    }

    /// Attempts of a step's work until one completes, `decide::after_attempt` gives up, or
    /// the run stops.
    async fn attempts(
        &mut self,
        node: &Node,
        key: &str,
        context: &Context,
        hold: i64,
        retry: Retry,
    ) -> Result<Value, Stop> {
        loop {
            // At most `runs.max_concurrent_steps` steps of the run work at once (branches and
            // map items share them); held from the step's start to its stored result.
            let _permit = Arc::clone(&self.permits)
                .acquire_owned()
                .await
                .map_err(|_| Halt::Shutdown)?;
            let rendered = self
                .render_inputs(node, context)
                .map_err(|m| Halt::failed(key, "MissingOutput", m))?;
            let mut tx = self.begin().await?;
            let id = self.deps().ids.next_id();
            let attempt =
                store::start_step_in(&mut tx, id, self.run(), &node.id, key, &rendered).await?;
            if hold > 0 {
                // Reserved with the step's start: concurrent runs of one user cannot overspend.
                // A second hold under the same key (a retry, a takeover) holds nothing more. A
                // run started with an API key spends within the key's limits, as its chat
                // answers do: past them, it pauses until the key's limit is raised.
                match self
                    .deps()
                    .credits
                    .hold_in(&mut tx, self.payer, self.api_key, key, hold)
                    .await
                {
                    Ok(()) => {}
                    Err(crate::credits::CreditError::Database(error)) => return Err(error.into()),
                    Err(crate::credits::CreditError::KeyLimitReached { .. }) => {
                        let reason = crate::errors::Code::ApiKeyCreditLimit.as_str();
                        return Err(Halt::Paused(reason).into());
                    }
                    Err(_) => return Err(Halt::Paused("InsufficientCredits").into()),
                }
            }
            self.started_in(&mut tx, node, key, attempt).await?;
            self.commit(tx).await?;

            let timeout = decide::attempt_timeout(node.timeout_ms, self.deps().step_timeout);
            // Every log line of the step's work carries its key and attempt.
            let span = tracing::info_span!("step", step = %key, attempt);
            let work =
                tracing::Instrument::instrument(self.execute(node, key, attempt, context), span);
            let result = match tokio::time::timeout(timeout, work).await {
                Ok(result) => result,
                Err(_) => Err(decide::timed_out(timeout)),
            };
            let stopped = self.control.stopped();
            match decide::after_attempt(stopped, result, attempt, retry, hold > 0) {
                AfterAttempt::Stop { halt, release_hold } => {
                    if release_hold {
                        let _ = self.deps().credits.release(key).await;
                    }
                    return Err(halt.into());
                }
                AfterAttempt::Complete((outputs, cost)) => {
                    self.completed(node, key, &outputs, cost).await?;
                    return Ok(outputs);
                }
                AfterAttempt::Retry { delay_ms, failure } => {
                    self.event(
                        "step/retrying",
                        json!({"stepKey": key, "attempt": attempt, "delayMs": delay_ms, "error": failure.message}),
                    )
                    .await?;
                    // The retry's backoff (`decide::backoff_ms`) is the wait itself; the run's
                    // cancel token (a stop arriving meanwhile) ends it early.
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(delay_ms)) => {}
                        _ = self.cancel.cancelled() => {}
                    }
                    self.boundary()?;
                }
                AfterAttempt::Fail {
                    failure,
                    release_hold,
                } => {
                    if release_hold {
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
                    let message = format!("{}: {}", node.id, failure.message);
                    return Err(Halt::failed(key, failure.reason, message).into());
                }
            }
        }
    }

    /// Marks a step InProgress with `step/started`, in a transaction of its own.
    pub(super) async fn begin_step(
        &mut self,
        node: &Node,
        key: &str,
        inputs: &Value,
    ) -> Result<(), Stop> {
        let mut tx = self.begin().await?;
        let id = self.deps().ids.next_id();
        let attempt = store::start_step_in(&mut tx, id, self.run(), &node.id, key, inputs).await?;
        self.started_in(&mut tx, node, key, attempt).await?;
        self.commit(tx).await
    }

    /// `step/started` (and, the first time after a takeover, `run/resumed`).
    pub(super) async fn started_in(
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
    pub(super) async fn completed(
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
                .settle_in(&mut tx, self.payer, self.api_key, key, cost, "RunStep", key)
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

    pub(super) fn render_inputs(&self, node: &Node, context: &Context) -> Result<Value, String> {
        let value = serde_json::to_value(&node.kind).unwrap_or(Value::Null);
        context
            .render(&value)
            .map_err(|m| format!("{}: {m}", node.id))
    }
}
