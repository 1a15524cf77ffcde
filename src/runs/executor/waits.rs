//! Steps that wait: `wait` (a timer) and `approval` / `input` (a person). Each drops the lease
//! in its own transaction until it is due or answered.

use super::*;

impl Walk<'_> {
    /// A `wait`: done when its time has come; otherwise the lease is dropped until then.
    pub(super) async fn wait(
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
    pub(super) async fn decision(
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
