//! `send_message`: posts to a chat as the caller (the chat service checks access and holds the
//! answer's credits, against the caller's key when it has one; a team run's step posts only
//! in its team's chats), then, when asked, polls for the bot's answer to it until the wait ends.
//!
//! Threads: a bot answers with the history of the message's thread (its ancestors). So a
//! message goes on the latest thread by default (its parent is the chat's newest message), under
//! `parentId` when given, or starts a thread of its own with `newThread`.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use super::context::{Caller, Tools, need, parse_id, wait_for, within};
use crate::auth::api_keys::Permission;
use crate::chat::access::Need;
use crate::domain::MessageText;
use crate::errors::Code;
use crate::ids::ChatId;
use crate::mcp::errors::ToolError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct SendMessage {
    chat_id: String,
    text: String,
    parent_id: Option<String>,
    #[serde(default)]
    new_thread: bool,
    #[serde(default)]
    wait_for_response: bool,
    timeout_ms: Option<u64>,
}

impl Tools {
    pub(super) async fn send_message(
        &self,
        caller: &Caller,
        a: SendMessage,
    ) -> Result<Value, ToolError> {
        need(caller, Permission::WritePrivate)?;
        let chat: ChatId = parse_id(&a.chat_id, "chatId")?;
        let text = MessageText::parse(a.text).map_err(|_| {
            ToolError::new(Code::InvalidText, "A message is 1 to 32,768 characters")
        })?;
        self.chats
            .require(chat, Some(caller.user), Need::Write)
            .await?;
        if caller.team.is_some() {
            within(caller, self.chats.team_of(chat).await?)?;
        }
        let parent = match (a.parent_id.as_deref(), a.new_thread) {
            (Some(_), true) => {
                return Err(ToolError::new(
                    Code::InvalidArguments,
                    "parentId and newThread exclude each other",
                ));
            }
            (Some(parent), false) => Some(parse_id(parent, "parentId")?),
            (None, true) => None,
            // The chat's newest message: the thread the conversation is on.
            (None, false) => self
                .chats
                .readable_messages(chat, Some(caller.user), 1, None, None)
                .await?
                .first()
                .map(|newest| newest.id),
        };
        let message = self
            .chats
            .post(caller.user, caller.api_key, chat, text, parent)
            .await?;
        let mut out = json!({"message": message});
        if a.wait_for_response {
            let deadline = tokio::time::Instant::now() + wait_for(a.timeout_ms);
            // The answer is a bot's message whose parent is ours; it is written when the
            // answer is finished (streamed chunks go to the chat's room meanwhile).
            let answer = loop {
                let page = self
                    .chats
                    .readable_messages(chat, Some(caller.user), 20, None, None)
                    .await?;
                if let Some(answer) = page.into_iter().find(|m| m.parent_id == Some(message.id)) {
                    break Some(answer);
                }
                if tokio::time::Instant::now() >= deadline {
                    break None;
                }
                // Polled: the answer's job may run on any node.
                tokio::time::sleep(Duration::from_millis(200)).await;
            };
            out["response"] = json!(answer);
        }
        Ok(out)
    }
}
