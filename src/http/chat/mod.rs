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
//! - `GET /credits` (the caller's balance)

mod chats;
mod invites;
mod messages;

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use crate::chat::access::Need;
use crate::chat::invites::InviteError;
use crate::chat::{ChatError, NewChat};
use crate::domain::{ChatName, MessageText};
use crate::http::Code;
use crate::http::auth::session::{Reader, Require, WritePrivate};
use crate::http::path::{Id, Ids};
use crate::http::{ApiError, ok};
use crate::ids::ChatInviteId;
use crate::ids::{ChatId, ChatMessageId, UserId};
use crate::state::AppState;

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/chat").route(web::post().to(chats::create_chat)))
        .service(web::resource("/chat/{id}/join").route(web::post().to(chats::join_chat)))
        .service(
            web::resource("/chat/{id}")
                .route(web::get().to(chats::get_chat))
                .route(web::put().to(chats::update_chat))
                .route(web::delete().to(chats::delete_chat)),
        )
        .service(web::resource("/chats").route(web::get().to(chats::list_chats)))
        .service(
            web::resource("/chatParticipant/{chat}/{user}")
                .route(web::put().to(chats::update_participant))
                .route(web::delete().to(chats::remove_participant)),
        )
        .service(web::resource("/chatMessage").route(web::post().to(messages::post_message)))
        .service(
            web::resource("/chatMessage/{id}")
                .route(web::put().to(messages::edit_message))
                .route(web::delete().to(messages::delete_message)),
        )
        .service(web::resource("/chatMessages").route(web::get().to(messages::list_messages)))
        .service(web::resource("/chatMessageTree").route(web::get().to(messages::message_tree)))
        .service(web::resource("/regenerateResponse").route(web::post().to(messages::regenerate)))
        .service(web::resource("/chatParticipants").route(web::get().to(chats::list_participants)))
        .service(web::resource("/chatInvite").route(web::post().to(invites::invite)))
        .service(web::resource("/chatInvites").route(web::get().to(invites::list_invites)))
        .service(
            web::resource("/chatInvite/{id}/accept").route(web::post().to(invites::accept_invite)),
        )
        .service(
            web::resource("/chatInvite/{id}/decline")
                .route(web::post().to(invites::decline_invite)),
        )
        .service(web::resource("/credits").route(web::get().to(credits)));
}

impl From<ChatError> for ApiError {
    fn from(error: ChatError) -> Self {
        match error {
            ChatError::ChatNotFound => ApiError::of(Code::ChatNotFound, "No such chat"),
            ChatError::MessageNotFound => ApiError::of(Code::MessageNotFound, "No such message"),
            ChatError::Forbidden => {
                ApiError::of(Code::NotAllowed, "You may not do this in this chat")
            }
            ChatError::BadParent => ApiError::of(
                Code::InvalidParent,
                "The parent message is not in this chat",
            ),
            ChatError::NotABot => ApiError::of(
                Code::NotABot,
                "Only bots can be added directly; invite people instead",
            ),
            ChatError::InsufficientCredits { balance, needed } => ApiError::of(
                Code::InsufficientCredits,
                format!("A bot's answer needs at least {needed} credits; the balance is {balance}"),
            ),
            ChatError::NotATeamMember => ApiError::of(
                Code::NotATeamMember,
                "Only members of a team can create its chats",
            ),
            ChatError::KeyLimitReached { used, limit } => ApiError::of(
                Code::ApiKeyCreditLimit,
                format!("This API key has spent {used} of its {limit} credits"),
            ),
            ChatError::Database(e) => e.into(),
        }
    }
}

fn id<T: std::str::FromStr>(text: &str, code: Code) -> Result<T, ApiError> {
    text.parse()
        .map_err(|_| ApiError::of(code, "An id is a decimal number"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    take: Option<i64>,
    after: Option<String>,
    #[serde(rename = "chatId")]
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

pub async fn credits(
    caller: Require<crate::http::auth::session::ReadPrivate>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let balance = state.credits.balance(caller.user).await?;
    Ok(ok(json!({"balance": balance.to_string()})))
}

impl From<InviteError> for ApiError {
    fn from(error: InviteError) -> Self {
        match error {
            InviteError::UserNotFound => ApiError::of(Code::UserNotFound, "No such user"),
            InviteError::AlreadyParticipant => ApiError::of(
                Code::AlreadyParticipant,
                "This user already takes part in the chat",
            ),
            InviteError::NotFound => ApiError::of(Code::InviteNotFound, "No such invite"),
            InviteError::Answered => ApiError::of(
                Code::InviteAnswered,
                "This invite was already accepted or declined",
            ),
            InviteError::Chat(e) => e.into(),
        }
    }
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
