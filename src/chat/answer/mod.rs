//! The `llm-completion` job: a bot answers a message in a chat (the chat's job; `crate::ai` only
//! streams from the providers).
//!
//! ```text
//! job (any node) ─▶ already answered? (idempotency key) ─▶ context: the message's branch
//!   ─▶ register for cancellation (requestCancellation reaches every node)
//!   ─▶ bot/status/updated "thinking", waited for until relayed (so no chunk overtakes it or the
//!      message answered) ─▶ AiRegistry::stream ─▶ bot/response/stream {stream}…
//!   ─▶ one transaction: the answer (Sent | Cancelled | Failed, with what was said) + the charge
//!      (ledger key per answer: a retried job charges once)
//!   ─▶ bot/response/stream {end} + chat/message/added, user/credits/updated, status "idle"
//! ```
//!
//! This file holds what an answer is (the job's payload), the bot's settings it reads and the
//! job's services; `job.rs` runs the job, `usage.rs` estimates what an answer uses (its worst
//! case, held while it is queued, and what a stopped answer used).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::PgPool;
use vrooli_actors::Hub;

use super::ChatService;
use crate::ai::AiRegistry;
use crate::credits::Credits;
use crate::ids::{ChatId, ChatMessageId, UserId};

mod job;
mod usage;

pub use usage::worst_case_usage;

/// One bot's answer to one message, asked for by `payer`, paid by `team` when the chat is a
/// team's (else by `payer`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Answer {
    pub chat: ChatId,
    pub bot: UserId,
    pub message: ChatMessageId,
    pub payer: UserId,
    /// The chat's team, whose account pays (absent in answers queued before teams paid).
    #[serde(default)]
    pub team: Option<crate::ids::TeamId>,
    /// The API key the message was posted with: its spending is recorded against its limits.
    #[serde(default)]
    pub api_key: Option<crate::ids::ApiKeyId>,
    /// 0 for the first answer; regenerations count up (each its own answer and charge).
    #[serde(default)]
    pub version: i32,
    /// A regeneration's own id (a fresh Snowflake): its key is unique per attempt, so deleting
    /// an answer and regenerating never reuses the key of one that was answered and charged.
    #[serde(default)]
    pub attempt: Option<i64>,
}

impl Answer {
    /// Whose account pays.
    pub fn paid_by(&self) -> crate::credits::Payer {
        crate::credits::Payer::of(self.payer, self.team)
    }

    /// Names this answer: the stored message's, the charge's, the hold's and the job's unique
    /// keys derive from it.
    pub fn key(&self) -> String {
        if let Some(attempt) = self.attempt {
            format!("llm:{}:{}:r{attempt}", self.message, self.bot)
        } else if self.version == 0 {
            format!("llm:{}:{}", self.message, self.bot)
        } else {
            format!("llm:{}:{}:v{}", self.message, self.bot, self.version)
        }
    }
}

pub struct LlmCompletion {
    pub pool: PgPool,
    pub chats: ChatService,
    pub hub: Hub,
    pub registry: Arc<AiRegistry>,
    pub credits: Credits,
    pub context_messages: i64,
    pub default_max_tokens: u32,
}

/// A bot's `bot_settings` as an answer reads them.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct BotSettings {
    pub model: Option<String>,
    pub persona: Option<String>,
    pub max_tokens: Option<u32>,
}

impl BotSettings {
    pub fn parse(value: Option<Value>) -> Self {
        value
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default()
    }
}
