//! What an answer uses, when no provider said: the worst case an answer holds while queued
//! (every prompt byte a token, plus `max_tokens`), and an estimate for an answer that stopped
//! before its provider reported its usage.

use crate::ai::{Prompt, Usage};

/// What a cancelled answer used: the prompt and the text it generated, or nothing when it had
/// not begun (the provider stopped before the first word).
pub(super) fn generated(prompt: &Prompt, text: &str) -> Usage {
    if text.is_empty() {
        return Usage::default();
    }
    estimate(prompt, text)
}

/// The most an answer can use: every byte of its prompt a token (no tokenizer makes tokens
/// shorter than a byte), plus a few tokens of framing per turn, and `max_tokens` of output.
pub fn worst_case_usage(prompt_bytes: i64, turns: i64, max_tokens: u32) -> Usage {
    Usage {
        input_tokens: prompt_bytes + 8 * turns.max(1),
        output_tokens: i64::from(max_tokens),
    }
}

/// Token counts when a provider stopped before reporting them: about four characters a token.
pub(super) fn estimate(prompt: &Prompt, text: &str) -> Usage {
    let input: usize = prompt.turns.iter().map(|(_, t)| t.len()).sum();
    Usage {
        input_tokens: (input / 4) as i64,
        output_tokens: text.len().div_ceil(4) as i64,
    }
}
