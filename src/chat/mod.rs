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

/// SQL built from the column lists below (constants, no input): safe to format.
macro_rules! sql {
    ($($t:tt)*) => { sqlx::AssertSqlSafe(format!($($t)*)) };
}

pub mod access;
pub mod answer;
pub mod invites;
pub mod messages;
mod page;
mod participants;
mod row;

pub use messages::{MAX_MESSAGE_CHARS, TreeNode};
pub use row::{ChatMessage, insert_message};

use crate::errors::{Code, ErrorCode, Told};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgPool;
use vrooli_actors::{Hub, NewEvent, RoomKey};

use crate::ids::{ChatId, PublicId, Snowflake, UserId};
use crate::jobs::JobStore;

/// A chat as its readers see it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Chat {
    pub id: ChatId,
    /// The 12-character id for shareable links.
    pub public_id: String,
    pub creator_id: Option<UserId>,
    pub team_id: Option<crate::ids::TeamId>,
    pub name: String,
    pub is_private: bool,
    pub open_to_anyone_with_invite: bool,
    #[serde(serialize_with = "crate::domain::rfc3339::utc")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::domain::rfc3339::utc")]
    pub updated_at: DateTime<Utc>,
}

/// A user taking part in a chat.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Participant {
    pub user_id: UserId,
    pub name: String,
    pub handle: Option<String>,
    pub is_bot: bool,
    /// Messages arrived since this participant last read the chat.
    pub has_unread: bool,
}

const CHAT_COLUMNS: &str = "id, public_id, creator_id, team_id, name, is_private, open_to_anyone_with_invite, created_at, updated_at";

#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error("no such chat")]
    ChatNotFound,
    #[error("no such message")]
    MessageNotFound,
    #[error("not allowed")]
    Forbidden,
    #[error("the parent message is not in this chat")]
    BadParent,
    #[error("only bots can be added directly; people are invited")]
    NotABot,
    #[error("not a member of that team")]
    NotATeamMember,
    #[error("insufficient credits")]
    InsufficientCredits { balance: i64, needed: i64 },
    #[error("the API key reached its credit limit")]
    KeyLimitReached { used: i64, limit: i64 },
    /// The session a read was asked to confirm ([`ChatService::readable_messages`]) was revoked.
    #[error("the session was signed out")]
    SessionEnded,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl ErrorCode for ChatError {
    fn told(&self) -> Told {
        match self {
            ChatError::ChatNotFound => Told::of(Code::ChatNotFound, "No such chat"),
            ChatError::MessageNotFound => Told::of(Code::MessageNotFound, "No such message"),
            ChatError::Forbidden => Told::of(Code::NotAllowed, "You may not do this in this chat"),
            ChatError::BadParent => Told::of(
                Code::InvalidParent,
                "The parent message is not in this chat",
            ),
            ChatError::NotABot => Told::of(
                Code::NotABot,
                "Only bots can be added directly; invite people instead",
            ),
            ChatError::InsufficientCredits { balance, needed } => Told::of(
                Code::InsufficientCredits,
                format!("A bot's answer needs at least {needed} credits; the balance is {balance}"),
            ),
            ChatError::NotATeamMember => Told::of(
                Code::NotATeamMember,
                "Only admins of a team and members allowed CreateChats make its chats",
            ),
            ChatError::KeyLimitReached { used, limit } => Told::of(
                Code::ApiKeyCreditLimit,
                format!("This API key has spent {used} of its {limit} credits"),
            ),
            ChatError::SessionEnded => Told::of(Code::SessionRevoked, "the session was signed out"),
            ChatError::Database(e) => e.told(),
        }
    }
}

impl From<crate::credits::CreditError> for ChatError {
    fn from(error: crate::credits::CreditError) -> Self {
        use crate::credits::CreditError;
        match error {
            CreditError::Insufficient { balance, needed } => {
                ChatError::InsufficientCredits { balance, needed }
            }
            CreditError::KeyLimitReached { used, limit } => {
                ChatError::KeyLimitReached { used, limit }
            }
            CreditError::UnknownKey => ChatError::Forbidden,
            CreditError::Database(error) => ChatError::Database(error),
        }
    }
}

/// What a new chat looks like.
pub struct NewChat {
    pub name: String,
    /// A team chat: the team's members may read and write it.
    pub team: Option<i64>,
    pub is_private: bool,
    pub open_to_anyone_with_invite: bool,
    pub bots: Vec<UserId>,
}

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

    pub async fn create(&self, creator: UserId, new: NewChat) -> Result<Chat, ChatError> {
        let mut tx = self.pool.begin().await?;
        let bots: Vec<UserId> =
            sqlx::query_scalar("SELECT id FROM users WHERE id = ANY($1) AND is_bot")
                .bind(new.bots.iter().map(|b| b.0).collect::<Vec<_>>())
                .fetch_all(&mut *tx)
                .await?;
        if bots.len() != new.bots.len() {
            return Err(ChatError::NotABot);
        }
        if let Some(team) = new.team {
            // Team chats are made by admins and members holding `CreateChats`.
            let member: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM members WHERE team_id = $1 AND user_id = $2
                                   AND (is_admin OR permissions ? 'CreateChats'))",
            )
            .bind(team)
            .bind(creator)
            .fetch_one(&mut *tx)
            .await?;
            if !member {
                return Err(ChatError::NotATeamMember);
            }
        }
        let id = ChatId(self.ids.next_id());
        let chat: Chat = sqlx::query_as(sql!(
            "INSERT INTO chats (id, public_id, creator_id, name, is_private, open_to_anyone_with_invite,
                                team_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {CHAT_COLUMNS}"
        ))
        .bind(id)
        .bind(PublicId::generate().as_str())
        .bind(creator)
        .bind(&new.name)
        .bind(new.is_private)
        .bind(new.open_to_anyone_with_invite)
        .bind(new.team)
        .fetch_one(&mut *tx)
        .await?;
        if new.open_to_anyone_with_invite {
            sqlx::query("UPDATE chats SET invite_secret = $2 WHERE id = $1")
                .bind(id)
                .bind(crate::domain::secret::new_code())
                .execute(&mut *tx)
                .await?;
        }
        for user in std::iter::once(creator).chain(bots) {
            sqlx::query(
                "INSERT INTO chat_participants (id, chat_id, user_id) VALUES ($1, $2, $3)
                 ON CONFLICT (chat_id, user_id) DO NOTHING",
            )
            .bind(self.ids.next_id())
            .bind(id)
            .bind(user)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(chat)
    }

    pub async fn get(&self, chat: ChatId) -> Result<Chat, ChatError> {
        sqlx::query_as(sql!("SELECT {CHAT_COLUMNS} FROM chats WHERE id = $1"))
            .bind(chat)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(ChatError::ChatNotFound)
    }

    /// The caller's chats, newest first; `take + 1` rows so the caller can tell if more exist.
    pub async fn list_mine(
        &self,
        user: UserId,
        take: i64,
        before: Option<ChatId>,
    ) -> Result<Vec<Chat>, ChatError> {
        Ok(sqlx::query_as(sql!(
            "SELECT {} FROM chats c JOIN chat_participants p ON p.chat_id = c.id
             WHERE p.user_id = $1 AND ($2::BIGINT IS NULL OR c.id < $2)
             ORDER BY c.id DESC LIMIT $3",
            CHAT_COLUMNS
                .split(", ")
                .map(|c| format!("c.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .bind(user)
        .bind(before)
        .bind(take + 1)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn update(
        &self,
        chat: ChatId,
        name: Option<String>,
        is_private: Option<bool>,
        open: Option<bool>,
    ) -> Result<Chat, ChatError> {
        let updated: Chat = sqlx::query_as(sql!(
            "UPDATE chats SET name = COALESCE($2, name), is_private = COALESCE($3, is_private),
                    open_to_anyone_with_invite = COALESCE($4, open_to_anyone_with_invite)
             WHERE id = $1 RETURNING {CHAT_COLUMNS}"
        ))
        .bind(chat)
        .bind(name)
        .bind(is_private)
        .bind(open)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(ChatError::ChatNotFound)?;
        // Opening gives the chat an invite secret (kept if it has one); closing drops it, so
        // links already shared stop working.
        sqlx::query(
            "UPDATE chats SET invite_secret = CASE WHEN open_to_anyone_with_invite
                                                   THEN COALESCE(invite_secret, $2) END
              WHERE id = $1",
        )
        .bind(chat)
        .bind(crate::domain::secret::new_code())
        .execute(&self.pool)
        .await?;
        if is_private.is_some() || open.is_some() {
            self.recheck(chat).await;
        }
        Ok(updated)
    }

    /// Who may be in the chat's room changed: every connection in it, on every node, checks
    /// again and leaves if it may no longer read the chat.
    async fn recheck(&self, chat: ChatId) {
        if let Err(error) = self.hub.recheck_room(&room(chat)).await {
            // The hub handled this node's own copy itself; other nodes miss this signal while
            // the broker is down (REST refuses the removed caller regardless).
            tracing::warn!(%error, chat = %chat, "could not ask other nodes to recheck a room");
        }
    }

    pub async fn delete(&self, chat: ChatId) -> Result<(), ChatError> {
        let deleted = sqlx::query("DELETE FROM chats WHERE id = $1")
            .bind(chat)
            .execute(&self.pool)
            .await?
            .rows_affected();
        if deleted == 0 {
            return Err(ChatError::ChatNotFound);
        }
        self.recheck(chat).await;
        Ok(())
    }
}

/// The chat room of a chat.
pub fn chat_room(chat: ChatId) -> RoomKey {
    room(chat)
}
