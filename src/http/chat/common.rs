//! What the chat handlers share: the id and text checks at the edge, the page query of the
//! listing routes, and the imports every handler file uses (`use super::common::*`). A leaf:
//! the handler files (`chats.rs`, `messages.rs`, `invites.rs`) import it, `mod.rs` registers
//! them, and nothing here imports either.

pub(super) use actix_web::{HttpRequest, HttpResponse, delete, get, post, put, web};
pub(super) use serde::{Deserialize, Serialize};
pub(super) use utoipa::{IntoParams, ToSchema};

pub(super) use crate::chat::access::Need;
pub(super) use crate::chat::{ChatError, NewChat};
pub(super) use crate::domain::{ChatName, MessageText};
pub(super) use crate::errors::Code;
pub(super) use crate::http::auth::readers::{Reader, SessionReader};
pub(super) use crate::http::auth::session::{Require, RequireTeam, WritePrivate};
pub(super) use crate::http::bodies::Deleted;
pub(super) use crate::http::error::ApiError;
pub(super) use crate::http::paging::Relay;
pub(super) use crate::http::path::{Id, Ids};
pub(super) use crate::http::reply::{Envelope, ok};
pub(super) use crate::ids::ChatInviteId;
pub(super) use crate::ids::{ChatId, ChatMessageId, UserId};
pub(super) use crate::state::AppState;

pub(super) fn id<T: std::str::FromStr>(text: &str, code: Code) -> Result<T, ApiError> {
    text.parse()
        .map_err(|_| ApiError::of(code, "An id is a decimal number"))
}

/// The query of the chat routes that list: a page (`take`, `after`) and, where the list is one
/// chat's, that chat. Each route reads the fields it needs and accepts the others.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page size, 1–100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub(super) take: Option<i64>,
    /// The `endCursor` of the previous page.
    pub(super) after: Option<String>,
    /// The chat: required by `/chatMessages`, `/chatMessageTree` and `/chatParticipants`
    /// (400 `MissingChatId` without it); unused by the others.
    #[serde(rename = "chatId")]
    #[param(value_type = Option<ChatId>)]
    pub(super) chat_id: Option<String>,
}

pub(super) fn take_and_after(q: &PageQuery) -> Result<(i64, Option<i64>), ApiError> {
    crate::http::paging::params(q.take, q.after.as_deref())
}

pub(super) fn check_name(name: Option<String>) -> Result<Option<String>, ApiError> {
    name.map(|n| {
        ChatName::parse(&n)
            .map(ChatName::into_string)
            .map_err(|_| ApiError::of(Code::InvalidName, "A chat name is at most 128 characters"))
    })
    .transpose()
}

pub(super) fn message_text(text: String) -> Result<MessageText, ApiError> {
    MessageText::parse(text)
        .map_err(|_| ApiError::of(Code::InvalidText, "A message is 1 to 32,768 characters"))
}

pub(super) fn chat_id_from(query: &PageQuery) -> Result<ChatId, ApiError> {
    id(
        query
            .chat_id
            .as_deref()
            .ok_or_else(|| ApiError::of(Code::MissingChatId, "chatId is required"))?,
        Code::InvalidChatId,
    )
}
