//! Steps that fan out: `parallel` (its branches walked at once until their `join`) and `map`
//! (one node per item, in order). Each branch or item is a walk of its own over the same run —
//! same lease, same fenced writes, same timeline — sharing the run's step permits.
//!
//! ```text
//! parallel ─▶ step InProgress ─▶ join_all(branch walks: start → … → before the join)
//!          ─▶ outputs {nodes: what the branches produced} ─▶ the join ─▶ on
//! map      ─▶ step InProgress ─▶ items (≤ maxItems) ─▶ the body per item (≤ maxConcurrency),
//!             keys <map key>[i] ─▶ outputs {items: [each item's outputs, in order]}
//! ```
//!
//! Branches and map bodies may not wait (wait, approval, input) or call subroutines yet: a
//! wait drops the lease the other branches still write under. `RunService::start` refuses them.

use futures_util::future::join_all;
use serde_json::Map;

use super::decide::{self, Halt, Stored};
use super::*;

impl<'a> Walk<'a> {
    /// A walk for a branch or an item: the run's steps so far, its own cancellation.
    fn branch(&self) -> Walk<'a> {
        Walk {
            driver: self.driver,
            api_key: self.api_key,
            payer: self.payer,
            limits: self.limits,
            snapshot: Arc::clone(&self.snapshot),
            steps: self.steps.clone(),
            control: self.control.clone(),
            cancel: self.cancel.child_token(),
            permits: Arc::clone(&self.permits),
            announced: true,
        }
    }

    pub(super) async fn fan_out(
        &mut self,
        graph: &Graph,
        node: &Node,
        key: &str,
        prefix: &str,
        context: &mut Context,
        stored: Stored,
    ) -> Result<Value, Stop> {
        self.boundary()?;
        let failed =
            |reason: &'static str, message: String| Stop::from(Halt::failed(key, reason, message));
        if stored.begins() {
            self.begin_step(node, key, &json!({})).await?;
        }
        let outputs = match &node.kind {
            Kind::Parallel { branches, join } => {
                let mut walks = Vec::with_capacity(branches.len());
                for start in branches {
                    let mut walk = self.branch();
                    let mut branch_context = context.clone();
                    walks.push(async move {
                        let result = walk
                            .walk_from(graph, start, Some(join), prefix, &mut branch_context)
                            .await;
                        (result, branch_context, walk.steps)
                    });
                }
                let mut produced = Map::new();
                let mut first_stop = None;
                for (result, branch_context, steps) in join_all(walks).await {
                    if let Err(stop) = result {
                        first_stop.get_or_insert(stop);
                    }
                    for (id, outputs) in branch_context.nodes {
                        if !context.nodes.contains_key(&id) {
                            produced.insert(id, outputs);
                        }
                    }
                    self.steps.extend(steps);
                }
                if let Some(stop) = first_stop {
                    return Err(stop);
                }
                context.nodes.extend(produced.clone());
                json!({"nodes": produced})
            }
            Kind::Map {
                items,
                node: body,
                max_concurrency,
                max_items,
            } => {
                let found = context.lookup(items);
                let most = self.deps().map_max_items;
                let (list, at_once) =
                    decide::map_items(key, items, found, *max_items, most, *max_concurrency)?;
                let body = graph
                    .node(body)
                    .ok_or_else(|| failed("InvalidSnapshot", format!("no node {body:?}")))?
                    .clone();
                let at_once = Arc::new(tokio::sync::Semaphore::new(at_once));
                let mut walks = Vec::with_capacity(list.len());
                for (index, item) in list.into_iter().enumerate() {
                    let mut walk = self.branch();
                    let mut item_context = context.clone();
                    item_context.item = Some((item, index));
                    let (at_once, body) = (Arc::clone(&at_once), &body);
                    let item_key = format!("{key}[{index}]");
                    walks.push(async move {
                        let _slot = at_once.acquire_owned().await.map_err(|_| Halt::Shutdown)?;
                        let existing = walk.steps.get(&item_key).cloned();
                        let stored = Stored::of(existing.as_ref().map(|s| s.status.as_str()));
                        let result = if stored.replays_item() {
                            Ok(existing
                                .and_then(|s| s.outputs)
                                .unwrap_or_else(|| json!({})))
                        } else {
                            walk.step(body, &item_key, prefix, &mut item_context, existing)
                                .await
                        };
                        result.map(|outputs| (outputs, walk.steps))
                    });
                }
                let mut outputs = Vec::new();
                let mut first_stop = None;
                for result in join_all(walks).await {
                    match result {
                        Ok((item_outputs, steps)) => {
                            outputs.push(item_outputs);
                            self.steps.extend(steps);
                        }
                        Err(stop) => {
                            first_stop.get_or_insert(stop);
                        }
                    }
                }
                if let Some(stop) = first_stop {
                    return Err(stop);
                }
                json!({"items": outputs})
            }
            _ => return Err(failed("InvalidSnapshot", "not a fan-out node".into())),
        };
        self.completed(node, key, &outputs, 0).await?;
        Ok(outputs)
    }
}
