//! The walk of a run's graph: fenced transactions, the checks before a step, one step's
//! protocol (start, execute with retries, store), and what a finished step writes.
//!
//! Long on purpose (~420 lines): the walk and one step's protocol (start, execute, retry, store)
//! read best together; what a step does is in `work.rs`, waits in `waits.rs`.

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
        match store::fence(&mut tx, self.driver.lease).await? {
            Some(desired) if desired == "Cancelled" => Err(Stop::Cancelled),
            Some(desired) if desired == "Paused" => Err(Stop::Paused("Requested")),
            _ => Ok(tx),
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
        self.halted()?;
        if self.control.pause_requested() {
            return Err(Stop::Paused("Requested"));
        }
        Ok(())
    }

    /// After a step's work: only a stop counts (a pause waits until its result is stored).
    pub(super) fn halted(&self) -> Result<(), Stop> {
        match self.control.stopped() {
            Some(StopReason::Cancelled) => Err(Stop::Cancelled),
            Some(StopReason::Fenced) => Err(Stop::Fenced),
            Some(StopReason::Shutdown) => Err(Stop::Shutdown),
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
                    .ok_or_else(|| Stop::Failed {
                        step: current.clone(),
                        reason: "InvalidSnapshot",
                        message: format!("no node {current:?}"),
                    })?
                    .clone();
                let key = format!("{}:{prefix}{}", self.run(), node.id);
                let outputs = match self.steps.get(&key) {
                    Some(step) if step.status == "Completed" || step.status == "Skipped" => {
                        let outputs = step.outputs.clone().unwrap_or_else(|| json!({}));
                        // A parallel's outputs carry what its branches' nodes produced.
                        if let (Kind::Parallel { .. }, Some(Value::Object(nodes))) =
                            (&node.kind, outputs.get("nodes"))
                        {
                            context.nodes.extend(nodes.clone());
                        }
                        outputs
                    }
                    existing => {
                        let existing = existing.cloned();
                        match &node.kind {
                            Kind::Parallel { .. } | Kind::Map { .. } => {
                                self.fan_out(graph, &node, &key, prefix, context, existing)
                                    .await?
                            }
                            _ => self.step(&node, &key, prefix, context, existing).await?,
                        }
                    }
                };
                context.nodes.insert(node.id.clone(), outputs.clone());
                let next = match &node.kind {
                    Kind::Decision { .. } => outputs["branch"].as_str().map(str::to_owned),
                    Kind::Parallel { join, .. } => Some(join.clone()),
                    _ => graph.next_of(&node.id).first().map(|s| (*s).to_owned()),
                };
                match next {
                    Some(next) if Some(next.as_str()) == stop_at => return Ok(outputs),
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
    pub(super) async fn step(
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
            Kind::Join { .. } => {
                // The branches are done (the parallel waited for them): nothing to do.
                if !in_flight {
                    let mut tx = self.begin().await?;
                    let id = self.deps().ids.next_id();
                    let attempt =
                        store::start_step_in(&mut tx, id, self.run(), &node.id, key, &json!({}))
                            .await?;
                    self.started_in(&mut tx, node, key, attempt).await?;
                    self.commit(tx).await?;
                }
                let outputs = json!({});
                self.completed(node, key, &outputs, 0).await?;
                return Ok(outputs);
            }
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
            Kind::Action { tool, input, .. }
                if in_flight && crate::routines::graph::action_writes(tool, input.as_ref()) =>
            {
                // A tool that writes may have done so before the owner died: as above.
                return Err(Stop::Paused("UncertainStep"));
            }
            _ => {}
        }
        let retry = node.retry.unwrap_or(Retry {
            max_attempts: 1,
            backoff_ms: 0,
        });
        loop {
            // At most `runs.max_concurrent_steps` steps of the run work at once (branches and
            // map items share them); held from the step's start to its stored result.
            let _permit = Arc::clone(&self.permits)
                .acquire_owned()
                .await
                .map_err(|_| Stop::Shutdown)?;
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
                    .hold_in(&mut tx, self.payer, None, key, hold)
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
            let result = match tokio::time::timeout(
                timeout,
                // Every log line of the step's work carries its key and attempt.
                tracing::Instrument::instrument(
                    self.execute(node, key, attempt, context),
                    tracing::info_span!("step", step = %key, attempt),
                ),
            )
            .await
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
                        _ = self.cancel.cancelled() => {}
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
                .settle_in(&mut tx, self.payer, None, key, cost, "RunStep", key)
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
