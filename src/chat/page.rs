//! A page of a chat's messages, the most frequent authenticated read (`GET /chatMessages`):
//! whether the reader may read the chat, the session's confirmation when the middleware left
//! it to this statement (`http::auth::session`), and the page's rows, in one statement and one
//! round trip, on a connection handed from one page read to the next (`db::warm`).
//!
//! ```text
//! (chat, user, session?) ─▶ one statement: access CTE (+ a_live) ⋈ LATERAL newest take+1 rows
//!   ─▶ a_live false: SessionEnded · no row: ChatNotFound (or SessionEnded) · no read: ChatNotFound
//!   ─▶ messages by position (messages::message_at), newest first
//! ```

use super::messages::{ChatMessage, MESSAGE_COLUMNS, message_at};
use super::{ChatError, ChatService};
use crate::ids::{ChatId, ChatMessageId, SessionId, UserId};

impl ChatService {
    /// A page of `chat` for a reader, newest first, `take + 1` rows, if `user` may read it (else
    /// `ChatNotFound`, as `require(…, Need::Read)`): the access check and the page in one
    /// statement, one round trip — this is the most frequent authenticated read. With
    /// `confirm`, the same statement checks that session's row (`SessionEnded` when it was
    /// revoked): the middleware left that look-up to it (`http::auth::session`).
    pub async fn readable_messages(
        &self,
        chat: ChatId,
        user: Option<UserId>,
        take: i64,
        before: Option<ChatMessageId>,
        confirm: Option<SessionId>,
    ) -> Result<Vec<ChatMessage>, ChatError> {
        // `id < COALESCE(…)`, not `$3 IS NULL OR id < $3`: a bound the index on (chat_id, id)
        // starts from, so a page deep in a long chat reads `take + 1` rows, not every newer one.
        // The access columns are worked out once, in a materialized CTE: in the select list of
        // the join their two sub-queries ran once per message row (`loops=21` in EXPLAIN
        // ANALYZE), 42 index probes per page instead of 2. The session's row is one more probe
        // there.
        let query = sqlx::query(sql!(
            "WITH a AS MATERIALIZED (
                SELECT {access}, c.id AS a_chat,
                       $5::BIGINT IS NULL OR EXISTS (
                           SELECT 1 FROM sessions WHERE id = $5 AND revoked_at IS NULL
                       ) AS a_live
                  FROM chats c WHERE c.id = $1
             )
             SELECT a.*, m.* FROM a
             LEFT JOIN LATERAL (
                SELECT {MESSAGE_COLUMNS} FROM chat_messages
                 WHERE chat_id = a.a_chat AND id < COALESCE($3::BIGINT, 9223372036854775807)
                 ORDER BY id DESC LIMIT $4
             ) m ON true",
            access = super::access::ACCESS_COLUMNS
        ))
        .bind(chat)
        .bind(user)
        .bind(before)
        .bind(take + 1)
        .bind(confirm);
        let mut conn = self.warm.acquire().await?;
        let rows = query.fetch_all(&mut *conn).await?;
        conn.keep();
        // The access columns, then `a_chat` and `a_live`, then the message's.
        let live = super::access::ACCESS_COLUMN_COUNT + 1;
        let Some(first) = rows.first() else {
            // No such chat. Rare: only now is a session to confirm looked up on its own, so
            // that a revoked one is told so (and loses its cookie) rather than told 404.
            return Err(match confirm {
                Some(session) if !Box::pin(self.session_live(session)).await? => {
                    ChatError::SessionEnded
                }
                _ => ChatError::ChatNotFound,
            });
        };
        if !crate::db::columns::at::<bool>(first, live)? {
            return Err(ChatError::SessionEnded);
        }
        if !super::access::access_from_row(first, user)?.can_read() {
            return Err(ChatError::ChatNotFound);
        }
        let at = live + 1;
        let mut messages = Vec::with_capacity(rows.len());
        for row in &rows {
            // A chat without messages (in this page) is one row with the message columns null.
            if crate::db::columns::at::<Option<i64>>(row, at)?.is_some() {
                messages.push(message_at(row, at)?);
            }
        }
        // Newest first. The join's rows come in the page's order in practice, but SQL does not
        // promise it: the order is made here rather than by a Sort step in PostgreSQL, whose
        // CPU is the scarcer on a machine both share.
        messages.sort_unstable_by_key(|m| std::cmp::Reverse(m.id));
        Ok(messages)
    }

    /// Whether `session` has not been revoked.
    async fn session_live(&self, session: SessionId) -> Result<bool, sqlx::Error> {
        sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM sessions WHERE id = $1 AND revoked_at IS NULL)",
        )
        .bind(session)
        .fetch_one(&self.pool)
        .await
    }
}
