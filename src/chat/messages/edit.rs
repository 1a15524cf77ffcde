//! Reading a chat's branch tree or one message, editing a message's text and deleting a
//! message; each write's event is an outbox row of its transaction.

use serde_json::json;

use super::{ChatMessage, MESSAGE_COLUMNS, TreeNode};
use crate::chat::{ChatError, ChatService, room};
use crate::domain::MessageText;
use crate::ids::{ChatId, ChatMessageId};

impl ChatService {
    /// The branch structure of a chat: every message's id, parent and version, oldest first
    /// (at most `limit`; the texts come from the message pages).
    pub async fn tree(&self, chat: ChatId, limit: i64) -> Result<Vec<TreeNode>, ChatError> {
        Ok(sqlx::query_as(
            "SELECT id, parent_id, version_index, user_id, status FROM chat_messages
             WHERE chat_id = $1 ORDER BY id LIMIT $2",
        )
        .bind(chat)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn message(&self, id: ChatMessageId) -> Result<ChatMessage, ChatError> {
        sqlx::query_as(sql!(
            "SELECT {MESSAGE_COLUMNS} FROM chat_messages WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(ChatError::MessageNotFound)
    }

    pub async fn edit(
        &self,
        id: ChatMessageId,
        text: MessageText,
    ) -> Result<ChatMessage, ChatError> {
        let mut tx = self.pool.begin().await?;
        let message: ChatMessage = sqlx::query_as(sql!(
            "UPDATE chat_messages SET text = $2 WHERE id = $1 RETURNING {MESSAGE_COLUMNS}"
        ))
        .bind(id)
        .bind(text.as_str())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(ChatError::MessageNotFound)?;
        self.publish_in(
            &mut tx,
            room(message.chat_id),
            "chat/message/updated",
            json!({ "message": &message }),
        )
        .await?;
        tx.commit().await?;
        self.outbox.kick(&room(message.chat_id));
        Ok(message)
    }

    pub async fn remove(&self, message: &ChatMessage) -> Result<(), ChatError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM chat_messages WHERE id = $1")
            .bind(message.id)
            .execute(&mut *tx)
            .await?;
        self.publish_in(
            &mut tx,
            room(message.chat_id),
            "chat/message/removed",
            json!({ "id": message.id, "chatId": message.chat_id }),
        )
        .await?;
        tx.commit().await?;
        self.outbox.kick(&room(message.chat_id));
        Ok(())
    }
}
