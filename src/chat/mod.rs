//! Chats and their messages.
//!
//! ```text
//! handler (http/chat/) ─▶ ChatService: access check (access.rs) ─▶ one transaction:
//!     message row + unread flags + an llm-completion job per bot participant
//!     + the chat/message/added event (an outbox row)
//!   ─▶ commit ─▶ outbox relay ─▶ hub.publish ─▶ every node with members in chat:<id>
//! ```
//!
//! Events are rows of the write's transaction (`crate::outbox`): a client never sees a message
//! that a rollback could still take back, never misses one whose node died after the commit,
//! and the job (in the same transaction) can never run for a message that does not exist.
//!
//! This file holds the service's state, the rooms and the event helpers every write uses, and
//! the access check; `chats.rs` creates, reads, changes and deletes chats, `errors.rs` holds
//! `ChatError`, and each sibling module one part of a chat (messages, answers, invites, …).

/// SQL built from the column lists below (constants, no input): safe to format.
macro_rules! sql {
    ($($t:tt)*) => { sqlx::AssertSqlSafe(format!($($t)*)) };
}

pub mod access;
pub mod answer;
mod chats;
mod errors;
pub mod invites;
pub mod messages;
mod page;
mod participants;

pub use chats::{Chat, NewChat, Participant};
pub use errors::ChatError;
pub use messages::{ChatMessage, MAX_MESSAGE_CHARS, TreeNode, insert_message};

use chrono::Utc;
use serde_json::Value;
use sqlx::PgPool;
use vrooli_actors::{Hub, NewEvent, RoomKey};

use crate::ids::{ChatId, Snowflake, UserId};
use crate::jobs::JobStore;

#[derive(Clone)]
pub struct ChatService {
    pub pool: PgPool,
    /// For the page of messages: a connection handed on without sqlx's release ping.
    pub warm: std::sync::Arc<crate::db::warm::Warm>,
    pub ids: std::sync::Arc<Snowflake>,
    pub jobs: JobStore,
    pub hub: Hub,
    pub credits: crate::credits::Credits,
    /// Where the events of writes go (published after their commit).
    pub outbox: crate::outbox::Outbox,
    /// Prices, for the worst case an answer holds while it is queued.
    pub ai: std::sync::Arc<crate::ai::AiRegistry>,
    pub context_messages: i64,
    pub default_max_tokens: u32,
}

fn room(chat: ChatId) -> RoomKey {
    RoomKey::chat(&chat.to_string()).expect("a numeric id is a valid room id")
}

impl ChatService {
    /// A new event with a fresh id (the id the broker deduplicates on).
    pub fn event(&self, room: RoomKey, event_type: &str, data: Value) -> NewEvent {
        NewEvent {
            id: self.ids.next_id().to_string(),
            event_type: event_type.to_owned(),
            timestamp_ms: Utc::now().timestamp_millis(),
            room,
            data,
        }
    }

    /// Publishes an event not tied to a transaction of its own, through the outbox: in order
    /// with the room's other events, once, retried while the broker is away.
    pub async fn publish(&self, room: RoomKey, event_type: &str, data: Value) {
        self.outbox
            .publish(self.event(room, event_type, data))
            .await;
    }

    /// [`ChatService::publish`], returning once the event (and so every event of the room
    /// committed before it) has been relayed, or after `ws.outbox_order_wait_ms`: for an event
    /// that volatile ones will follow.
    pub async fn publish_then_wait(&self, room: RoomKey, event_type: &str, data: Value) {
        self.outbox
            .publish_then_wait(self.event(room, event_type, data))
            .await;
    }

    /// Adds an event to `tx` (published after the commit; call `outbox.kick` then).
    pub async fn publish_in(
        &self,
        tx: &mut sqlx::PgConnection,
        room: RoomKey,
        event_type: &str,
        data: Value,
    ) -> Result<(), sqlx::Error> {
        crate::outbox::Outbox::add_in(tx, &self.event(room, event_type, data)).await
    }

    /// Sends an event that may be lost (a streamed chunk): no outbox, no offset, no history.
    pub async fn publish_volatile(&self, room: RoomKey, event_type: &str, data: Value) {
        let event = self.event(room, event_type, data);
        if let Err(error) = self.hub.publish_volatile(&event).await {
            tracing::debug!(%error, room = %event.room, "volatile event dropped");
        }
    }

    pub async fn access(
        &self,
        chat: ChatId,
        user: Option<UserId>,
    ) -> Result<access::ChatAccess, ChatError> {
        access::chat_access(&self.pool, chat, user)
            .await?
            .ok_or(ChatError::ChatNotFound)
    }

    /// Checks that `user` may do `need` with `chat`. A caller who may not even read the chat is
    /// told it does not exist (private chats are not revealed); one who may read it but not do
    /// this is told it is not allowed.
    pub async fn require(
        &self,
        chat: ChatId,
        user: Option<UserId>,
        need: access::Need,
    ) -> Result<access::ChatAccess, ChatError> {
        let access = self.access(chat, user).await?;
        if access.allows(need) {
            Ok(access)
        } else if access.can_read() {
            Err(ChatError::Forbidden)
        } else {
            Err(ChatError::ChatNotFound)
        }
    }
}

/// The chat room of a chat.
pub fn chat_room(chat: ChatId) -> RoomKey {
    room(chat)
}
