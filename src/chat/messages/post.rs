//! Posting a message (the row, the others' unread flags and one held, queued answer per bot, in
//! one transaction) and regenerating a bot's answer; both check the payer can pay first.

use serde_json::json;

use super::{ChatMessage, insert_message};
use crate::chat::{ChatError, ChatService, room};
use crate::credits::Payer;
use crate::domain::MessageText;
use crate::ids::{ChatId, ChatMessageId, TeamId, UserId};
use crate::jobs::JobHandler;

impl ChatService {
    /// Posts a message: the row, the others' unread flags and one `llm-completion` job per bot
    /// participant in one transaction; then `chat/message/added`. With bots taking part, the
    /// payer's balance must cover `ai.min_balance_credits` first.
    pub async fn post(
        &self,
        author: UserId,
        api_key: Option<crate::ids::ApiKeyId>,
        chat: ChatId,
        text: MessageText,
        parent: Option<ChatMessageId>,
    ) -> Result<ChatMessage, ChatError> {
        let bots: Vec<(UserId, Option<serde_json::Value>)> = sqlx::query_as(
            "SELECT u.id, u.bot_settings FROM chat_participants p JOIN users u ON u.id = p.user_id
             WHERE p.chat_id = $1 AND u.is_bot AND u.id <> $2 ORDER BY u.id",
        )
        .bind(chat)
        .bind(author)
        .fetch_all(&self.pool)
        .await?;
        let team = if bots.is_empty() {
            None
        } else {
            let team = self.team_of(chat).await?;
            // Cheap early refusals; the holds below are what guarantees the money.
            self.credits.ensure_can_pay(Payer::of(author, team)).await?;
            if let Some(key) = api_key {
                self.credits.ensure_key_can_spend(key).await?;
            }
            team
        };
        let mut tx = self.pool.begin().await?;
        if let Some(parent) = parent {
            let in_chat: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM chat_messages WHERE id = $1 AND chat_id = $2)",
            )
            .bind(parent)
            .bind(chat)
            .fetch_one(&mut *tx)
            .await?;
            if !in_chat {
                return Err(ChatError::BadParent);
            }
        }
        let message = insert_message(
            &mut tx,
            &self.ids,
            chat,
            Some(author),
            parent,
            text.as_str(),
            None,
        )
        .await?
        .expect("no idempotency key, so always inserted");
        sqlx::query(
            "UPDATE chat_participants SET has_unread = true WHERE chat_id = $1 AND user_id <> $2",
        )
        .bind(chat)
        .bind(author)
        .execute(&mut *tx)
        .await?;
        for (bot, settings) in bots {
            let answer = crate::chat::answer::Answer {
                chat,
                bot,
                message: message.id,
                payer: author,
                team,
                api_key,
                version: 0,
                attempt: None,
            };
            self.queue_answer(&mut tx, &answer, settings).await?;
        }
        self.publish_in(
            &mut tx,
            room(chat),
            "chat/message/added",
            json!({ "message": &message }),
        )
        .await?;
        tx.commit().await?;
        self.outbox.kick(&room(chat));
        Ok(message)
    }

    /// Asks the bot that wrote `answer` for another version of it (a new sibling: same parent,
    /// next version). Returns the version number queued.
    pub async fn regenerate(
        &self,
        caller: UserId,
        api_key: Option<crate::ids::ApiKeyId>,
        answer: &ChatMessage,
    ) -> Result<i32, ChatError> {
        let (Some(bot), Some(parent)) = (answer.user_id, answer.parent_id) else {
            return Err(ChatError::NotABot);
        };
        let is_bot: bool = sqlx::query_scalar("SELECT is_bot FROM users WHERE id = $1")
            .bind(bot)
            .fetch_optional(&self.pool)
            .await?
            .unwrap_or(false);
        if !is_bot {
            return Err(ChatError::NotABot);
        }
        let team = self.team_of(answer.chat_id).await?;
        self.credits.ensure_can_pay(Payer::of(caller, team)).await?;
        if let Some(key) = api_key {
            self.credits.ensure_key_can_spend(key).await?;
        }
        let version: i32 = sqlx::query_scalar(
            "SELECT COUNT(*)::INT FROM chat_messages WHERE parent_id = $1 AND user_id = $2",
        )
        .bind(parent)
        .bind(bot)
        .fetch_one(&self.pool)
        .await?;
        let settings: Option<serde_json::Value> =
            sqlx::query_scalar("SELECT bot_settings FROM users WHERE id = $1")
                .bind(bot)
                .fetch_one(&self.pool)
                .await?;
        let answer = crate::chat::answer::Answer {
            chat: answer.chat_id,
            bot,
            message: parent,
            payer: caller,
            team,
            api_key,
            version,
            // Each regeneration is its own answer, charge and job, even when an earlier one
            // with the same version number was deleted.
            attempt: Some(self.ids.next_id()),
        };
        let mut tx = self.pool.begin().await?;
        self.queue_answer(&mut tx, &answer, settings).await?;
        tx.commit().await?;
        Ok(version)
    }

    /// The team a chat belongs to (its bots' answers are paid by that team); `None` for a
    /// chat of no team, or none at all.
    pub async fn team_of(&self, chat: ChatId) -> Result<Option<TeamId>, sqlx::Error> {
        Ok(
            sqlx::query_scalar::<_, Option<TeamId>>("SELECT team_id FROM chats WHERE id = $1")
                .bind(chat)
                .fetch_optional(&self.pool)
                .await?
                .flatten(),
        )
    }

    /// Queues one bot answer inside `tx`: holds its worst case from the payer (and the API
    /// key's limits), then enqueues its job. Either both or neither commit.
    async fn queue_answer(
        &self,
        tx: &mut sqlx::PgConnection,
        answer: &crate::chat::answer::Answer,
        bot_settings: Option<serde_json::Value>,
    ) -> Result<(), ChatError> {
        use crate::chat::answer::{BotSettings, LlmCompletion, worst_case_usage};
        let settings = BotSettings::parse(bot_settings);
        let model = settings
            .model
            .clone()
            .unwrap_or_else(|| self.ai.default_model.clone());
        // The prompt the job will send: the message and its ancestors, and the persona.
        let (turns, bytes): (i64, i64) = sqlx::query_as(
            "WITH RECURSIVE branch AS (
                 SELECT id, parent_id, octet_length(text) AS bytes, 0 AS depth
                   FROM chat_messages WHERE id = $1
                 UNION ALL
                 SELECT m.id, m.parent_id, octet_length(m.text), b.depth + 1
                   FROM chat_messages m JOIN branch b ON m.id = b.parent_id
                  WHERE b.depth + 1 < $2
             )
             SELECT count(*), COALESCE(sum(bytes), 0)::BIGINT FROM branch",
        )
        .bind(answer.message)
        .bind(self.context_messages)
        .fetch_one(&mut *tx)
        .await?;
        let persona = settings.persona.as_deref().map_or(0, str::len) as i64;
        let usage = worst_case_usage(
            bytes + persona,
            turns + 1,
            settings.max_tokens.unwrap_or(self.default_max_tokens),
        );
        let hold = self.ai.worst_case_cost(&model, usage);
        let key = answer.key();
        self.credits
            .hold_in(tx, answer.paid_by(), answer.api_key, &key, hold)
            .await?;
        let job = LlmCompletion::job(answer)
            .map_err(|e| sqlx::Error::Protocol(e.to_string()))?
            .unique_key(key);
        self.jobs.enqueue_in(tx, job).await?;
        Ok(())
    }
}
