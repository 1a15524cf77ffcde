//! A chat's participants: listing them, joining with an invite secret, leaving or being removed
//! (which re-checks who may stay in the chat's room), unread flags. Every change publishes
//! `chat/participants/changed`.

use serde_json::json;

use super::{ChatError, ChatService, Participant, room};
use crate::ids::{ChatId, UserId};

impl ChatService {
    pub async fn participants(&self, chat: ChatId) -> Result<Vec<Participant>, ChatError> {
        Ok(sqlx::query_as(
            "SELECT u.id AS user_id, u.name, u.handle, u.is_bot, p.has_unread
             FROM chat_participants p JOIN users u ON u.id = p.user_id
             WHERE p.chat_id = $1 ORDER BY p.id",
        )
        .bind(chat)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Publishes the chat's participants after a change.
    pub(crate) async fn participants_changed(&self, chat: ChatId) -> Result<(), ChatError> {
        let participants = self.participants(chat).await?;
        self.publish(
            room(chat),
            "chat/participants/changed",
            json!({ "chatId": chat, "participants": participants }),
        )
        .await;
        Ok(())
    }

    /// The chat's invite secret, for its managers to share (`None` unless open to anyone with
    /// an invite).
    pub async fn invite_secret(&self, chat: ChatId) -> Result<Option<String>, ChatError> {
        Ok(
            sqlx::query_scalar("SELECT invite_secret FROM chats WHERE id = $1")
                .bind(chat)
                .fetch_optional(&self.pool)
                .await?
                .flatten(),
        )
    }

    /// Joins a chat open to anyone with an invite, with its invite secret: the caller becomes a
    /// participant. `ChatNotFound` for a wrong secret or a chat that is not open (the same
    /// answer as for a chat that does not exist).
    pub async fn join_with_secret(
        &self,
        chat: ChatId,
        user: UserId,
        secret: &str,
    ) -> Result<(), ChatError> {
        let open: Option<String> = sqlx::query_scalar(
            "SELECT invite_secret FROM chats WHERE id = $1 AND open_to_anyone_with_invite",
        )
        .bind(chat)
        .fetch_optional(&self.pool)
        .await?
        .flatten();
        let matches = open.is_some_and(|expected| {
            expected.len() == secret.len()
                && expected
                    .bytes()
                    .zip(secret.bytes())
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                    == 0
        });
        if !matches {
            return Err(ChatError::ChatNotFound);
        }
        let added = sqlx::query(
            "INSERT INTO chat_participants (id, chat_id, user_id) VALUES ($1, $2, $3)
             ON CONFLICT (chat_id, user_id) DO NOTHING",
        )
        .bind(self.ids.next_id())
        .bind(chat)
        .bind(user)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if added > 0 {
            self.participants_changed(chat).await?;
        }
        Ok(())
    }

    /// Leaves a chat (or removes someone from it); publishes `chat/participants/changed`.
    pub async fn remove_participant(&self, chat: ChatId, user: UserId) -> Result<bool, ChatError> {
        let removed =
            sqlx::query("DELETE FROM chat_participants WHERE chat_id = $1 AND user_id = $2")
                .bind(chat)
                .bind(user)
                .execute(&self.pool)
                .await?
                .rows_affected()
                > 0;
        if removed {
            self.recheck(chat).await;
            self.participants_changed(chat).await?;
        }
        Ok(removed)
    }

    /// Marks the chat read (or unread) for one participant.
    pub async fn set_unread(
        &self,
        chat: ChatId,
        user: UserId,
        unread: bool,
    ) -> Result<bool, ChatError> {
        Ok(sqlx::query(
            "UPDATE chat_participants SET has_unread = $3 WHERE chat_id = $1 AND user_id = $2",
        )
        .bind(chat)
        .bind(user)
        .bind(unread)
        .execute(&self.pool)
        .await?
        .rows_affected()
            > 0)
    }
}
