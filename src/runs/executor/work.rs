//! The work of an `http`, `llm`, `decision`, `code` or `action` step, given the run's context.

use super::*;

impl Walk<'_> {
    /// Executes an `http`, `llm`, `decision`, `code` or `action` node; its outputs and cost.
    pub(super) async fn execute(
        &self,
        node: &Node,
        key: &str,
        attempt: i32,
        context: &Context,
    ) -> Result<(Value, i64), StepFailure> {
        let missing = |m: crate::runs::context::Missing| {
            StepFailure::permanent("MissingOutput", m.to_string())
        };
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
                    &self.cancel,
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
            Kind::Code {
                code,
                input,
                outputs,
            } => {
                let input = input
                    .as_ref()
                    .map(|i| context.render(i))
                    .transpose()
                    .map_err(missing)?
                    .unwrap_or(Value::Null);
                // A job of the `sandbox-execution` queue runs it, on any node (`runs/code.rs`).
                let payload = crate::runs::code::SandboxPayload {
                    run_id: self.run().to_string(),
                    step_key: key.to_owned(),
                    attempt,
                    code: code.clone(),
                    input,
                    timeout_ms: node.timeout_ms,
                };
                let deps = self.deps();
                let outcome = deps
                    .code
                    .run(&deps.pool, &deps.jobs, payload, &self.cancel)
                    .await
                    .map_err(|e| StepFailure::retryable("SandboxUnavailable", e.to_string()))?
                    .ok_or_else(|| StepFailure::permanent("Cancelled", "stopped"))?;
                Ok((nodes::code_outputs(outcome, outputs)?, 0))
            }
            Kind::Action {
                tool,
                input,
                outputs,
            } => {
                let arguments = input
                    .as_ref()
                    .map(|i| context.render(i))
                    .transpose()
                    .map_err(missing)?
                    .unwrap_or_else(|| json!({}));
                let Some(actions) = self.deps().actions.get() else {
                    return Err(StepFailure::retryable(
                        "ActionUnavailable",
                        "the tools are not ready on this node yet",
                    ));
                };
                // Who the run acts for, read now: a key narrowed or disabled meanwhile binds it.
                let scope = crate::runs::scope::scope_of(&self.deps().pool, self.run())
                    .await
                    .map_err(|e| StepFailure::retryable("ActionUnavailable", e.to_string()))?
                    .ok_or_else(|| {
                        StepFailure::permanent("InvalidSnapshot", "the run has no owner")
                    })?;
                let call = actions.call(scope, tool, arguments);
                let result = tokio::select! {
                    result = call => result,
                    _ = self.cancel.cancelled() => {
                        return Err(StepFailure::permanent("Cancelled", "stopped"));
                    }
                };
                let result =
                    result.map_err(|(code, message)| StepFailure::permanent(code, message))?;
                Ok((nodes::result_outputs(result, outputs)?, 0))
            }
            other => Err(StepFailure::permanent(
                "NodeKindUnavailable",
                format!("{} steps cannot run yet", other.name()),
            )),
        }
    }

    pub(super) async fn llm(
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
        let (tx, rx) = mpsc::channel::<String>(64);
        let room = RoomKey::run(&self.run().to_string());
        let hub = deps.hub.clone();
        let outbox = deps.outbox.clone();
        let stream_key = key.to_owned();
        let run = self.run();
        // Chunks go to the room as they come, the first after the step's committed events
        // (volatile: a client that misses them gets the whole answer with step/completed).
        // After the first, chunks go out at most once per `ai.stream_interval_ms`, with all
        // that arrived meanwhile: one Redis round trip for all of them.
        let mut chunks = deps.ai.chunks(rx);
        let forward = async move {
            let mut answer = String::new();
            let mut n = 0u64;
            while let Some(chunk) = chunks.next().await {
                answer.push_str(&chunk);
                if let Some(room) = &room {
                    if n == 0 {
                        // Chunks skip the outbox; the step's `step/started` may still be in
                        // it. The provider goes on meanwhile (its chunks wait in the channel).
                        outbox.wait_relayed(room).await;
                    }
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
        let (completion, answer) =
            tokio::join!(deps.ai.stream(&model, &prompt, tx, &self.cancel), forward);
        let completion = completion.map_err(|e| match e {
            crate::ai::AiError::UnknownModel(m) => StepFailure::permanent("UnknownModel", m),
            crate::ai::AiError::Cancelled { .. } => StepFailure::permanent("Cancelled", "stopped"),
            other => StepFailure::retryable("ModelError", other.to_string()),
        })?;
        let outputs = nodes::llm_outputs(&answer, declared)?;
        Ok((outputs, completion.model.cost(completion.usage)))
    }
}
