//! Steps that wait: `wait` (a timer) and `approval` / `input` (a person). Each drops the lease
//! in its own transaction until it is due or answered; when it is due, and what an answer
//! outputs, is `decide`'s (`decide/flow.rs`).

use super::decide::{self, Timer};
use super::*;

impl Walk<'_> {
    /// A `wait`, as `decide::timer` says: begun (with its due time stored), asleep (the lease
    /// dropped until then), or done.
    pub(super) async fn wait(
        &mut self,
        node: &Node,
        key: &str,
        timer: Timer,
    ) -> Result<Value, Stop> {
        match timer {
            Timer::Begin { due, sleep } => {
                let inputs = json!({"until": due.to_rfc3339()});
                let mut tx = self.begin().await?;
                let id = self.deps().ids.next_id();
                let attempt =
                    store::start_step_in(&mut tx, id, self.run(), &node.id, key, &inputs).await?;
                self.started_in(&mut tx, node, key, attempt).await?;
                if sleep {
                    store::wait_in(&mut tx, self.run(), "Timer", Some(due)).await?;
                    store::event_in(
                        &mut tx,
                        self.run(),
                        "run/waiting",
                        json!({"stepKey": key, "until": due.to_rfc3339()}),
                    )
                    .await?;
                    self.commit(tx).await?;
                    return Err(Halt::Waiting.into());
                }
                self.commit(tx).await?;
            }
            Timer::Sleep(due) => {
                let mut tx = self.begin().await?;
                store::wait_in(&mut tx, self.run(), "Timer", Some(due)).await?;
                self.commit(tx).await?;
                return Err(Halt::Waiting.into());
            }
            Timer::Due => {}
        }
        let outputs = json!({});
        self.completed(node, key, &outputs, 0).await?;
        Ok(outputs)
    }

    /// An `approval` or `input`: done when its answer is stored (it may have come first);
    /// otherwise the lease is dropped until the answer wakes the run. Its step's inputs name
    /// the key it waits for (a resume finds the wait again); an approval's message has its
    /// templates filled.
    pub(super) async fn decision(
        &mut self,
        node: &Node,
        key: &str,
        prefix: &str,
        context: &Context,
        begin: bool,
    ) -> Result<Value, Stop> {
        let decision_key = format!("{prefix}{}", node.id);
        let asked = match &node.kind {
            Kind::Approval { message } => {
                let message = context
                    .render_string(message)
                    .map_err(|m| Halt::failed(key, "MissingOutput", format!("{}: {m}", node.id)))?;
                json!({"key": decision_key, "kind": "approval", "message": message})
            }
            Kind::Input { fields } => {
                json!({"key": decision_key, "kind": "input", "fields": fields})
            }
            _ => json!({"key": decision_key}),
        };
        let mut tx = self.begin().await?;
        // Read under the run's row lock: an answer is either seen here or, if it comes after,
        // finds the run waiting and wakes it (POST /run/{id}/decision takes the same lock).
        let answer: Option<Value> =
            sqlx::query_scalar("SELECT value FROM run_decisions WHERE run_id = $1 AND key = $2")
                .bind(self.run())
                .bind(&decision_key)
                .fetch_optional(&mut *tx)
                .await?;
        if begin {
            let id = self.deps().ids.next_id();
            let attempt =
                store::start_step_in(&mut tx, id, self.run(), &node.id, key, &asked).await?;
            self.started_in(&mut tx, node, key, attempt).await?;
        }
        let Some(answer) = answer else {
            if begin {
                store::event_in(&mut tx, self.run(), "run/decision/requested", asked).await?;
            }
            store::wait_in(&mut tx, self.run(), "Decision", None).await?;
            self.commit(tx).await?;
            return Err(Halt::Waiting.into());
        };
        self.commit(tx).await?;
        let outputs = decide::answered(&node.kind, answer);
        self.completed(node, key, &outputs, 0).await?;
        Ok(outputs)
    }
}
