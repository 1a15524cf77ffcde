//! Messages of a chat: posting (with the bots' jobs), reading, the branch tree, editing,
//! deleting, regenerating an answer. Each write's event is an outbox row of its transaction.
//!
//! This file holds the message's shapes, its columns and `insert_message` (the one statement
//! that writes a message, used by posts and by bot answers); `post.rs` posts and regenerates
//! (each bot answer held and queued with the post), `edit.rs` reads, edits and deletes.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::ids::{ChatId, ChatMessageId, Snowflake, UserId};

pub use crate::domain::MAX_MESSAGE_CHARS;

mod edit;
mod post;

/// A message in a chat (a node of its tree: `parentId` + `versionIndex`).
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatMessage {
    pub id: ChatMessageId,
    pub chat_id: ChatId,
    /// The author (`null` once their account is gone).
    pub user_id: Option<UserId>,
    /// The message this one answers.
    pub parent_id: Option<ChatMessageId>,
    /// Which version of an answer to the same parent (0 first; regenerating adds one).
    pub version_index: i32,
    pub text: String,
    pub language: String,
    /// `Sent`, `Cancelled` or `Failed` (a bot's answer that was stopped or broke off).
    #[schema(example = "Sent")]
    pub status: String,
    #[serde(serialize_with = "crate::domain::rfc3339::utc")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::domain::rfc3339::utc")]
    pub updated_at: DateTime<Utc>,
}

/// One message in the branch structure (`GET /chatMessageTree`).
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TreeNode {
    pub id: ChatMessageId,
    pub parent_id: Option<ChatMessageId>,
    pub version_index: i32,
    pub user_id: Option<UserId>,
    /// `Sent`, `Cancelled` or `Failed`.
    #[schema(example = "Sent")]
    pub status: String,
}

pub(super) const MESSAGE_COLUMNS: &str = "id, chat_id, user_id, parent_id, version_index, text, language, \
                               status, created_at, updated_at";

/// A message from [`MESSAGE_COLUMNS`] starting at column `at`, read by position: by name, each
/// column is a hash look-up, and a page is 21 rows of them (the page GET, issue 13); without
/// sqlx's type check in release builds ([`crate::db::columns`]).
pub(super) fn message_at(
    row: &sqlx::postgres::PgRow,
    at: usize,
) -> Result<ChatMessage, sqlx::Error> {
    use crate::db::columns::at as column;
    use sqlx::{Column, Row};
    debug_assert_eq!(
        row.columns()[at].name(),
        "id",
        "MESSAGE_COLUMNS start at {at}"
    );
    debug_assert_eq!(row.columns()[at + 9].name(), "updated_at");
    Ok(ChatMessage {
        id: column(row, at)?,
        chat_id: column(row, at + 1)?,
        user_id: column(row, at + 2)?,
        parent_id: column(row, at + 3)?,
        version_index: column(row, at + 4)?,
        text: column(row, at + 5)?,
        language: column(row, at + 6)?,
        status: column(row, at + 7)?,
        created_at: crate::db::columns::timestamp_at(row, at + 8)?,
        updated_at: crate::db::columns::timestamp_at(row, at + 9)?,
    })
}

/// Inserts a message. With an idempotency key an existing answer wins: `None` is returned and
/// nothing is written (a retried job).
pub async fn insert_message(
    tx: &mut sqlx::PgConnection,
    ids: &Snowflake,
    chat: ChatId,
    author: Option<UserId>,
    parent: Option<ChatMessageId>,
    text: &str,
    answer: Option<(&str, &str)>,
) -> Result<Option<ChatMessage>, sqlx::Error> {
    let (status, key) = match answer {
        Some((status, key)) => (status, Some(key)),
        None => ("Sent", None),
    };
    // A reply's version is the highest sibling's + 1 (one probe of chat_messages_siblings_idx).
    // Writers replying to the same message take turns (on every node) so two never get the same
    // version; replies to other messages do not wait. Held until the transaction ends. Ids are
    // Snowflakes unique across tables, so a parent's id (or the chat's, for a first message)
    // names the lock.
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(parent.map_or(chat.0, |p| p.0))
        .execute(&mut *tx)
        .await?;
    let next_version = if parent.is_some() {
        "(SELECT COALESCE(max(version_index) + 1, 0) FROM chat_messages
           WHERE chat_id = $2 AND parent_id = $4)"
    } else {
        "(SELECT COALESCE(max(version_index) + 1, 0) FROM chat_messages
           WHERE chat_id = $2 AND parent_id IS NULL)"
    };
    sqlx::query_as(sql!(
        "INSERT INTO chat_messages (id, chat_id, user_id, parent_id, version_index, text, status,
                                    idempotency_key)
         VALUES ($1, $2, $3, $4, {next_version}, $5, $6, $7)
         ON CONFLICT (idempotency_key) DO NOTHING
         RETURNING {MESSAGE_COLUMNS}"
    ))
    .bind(ids.next_id())
    .bind(chat)
    .bind(author)
    .bind(parent)
    .bind(text)
    .bind(status)
    .bind(key)
    .fetch_optional(&mut *tx)
    .await
}
