//! A run's answers (`POST /run/{id}/decision`): [`RunService::decide`] stores one under the run's
//! row lock and wakes the run if it waits for it; an answer is taken only for a key the run has.
//!
//! The keys a run's answers take: one per `approval` or `input`
//! node its snapshot can reach, as the executor forms them (`executor/waits.rs`): the node's
//! id, after `<node>/` for each `subroutine` step it sits inside. Parallel branches and map
//! bodies add nothing (waits are refused there at start).
//!
//! ```text
//! snapshot {graph, subroutines} ─▶ approval, input ─▶ <prefix><id>
//!                                ─▶ subroutine s ─▶ its version's graph with <prefix>s/
//! ```

use std::collections::{BTreeSet, HashMap};

use serde::Deserialize;
use serde_json::Value;

use super::start::take_over;
use super::{RunError, RunService};
use crate::ids::UserId;
use crate::routines::graph::{Graph, Kind};

/// How deep the keys are looked for: far past `runs.max_subroutine_depth` (at most 32), and a
/// bound if a stored snapshot called itself.
const MOST_LEVELS: usize = 64;

impl RunService {
    /// Stores an answer for an `input`, `approval` or manual decision (the first one counts),
    /// and wakes the run if it waits for it.
    pub async fn decide(
        &self,
        run: i64,
        user: UserId,
        key: &str,
        value: Value,
    ) -> Result<bool, RunError> {
        self.owned(run, user).await?;
        let mut tx = self.pool.begin().await?;
        // The run's row lock orders this with the executor's check (see executor::decision).
        let (status, waiting, snapshot): (String, Option<String>, Option<Value>) = sqlx::query_as(
            "SELECT status, waiting_for, snapshot FROM runs WHERE id = $1 FOR UPDATE",
        )
        .bind(run)
        .fetch_one(&mut *tx)
        .await?;
        if matches!(status.as_str(), "Completed" | "Failed" | "Cancelled") {
            return Err(RunError::Transition(status, "answered"));
        }
        // An answer nothing of the run asks for would be stored and waited on forever; one for a
        // node the run has not reached yet is kept.
        let keys = decision_keys(snapshot.as_ref().unwrap_or(&Value::Null));
        if !keys.contains(key) {
            return Err(RunError::UnknownDecisionKey {
                key: key.to_owned(),
                keys: keys.into_iter().collect(),
            });
        }
        let stored = sqlx::query(
            "INSERT INTO run_decisions (run_id, key, value, answered_by) VALUES ($1, $2, $3, $4)
             ON CONFLICT (run_id, key) DO NOTHING",
        )
        .bind(run)
        .bind(key)
        .bind(&value)
        .bind(user)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        let wake = waiting.as_deref() == Some("Decision");
        if wake {
            sqlx::query("UPDATE runs SET wake_at = now() WHERE id = $1")
                .bind(run)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        if wake && let Err(error) = take_over(&self.deps, run).await {
            tracing::warn!(run, %error, "woken run not taken over here; the sweeper will");
        }
        Ok(stored)
    }
}

#[derive(serde::Deserialize)]
struct Snapshot {
    graph: Graph,
    #[serde(default)]
    subroutines: HashMap<String, Graph>,
}

/// Every key an answer to the run of `snapshot` may have, sorted; none when it does not parse.
pub(crate) fn decision_keys(snapshot: &Value) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    let Ok(snapshot) = Snapshot::deserialize(snapshot) else {
        return keys;
    };
    let mut todo: Vec<(&Graph, String, usize)> = vec![(&snapshot.graph, String::new(), 0)];
    while let Some((graph, prefix, level)) = todo.pop() {
        for node in &graph.nodes {
            match &node.kind {
                Kind::Approval { .. } | Kind::Input { .. } => {
                    keys.insert(format!("{prefix}{}", node.id));
                }
                Kind::Subroutine { version_id, .. } if level < MOST_LEVELS => {
                    if let Some(child) = snapshot.subroutines.get(version_id) {
                        todo.push((child, format!("{prefix}{}/", node.id), level + 1));
                    }
                }
                _ => {}
            }
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn approvals_and_inputs_give_keys_prefixed_by_the_steps_calling_them() {
        let snapshot = json!({
            "graph": {"start": "ok", "nodes": [
                {"id": "ok", "kind": "approval", "message": "Go?"},
                {"id": "w", "kind": "wait", "durationMs": 1},
                {"id": "call", "kind": "subroutine", "versionId": "7"}]},
            "subroutines": {
                "7": {"start": "name", "nodes": [
                    {"id": "name", "kind": "input", "fields": ["name"]},
                    {"id": "again", "kind": "subroutine", "versionId": "8"}]},
                "8": {"start": "sure", "nodes": [{"id": "sure", "kind": "approval", "message": ""}]}
            }
        });
        let keys: Vec<String> = decision_keys(&snapshot).into_iter().collect();
        assert_eq!(keys, ["call/again/sure", "call/name", "ok"]);
    }

    #[test]
    fn a_snapshot_calling_itself_ends_and_one_that_does_not_parse_has_no_keys() {
        let snapshot = json!({
            "graph": {"start": "s", "nodes": [{"id": "s", "kind": "subroutine", "versionId": "1"}]},
            "subroutines": {"1": {"start": "s", "nodes": [
                {"id": "s", "kind": "subroutine", "versionId": "1"},
                {"id": "a", "kind": "approval", "message": ""}]}}
        });
        let keys = decision_keys(&snapshot);
        assert_eq!(keys.len(), MOST_LEVELS);
        assert!(keys.contains("s/a") && keys.contains("s/s/a"));
        assert!(decision_keys(&json!({"graph": 3})).is_empty());
        assert!(decision_keys(&Value::Null).is_empty());
    }
}
