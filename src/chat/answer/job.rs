//! The `llm-completion` job itself: skip an answered message, build the prompt from the
//! message's branch, stream the answer through the registry (publishing chunks as they come),
//! then write the answer and settle its charge in one transaction and tell the rooms.

use serde_json::{Value, json};
use tokio::sync::mpsc;
use vrooli_actors::RoomKey;

use super::usage::{estimate, generated};
use super::{Answer, BotSettings, LlmCompletion};
use crate::ai::{AiError, Prompt, ProviderError, Role};
use crate::chat::{ChatMessage, MAX_MESSAGE_CHARS, chat_room, insert_message};
use crate::ids::UserId;
use crate::jobs::{JobContext, JobError, JobHandler, Queue};

impl LlmCompletion {
    async fn prompt(&self, answer: &Answer, settings: &BotSettings) -> Result<Prompt, sqlx::Error> {
        // The message and its ancestors, oldest first.
        let rows: Vec<(Option<UserId>, String)> = sqlx::query_as(
            "WITH RECURSIVE branch AS (
                 SELECT id, parent_id, user_id, text, 0 AS depth FROM chat_messages WHERE id = $1
                 UNION ALL
                 SELECT m.id, m.parent_id, m.user_id, m.text, b.depth + 1
                 FROM chat_messages m JOIN branch b ON m.id = b.parent_id
                 WHERE b.depth + 1 < $2
             )
             SELECT user_id, text FROM branch ORDER BY depth DESC",
        )
        .bind(answer.message)
        .bind(self.context_messages)
        .fetch_all(&self.pool)
        .await?;
        Ok(Prompt {
            system: settings.persona.clone(),
            turns: rows
                .into_iter()
                .map(|(user, text)| {
                    let role = if user == Some(answer.bot) {
                        Role::Assistant
                    } else {
                        Role::User
                    };
                    (role, text)
                })
                .collect(),
            max_tokens: settings.max_tokens.unwrap_or(self.default_max_tokens),
        })
    }

    async fn status(&self, answer: &Answer, status: &str) {
        self.chats
            .publish(
                chat_room(answer.chat),
                "bot/status/updated",
                status_event(answer, status),
            )
            .await;
    }

    /// Tells the person who asked what the paying account holds now (`teamId` names the team
    /// when a team paid).
    async fn credits_updated(&self, answer: &Answer, balance: i64) {
        let room = RoomKey::user(&answer.payer.to_string()).expect("numeric id");
        self.chats
            .publish(room, "user/credits/updated", credits_event(answer, balance))
            .await;
    }

    async fn stream_event(&self, answer: &Answer, data: Value) {
        self.chats
            .publish(chat_room(answer.chat), "bot/response/stream", data)
            .await;
    }
}

impl JobHandler for LlmCompletion {
    const KIND: &'static str = "llm.completion";
    const QUEUE: Queue = Queue::LlmCompletion;
    type Payload = Answer;

    async fn handle(&self, answer: Answer, ctx: JobContext) -> Result<(), JobError> {
        let key = answer.key();
        let done: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM chat_messages WHERE idempotency_key = $1)",
        )
        .bind(&key)
        .fetch_one(&self.pool)
        .await
        .map_err(JobError::retryable)?;
        if done {
            return Ok(()); // a retry after the answer was stored
        }
        let bot: Option<Option<Value>> =
            sqlx::query_scalar("SELECT bot_settings FROM users WHERE id = $1 AND is_bot")
                .bind(answer.bot)
                .fetch_optional(&self.pool)
                .await
                .map_err(JobError::retryable)?;
        let Some(settings) = bot else {
            return Err(JobError::permanent("the bot no longer exists"));
        };
        let settings = BotSettings::parse(settings);
        let model = settings
            .model
            .clone()
            .unwrap_or_else(|| self.registry.default_model.clone());
        let prompt = self
            .prompt(&answer, &settings)
            .await
            .map_err(JobError::retryable)?;

        let guard = self.hub.cancellations().register(answer.chat.into());
        // Chunks skip the outbox: without this wait the first could reach members before the
        // message it answers (and this status), which are still in the outbox.
        self.chats
            .publish_then_wait(
                chat_room(answer.chat),
                "bot/status/updated",
                status_event(&answer, "thinking"),
            )
            .await;

        // Chunks flow from the provider through a bounded channel to the room, in order.
        let (tx, rx) = mpsc::channel::<String>(64);
        // Chunks are volatile (no offset, no place in the history, so they never push real
        // events out of it) and numbered: a client orders them by `seq`, drops repeats, and
        // has the whole text in the `end` event whatever it missed. After the first, chunks go
        // out at most once per `ai.stream_interval_ms`, with all that arrived meanwhile: one
        // Redis round trip for all of them, however fast the provider streams.
        let mut chunks = self.registry.chunks(rx);
        let forward = async {
            let mut text = String::new();
            let mut seq: u64 = 0;
            while let Some(chunk) = chunks.next().await {
                text.push_str(&chunk);
                self.chats
                    .publish_volatile(
                        chat_room(answer.chat),
                        "bot/response/stream",
                        json!({"__type": "stream", "chunk": chunk, "seq": seq,
                               "chatId": answer.chat, "botId": answer.bot,
                               "replyTo": answer.message}),
                    )
                    .await;
                seq += 1;
            }
            text
        };
        let (result, text) = tokio::join!(
            self.registry.stream(&model, &prompt, tx, &guard.token),
            forward
        );
        drop(guard);

        let (status, model, usage, error) = match result {
            Ok(done) => ("Sent", Some(done.model), done.usage, None),
            // Stopped on request: the payer pays for what was generated, nothing else (and
            // nothing at all when the answer had not begun).
            Err(AiError::Cancelled { model }) => {
                ("Cancelled", Some(model), generated(&prompt, &text), None)
            }
            Err(AiError::BrokeOff { model, error }) => (
                "Failed",
                Some(model),
                estimate(&prompt, &text),
                Some(error.to_string()),
            ),
            Err(other) => {
                // Nothing was said. A cooldown ends and a network can recover; a rejected key
                // or an unknown model will not.
                let error = match other {
                    AiError::Failed(ProviderError::Auth) | AiError::UnknownModel(_) => {
                        JobError::permanent(other)
                    }
                    other if ctx.attempt < ctx.max_attempts => JobError::retryable(other),
                    other => JobError::permanent(other),
                };
                // This answer will never be given: its hold goes back to the payer before the
                // room hears of the error, so a client that then reads its balance sees it.
                let released = if matches!(error, JobError::Permanent(_)) {
                    self.credits
                        .release(&key)
                        .await
                        .map_err(JobError::retryable)?
                } else {
                    None
                };
                // Tell the room, and try again later if it may pass.
                self.stream_event(
                    &answer,
                    json!({"__type": "error", "error": error.to_string(), "chatId": answer.chat,
                           "botId": answer.bot, "replyTo": answer.message}),
                )
                .await;
                self.status(&answer, "idle").await;
                if let Some(balance) = released {
                    self.credits_updated(&answer, balance).await;
                }
                return Err(error);
            }
        };
        let cost = model.as_ref().map_or(0, |m| m.cost(usage));
        // A message holds at most 32,768 characters; a longer answer is kept up to that.
        let text: String = if text.chars().count() > MAX_MESSAGE_CHARS {
            text.chars().take(MAX_MESSAGE_CHARS).collect()
        } else {
            text
        };

        let mut tx = self.pool.begin().await.map_err(JobError::retryable)?;
        let stored: Option<ChatMessage> = insert_message(
            &mut tx,
            &self.chats.ids,
            answer.chat,
            Some(answer.bot),
            Some(answer.message),
            &text,
            Some((status, &key)),
        )
        .await
        .map_err(JobError::retryable)?;
        let Some(message) = stored else {
            return Ok(()); // another attempt stored it first
        };
        let balance = self
            .credits
            .settle_in(
                &mut tx,
                answer.paid_by(),
                answer.api_key,
                &key,
                cost,
                "LlmAnswer",
                &format!("charge:{key}"),
            )
            .await
            .map_err(JobError::retryable)?;
        // The answer's events commit with the answer: announced once, in order, even if this
        // node dies right after the commit.
        let mut end = json!({"__type": "end", "finalMessage": &message, "chatId": answer.chat,
                             "botId": answer.bot, "replyTo": answer.message});
        if let Some(error) = error {
            end = json!({"__type": "error", "error": error, "finalMessage": &message,
                         "chatId": answer.chat, "botId": answer.bot, "replyTo": answer.message});
        }
        let room = chat_room(answer.chat);
        let payer_room = RoomKey::user(&answer.payer.to_string()).expect("numeric id");
        let events = [
            (room.clone(), "bot/response/stream", end),
            (
                room.clone(),
                "chat/message/added",
                json!({"message": &message}),
            ),
            (
                room.clone(),
                "bot/status/updated",
                json!({"chatId": answer.chat, "botId": answer.bot, "status": "idle"}),
            ),
        ];
        for (to, kind, data) in events {
            self.chats
                .publish_in(&mut tx, to, kind, data)
                .await
                .map_err(JobError::retryable)?;
        }
        if let Some(balance) = balance {
            self.chats
                .publish_in(
                    &mut tx,
                    payer_room.clone(),
                    "user/credits/updated",
                    credits_event(&answer, balance),
                )
                .await
                .map_err(JobError::retryable)?;
        }
        tx.commit().await.map_err(JobError::retryable)?;
        self.chats.outbox.kick(&room);
        self.chats.outbox.kick(&payer_room);
        tracing::info!(job_id = %ctx.id, status, cost, "bot answered");
        Ok(())
    }
}

/// `user/credits/updated`: the paying account's balance; `teamId` when a team paid.
fn credits_event(answer: &Answer, balance: i64) -> serde_json::Value {
    match answer.team {
        Some(team) => json!({"balance": balance.to_string(), "teamId": team}),
        None => json!({"balance": balance.to_string()}),
    }
}

/// `bot/status/updated`'s data.
fn status_event(answer: &Answer, status: &str) -> Value {
    json!({"chatId": answer.chat, "botId": answer.bot, "status": status})
}
