//! `/api/v2/chat*`: chats, their participants and messages. Who may do what is decided in
//! `chat::access` (one place); handlers extract, ask it, and call `ChatService`.
//!
//! - `POST /chat {name?, isPrivate?, openToAnyoneWithInvite?, botIds?, teamId?}` · `GET /chat/{id}` ·
//!   `PUT /chat/{id}` · `DELETE /chat/{id}` · `GET /chats?take&after` (mine, Relay page) ·
//!   `POST /chat/{id}/join {inviteSecret}` (a chat open to anyone with an invite)
//! - `DELETE /chatParticipant/{chatId}/{userId}` (leave, or remove someone as a manager)
//! - `POST /chatMessage {chatId, text, parentId?}` · `GET /chatMessages?chatId&take&after` ·
//!   `PUT /chatMessage/{id} {text}` · `DELETE /chatMessage/{id}`
//! - `GET /chatParticipants?chatId` · `PUT /chatParticipant/{chatId}/{userId} {hasUnread}` (own)
//! - `GET /chatMessageTree?chatId` (branch structure) · `POST /regenerateResponse {messageId}`
//! - `POST /chatInvite {chatId, userId, message?}` · `GET /chatInvites` (mine, pending) ·
//!   `POST /chatInvite/{id}/accept` · `POST /chatInvite/{id}/decline`

mod chats;
mod invites;
mod messages;

use actix_web::{HttpRequest, HttpResponse, delete, get, post, put, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::chat::access::Need;
use crate::chat::{ChatError, NewChat};
use crate::domain::{ChatName, MessageText};
use crate::errors::Code;
use crate::http::auth::readers::{Reader, SessionReader};
use crate::http::auth::session::{Require, RequireTeam, WritePrivate};
use crate::http::bodies::Deleted;
use crate::http::error::ApiError;
use crate::http::paging::Relay;
use crate::http::path::{Id, Ids};
use crate::http::reply::{Envelope, ok};
use crate::ids::ChatInviteId;
use crate::ids::{ChatId, ChatMessageId, UserId};
use crate::state::AppState;

pub fn config(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(chats::create_chat)
        .service(chats::join_chat)
        .service(chats::get_chat)
        .service(chats::update_chat)
        .service(chats::delete_chat)
        .service(chats::list_chats)
        .service(chats::update_participant)
        .service(chats::remove_participant)
        .service(messages::post_message)
        .service(messages::edit_message)
        .service(messages::delete_message)
        .service(messages::list_messages)
        .service(messages::message_tree)
        .service(messages::regenerate)
        .service(chats::list_participants)
        .service(invites::invite)
        .service(invites::list_invites)
        .service(invites::accept_invite)
        .service(invites::decline_invite);
}

fn id<T: std::str::FromStr>(text: &str, code: Code) -> Result<T, ApiError> {
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
    take: Option<i64>,
    /// The `endCursor` of the previous page.
    after: Option<String>,
    /// The chat: required by `/chatMessages`, `/chatMessageTree` and `/chatParticipants`
    /// (400 `MissingChatId` without it); unused by the others.
    #[serde(rename = "chatId")]
    #[param(value_type = Option<ChatId>)]
    chat_id: Option<String>,
}

fn take_and_after(q: &PageQuery) -> Result<(i64, Option<i64>), ApiError> {
    crate::http::paging::params(q.take, q.after.as_deref())
}

fn check_name(name: Option<String>) -> Result<Option<String>, ApiError> {
    name.map(|n| {
        ChatName::parse(&n)
            .map(ChatName::into_string)
            .map_err(|_| ApiError::of(Code::InvalidName, "A chat name is at most 128 characters"))
    })
    .transpose()
}

fn message_text(text: String) -> Result<MessageText, ApiError> {
    MessageText::parse(text)
        .map_err(|_| ApiError::of(Code::InvalidText, "A message is 1 to 32,768 characters"))
}

fn chat_id_from(query: &PageQuery) -> Result<ChatId, ApiError> {
    id(
        query
            .chat_id
            .as_deref()
            .ok_or_else(|| ApiError::of(Code::MissingChatId, "chatId is required"))?,
        Code::InvalidChatId,
    )
}
