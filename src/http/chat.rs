//! `/api/v2/chat*`: chats, their participants and messages. Who may do what is decided in
//! `chat::access` (one place); handlers extract, ask it, and call `ChatService`.
//!
//! - `POST /chat {name?, isPrivate?, openToAnyoneWithInvite?, botIds?, teamId?}` · `GET /chat/{id}` ·
//!   `PUT /chat/{id}` · `DELETE /chat/{id}` · `GET /chats?take&after` (mine, Relay page)
//! - `DELETE /chatParticipant/{chatId}/{userId}` (leave, or remove someone as a manager)
//! - `POST /chatMessage {chatId, text, parentId?}` · `GET /chatMessages?chatId&take&after` ·
//!   `PUT /chatMessage/{id} {text}` · `DELETE /chatMessage/{id}`
//! - `GET /chatParticipants?chatId` · `PUT /chatParticipant/{chatId}/{userId} {hasUnread}` (own)
//! - `GET /chatMessageTree?chatId` (branch structure) · `POST /regenerateResponse {messageId}`
//! - `POST /chatInvite {chatId, userId, message?}` · `GET /chatInvites` (mine, pending) ·
//!   `POST /chatInvite/{id}/accept` · `POST /chatInvite/{id}/decline`
//! - `GET /credits` (the caller's balance)

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::auth::session::{Reader, Require, WritePrivate};
use super::{ApiError, ErrorKind, ok};
use crate::chat::access::Need;
use crate::chat::invites::InviteError;
use crate::chat::{ChatError, MAX_MESSAGE_CHARS, NewChat};
use crate::ids::{ChatId, ChatMessageId, UserId};
use crate::state::AppState;

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/chat").route(web::post().to(create_chat)))
        .service(
            web::resource("/chat/{id}")
                .route(web::get().to(get_chat))
                .route(web::put().to(update_chat))
                .route(web::delete().to(delete_chat)),
        )
        .service(web::resource("/chats").route(web::get().to(list_chats)))
        .service(
            web::resource("/chatParticipant/{chat}/{user}")
                .route(web::put().to(update_participant))
                .route(web::delete().to(remove_participant)),
        )
        .service(web::resource("/chatMessage").route(web::post().to(post_message)))
        .service(
            web::resource("/chatMessage/{id}")
                .route(web::put().to(edit_message))
                .route(web::delete().to(delete_message)),
        )
        .service(web::resource("/chatMessages").route(web::get().to(list_messages)))
        .service(web::resource("/chatMessageTree").route(web::get().to(message_tree)))
        .service(web::resource("/regenerateResponse").route(web::post().to(regenerate)))
        .service(web::resource("/chatParticipants").route(web::get().to(list_participants)))
        .service(web::resource("/chatInvite").route(web::post().to(invite)))
        .service(web::resource("/chatInvites").route(web::get().to(list_invites)))
        .service(web::resource("/chatInvite/{id}/accept").route(web::post().to(accept_invite)))
        .service(web::resource("/chatInvite/{id}/decline").route(web::post().to(decline_invite)))
        .service(web::resource("/credits").route(web::get().to(credits)));
}

impl From<ChatError> for ApiError {
    fn from(error: ChatError) -> Self {
        match error {
            ChatError::ChatNotFound => ApiError::not_found("ChatNotFound", "No such chat"),
            ChatError::MessageNotFound => ApiError::not_found("MessageNotFound", "No such message"),
            ChatError::Forbidden => ApiError::new(
                ErrorKind::Forbidden,
                "NotAllowed",
                "You may not do this in this chat",
            ),
            ChatError::BadParent => {
                ApiError::unprocessable("InvalidParent", "The parent message is not in this chat")
            }
            ChatError::NotABot => ApiError::unprocessable(
                "NotABot",
                "Only bots can be added directly; invite people instead",
            ),
            ChatError::InsufficientCredits { balance, needed } => ApiError::new(
                ErrorKind::PaymentRequired,
                "InsufficientCredits",
                format!("A bot's answer needs at least {needed} credits; the balance is {balance}"),
            ),
            ChatError::NotATeamMember => ApiError::new(
                ErrorKind::Forbidden,
                "NotATeamMember",
                "Only members of a team can create its chats",
            ),
            ChatError::KeyLimitReached { used, limit } => ApiError::new(
                ErrorKind::PaymentRequired,
                "ApiKeyCreditLimit",
                format!("This API key has spent {used} of its {limit} credits"),
            ),
            ChatError::Database(e) => e.into(),
        }
    }
}

fn id<T: std::str::FromStr>(text: &str, code: &'static str) -> Result<T, ApiError> {
    text.parse()
        .map_err(|_| ApiError::bad_request(code, "An id is a decimal number"))
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
    super::paging::params(q.take, q.after.as_deref())
}

fn check_name(name: Option<String>) -> Result<Option<String>, ApiError> {
    match name {
        Some(n) if n.trim().chars().count() > 128 => Err(ApiError::unprocessable(
            "InvalidName",
            "A chat name is at most 128 characters",
        )),
        other => Ok(other.map(|n| n.trim().to_owned())),
    }
}

fn check_text(text: &str) -> Result<(), ApiError> {
    if text.trim().is_empty() || text.chars().count() > MAX_MESSAGE_CHARS {
        return Err(ApiError::unprocessable(
            "InvalidText",
            "A message is 1 to 32,768 characters",
        ));
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateChat {
    name: Option<String>,
    is_private: Option<bool>,
    open_to_anyone_with_invite: Option<bool>,
    #[serde(default)]
    bot_ids: Vec<UserId>,
    team_id: Option<crate::ids::TeamId>,
}

pub async fn create_chat(
    caller: Require<WritePrivate>,
    state: web::Data<AppState>,
    body: web::Json<CreateChat>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let chat = state
        .chats
        .create(
            caller.user,
            NewChat {
                name: check_name(body.name)?.unwrap_or_default(),
                is_private: body.is_private.unwrap_or(true),
                open_to_anyone_with_invite: body.open_to_anyone_with_invite.unwrap_or(false),
                bots: body.bot_ids,
                team: body.team_id.map(|t| t.0),
            },
        )
        .await?;
    let participants = state.chats.participants(chat.id).await?;
    Ok(ok(json!({"chat": chat, "participants": participants})))
}

pub async fn get_chat(
    reader: Reader,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let chat_id: ChatId = id(&path, "InvalidChatId")?;
    state.chats.require(chat_id, reader.0, Need::Read).await?;
    let chat = state.chats.get(chat_id).await?;
    let participants = state.chats.participants(chat_id).await?;
    Ok(ok(json!({"chat": chat, "participants": participants})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpdateChat {
    name: Option<String>,
    is_private: Option<bool>,
    open_to_anyone_with_invite: Option<bool>,
}

pub async fn update_chat(
    caller: Require<WritePrivate>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<UpdateChat>,
) -> Result<HttpResponse, ApiError> {
    let chat_id: ChatId = id(&path, "InvalidChatId")?;
    state
        .chats
        .require(chat_id, Some(caller.user), Need::Manage)
        .await?;
    let body = body.into_inner();
    let chat = state
        .chats
        .update(
            chat_id,
            check_name(body.name)?,
            body.is_private,
            body.open_to_anyone_with_invite,
        )
        .await?;
    Ok(ok(chat))
}

pub async fn delete_chat(
    caller: Require<WritePrivate>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let chat_id: ChatId = id(&path, "InvalidChatId")?;
    state
        .chats
        .require(chat_id, Some(caller.user), Need::Manage)
        .await?;
    state.chats.delete(chat_id).await?;
    Ok(ok(json!({"id": chat_id, "deleted": true})))
}

pub async fn list_chats(
    caller: Require<super::auth::session::ReadPrivate>,
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let (take, after) = take_and_after(&query)?;
    let chats = state
        .chats
        .list_mine(caller.user, take, after.map(ChatId))
        .await?;
    Ok(ok(super::paging::relay(chats, take, |c| c.id.to_string())))
}

pub async fn remove_participant(
    caller: Require<WritePrivate>,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let chat_id: ChatId = id(&path.0, "InvalidChatId")?;
    let user: UserId = id(&path.1, "InvalidUserId")?;
    let access = state.chats.access(chat_id, Some(caller.user)).await?;
    if user != caller.user && !access.can_manage() {
        return Err(ChatError::Forbidden.into());
    }
    let removed = state.chats.remove_participant(chat_id, user).await?;
    Ok(ok(json!({"removed": removed})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PostMessage {
    chat_id: ChatId,
    text: String,
    parent_id: Option<ChatMessageId>,
}

pub async fn post_message(
    caller: Require<WritePrivate>,
    state: web::Data<AppState>,
    body: web::Json<PostMessage>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    check_text(&body.text)?;
    state
        .chats
        .require(body.chat_id, Some(caller.user), Need::Write)
        .await?;
    let message = state
        .chats
        .post(
            caller.user,
            caller.api_key,
            body.chat_id,
            body.text,
            body.parent_id,
        )
        .await?;
    Ok(ok(message))
}

pub async fn list_messages(
    reader: Reader,
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let (take, after) = take_and_after(&query)?;
    let chat_id: ChatId = id(
        query
            .chat_id
            .as_deref()
            .ok_or_else(|| ApiError::bad_request("MissingChatId", "chatId is required"))?,
        "InvalidChatId",
    )?;
    state.chats.require(chat_id, reader.0, Need::Read).await?;
    let messages = state
        .chats
        .messages(chat_id, take, after.map(ChatMessageId))
        .await?;
    Ok(ok(super::paging::relay(messages, take, |m| {
        m.id.to_string()
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditMessage {
    text: String,
}

pub async fn edit_message(
    caller: Require<WritePrivate>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<EditMessage>,
) -> Result<HttpResponse, ApiError> {
    let message_id: ChatMessageId = id(&path, "InvalidMessageId")?;
    let body = body.into_inner();
    check_text(&body.text)?;
    let message = state.chats.message(message_id).await?;
    if message.user_id != Some(caller.user) {
        return Err(ChatError::Forbidden.into());
    }
    Ok(ok(state.chats.edit(message_id, body.text).await?))
}

pub async fn delete_message(
    caller: Require<WritePrivate>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let message_id: ChatMessageId = id(&path, "InvalidMessageId")?;
    let message = state.chats.message(message_id).await?;
    let author = message.user_id == Some(caller.user);
    if !author
        && !state
            .chats
            .access(message.chat_id, Some(caller.user))
            .await?
            .can_manage()
    {
        return Err(ChatError::Forbidden.into());
    }
    state.chats.remove(&message).await?;
    Ok(ok(json!({"id": message_id, "deleted": true})))
}

pub async fn credits(
    caller: Require<super::auth::session::ReadPrivate>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let balance = state.credits.balance(caller.user).await?;
    Ok(ok(json!({"balance": balance.to_string()})))
}

impl From<InviteError> for ApiError {
    fn from(error: InviteError) -> Self {
        match error {
            InviteError::UserNotFound => ApiError::not_found("UserNotFound", "No such user"),
            InviteError::AlreadyParticipant => ApiError::new(
                ErrorKind::Conflict,
                "AlreadyParticipant",
                "This user already takes part in the chat",
            ),
            InviteError::NotFound => ApiError::not_found("InviteNotFound", "No such invite"),
            InviteError::Answered => ApiError::new(
                ErrorKind::Conflict,
                "InviteAnswered",
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
            .ok_or_else(|| ApiError::bad_request("MissingChatId", "chatId is required"))?,
        "InvalidChatId",
    )
}

pub async fn list_participants(
    reader: Reader,
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let chat_id = chat_id_from(&query)?;
    state.chats.require(chat_id, reader.0, Need::Read).await?;
    Ok(ok(state.chats.participants(chat_id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpdateParticipant {
    has_unread: bool,
}

pub async fn update_participant(
    caller: Require<WritePrivate>,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Json<UpdateParticipant>,
) -> Result<HttpResponse, ApiError> {
    let chat_id: ChatId = id(&path.0, "InvalidChatId")?;
    let user: UserId = id(&path.1, "InvalidUserId")?;
    if user != caller.user {
        return Err(ChatError::Forbidden.into());
    }
    if !state
        .chats
        .set_unread(chat_id, user, body.has_unread)
        .await?
    {
        return Err(ApiError::not_found(
            "NotAParticipant",
            "You do not take part in this chat",
        ));
    }
    Ok(ok(
        json!({"chatId": chat_id, "userId": user, "hasUnread": body.has_unread}),
    ))
}

pub async fn message_tree(
    reader: Reader,
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    const LIMIT: i64 = 10_000;
    let chat_id = chat_id_from(&query)?;
    state.chats.require(chat_id, reader.0, Need::Read).await?;
    let nodes = state.chats.tree(chat_id, LIMIT + 1).await?;
    let truncated = nodes.len() as i64 > LIMIT;
    let nodes = &nodes[..nodes.len().min(LIMIT as usize)];
    Ok(ok(json!({"nodes": nodes, "truncated": truncated})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Regenerate {
    message_id: ChatMessageId,
}

pub async fn regenerate(
    caller: Require<WritePrivate>,
    state: web::Data<AppState>,
    body: web::Json<Regenerate>,
) -> Result<HttpResponse, ApiError> {
    let answer = state.chats.message(body.message_id).await?;
    state
        .chats
        .require(answer.chat_id, Some(caller.user), Need::Write)
        .await?;
    let version = state
        .chats
        .regenerate(caller.user, caller.api_key, &answer)
        .await?;
    Ok(ok(
        json!({"queued": true, "parentId": answer.parent_id, "version": version}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateInvite {
    chat_id: ChatId,
    user_id: UserId,
    message: Option<String>,
}

pub async fn invite(
    caller: Require<WritePrivate>,
    state: web::Data<AppState>,
    body: web::Json<CreateInvite>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    if body
        .message
        .as_ref()
        .is_some_and(|m| m.chars().count() > 4096)
    {
        return Err(ApiError::unprocessable(
            "InvalidMessage",
            "An invite message is at most 4,096 characters",
        ));
    }
    state
        .chats
        .require(body.chat_id, Some(caller.user), Need::Write)
        .await?;
    let invite = state
        .chats
        .invite(caller.user, body.chat_id, body.user_id, body.message)
        .await?;
    Ok(ok(invite))
}

pub async fn list_invites(
    caller: Require<super::auth::session::ReadPrivate>,
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let (take, after) = take_and_after(&query)?;
    let invites = state.chats.invites_for(caller.user, take, after).await?;
    Ok(ok(super::paging::relay(invites, take, |i| {
        i.id.to_string()
    })))
}

async fn answer_invite(
    caller: Require<WritePrivate>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    accept: bool,
) -> Result<HttpResponse, ApiError> {
    let invite: i64 = id(&path, "InvalidInviteId")?;
    Ok(ok(state
        .chats
        .answer_invite(caller.user, invite, accept)
        .await?))
}

pub async fn accept_invite(
    caller: Require<WritePrivate>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    answer_invite(caller, state, path, true).await
}

pub async fn decline_invite(
    caller: Require<WritePrivate>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    answer_invite(caller, state, path, false).await
}
