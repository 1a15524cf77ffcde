//! What a step may spend: the run's usage read before it and checked against its limits
//! (`decide/limits.rs` decides), and an llm step's worst case, which it holds while it runs.

use super::decide::limits::RunUsage;
use super::decide::{self, Stored};
use super::*;

impl Walk<'_> {
    /// The run's limits, before a step that may spend up to `hold` credits (`decide::limits::limits`).
    pub(super) async fn within_limits(
        &self,
        key: &str,
        hold: i64,
        stored: Stored,
    ) -> Result<(), Stop> {
        let (credits, steps, active_ms) = store::usage(&self.deps().pool, self.run()).await?;
        let used = RunUsage {
            credits,
            steps,
            active_ms,
        };
        match decide::limits::limits(key, self.limits, used, hold, stored) {
            Some(halt) => Err(halt.into()),
            None => Ok(()),
        }
    }

    /// The most an llm step can cost (its hold): the prompt's bytes as tokens in, its token
    /// limit out, at the dearest model of its fallback chain.
    pub(super) fn llm_hold(&self, node: &Node, context: &Context) -> i64 {
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
}
