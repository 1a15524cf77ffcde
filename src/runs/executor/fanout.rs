//! Steps that fan out: `parallel` (its branches walked at once until their `join`) and `map`
//! (one node per item, in order). Each branch or item is a walk of its own over the same run —
//! same lease, same fenced writes, same timeline — sharing the run's step permits.
//!
//! ```text
//! parallel ─▶ step InProgress ─▶ join_all(branch walks: start → … → before the join)
//!          ─▶ outputs {nodes: what the branches produced} ─▶ the join ─▶ on
//! map      ─▶ step InProgress ─▶ items (≤ maxItems, never above runs.map_max_items)
//!             ─▶ the body per item, each item's walk made as it starts (≤ maxConcurrency,
//!             ≤ runs.max_concurrent_steps), keys <map key>[i]
//!             ─▶ outputs {items: [each item's outputs, in order]}
//! ```
//!
//! Branches and map bodies may not wait (wait, approval, input) or call subroutines yet: a
//! wait drops the lease the other branches still write under. `RunService::start` refuses them.

use futures_util::future::join_all;
use futures_util::stream::{self, StreamExt};
use serde_json::Map;

use super::decide::{self, Halt, Stored};
use super::*;

impl<'a> Walk<'a> {
    /// A walk for a branch: the run's steps so far, its own cancellation.
    fn branch(&self) -> Walk<'a> {
        self.walk_with(self.steps.clone())
    }

    /// A walk for one map item: its body is one step, which reads no other step's row, so
    /// the run's steps are not copied into it.
    fn item_walk(&self) -> Walk<'a> {
        self.walk_with(HashMap::new())
    }

    fn walk_with(&self, steps: HashMap<String, StepRow>) -> Walk<'a> {
        Walk {
            driver: self.driver,
            api_key: self.api_key,
            payer: self.payer,
            limits: self.limits,
            snapshot: Arc::clone(&self.snapshot),
            steps,
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
                    for (id, outputs) in branch_context.nodes.iter() {
                        if !context.nodes.contains_key(id) {
                            produced.insert(id.clone(), outputs.clone());
                        }
                    }
                    self.steps.extend(steps);
                }
                if let Some(stop) = first_stop {
                    return Err(stop);
                }
                context.extend_nodes(produced.clone());
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
                // Never more items in flight than steps may work at once: each holds its walk.
                let at_once = at_once.min(self.deps().max_concurrent_steps.max(1));
                let body = graph
                    .node(body)
                    .ok_or_else(|| failed("InvalidSnapshot", format!("no node {body:?}")))?
                    .clone();
                // Each item's walk and context are made as it starts (`buffered` pulls the next
                // one when a slot is free), its context sharing the run's: a long list costs its
                // items, not a copy of the run per item. Results come back in the items' order.
                let (this, base, body) = (&*self, &*context, &body);
                let mut walks = stream::iter(list.into_iter().enumerate())
                    .map(|(index, item)| {
                        let mut walk = this.item_walk();
                        let item_context = base.with_item(item, index);
                        let item_key = format!("{key}[{index}]");
                        let existing = this.steps.get(&item_key).cloned();
                        async move {
                            let stored = Stored::of(existing.as_ref().map(|s| s.status.as_str()));
                            let outputs = if stored.replays_item() {
                                existing
                                    .and_then(|s| s.outputs)
                                    .unwrap_or_else(|| json!({}))
                            } else {
                                walk.step(body, &item_key, prefix, &item_context, existing)
                                    .await?
                            };
                            Ok::<_, Stop>((outputs, walk.steps))
                        }
                    })
                    .buffered(at_once);
                let mut outputs = Vec::new();
                let mut done = HashMap::new();
                let mut first_stop = None;
                while let Some(result) = walks.next().await {
                    match result {
                        Ok((item_outputs, steps)) => {
                            outputs.push(item_outputs);
                            done.extend(steps);
                        }
                        Err(stop) => {
                            first_stop.get_or_insert(stop);
                        }
                    }
                }
                drop(walks);
                self.steps.extend(done);
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
