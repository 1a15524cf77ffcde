//! Chats and their participants: create, read, update, delete, list mine; list, update, remove
//! participants.

use super::common::*;
use crate::chat::{Chat, Participant};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateChat {
    /// At most 128 characters, trimmed (default empty).
    #[schema(max_length = 128)]
    name: Option<String>,
    /// Only participants (and, for a team's chat, its members) may read it (default true).
    is_private: Option<bool>,
    /// Anyone holding the chat's invite secret may join it (default false).
    open_to_anyone_with_invite: Option<bool>,
    /// Bots to add as participants (people are invited instead).
    #[serde(default)]
    bot_ids: Vec<UserId>,
    /// The team the chat belongs to; the caller must be a member.
    team_id: Option<crate::ids::TeamId>,
}

/// Creates a chat; the caller is its creator and first participant.
#[utoipa::path(
    tag = "chats",
    request_body = CreateChat,
    responses((status = 200, description = "The new chat", body = Envelope<CreatedChat>)),
)]
#[post("/chat")]
pub async fn create_chat(
    caller: Require<WritePrivate>,
    state: web::Data<AppState>,
    body: web::Json<CreateChat>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let chat = state
        .chat
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
    let participants = state.chat.chats.participants(chat.id).await?;
    let invite_secret = state.chat.chats.invite_secret(chat.id).await?;
    Ok(ok(CreatedChat {
        chat,
        participants,
        invite_secret,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct JoinChat {
    /// The secret a manager of the chat shared.
    invite_secret: String,
}

/// Joins a chat open to anyone with an invite, with its invite secret.
///
/// A wrong secret, or a chat that is not open, answers 404 `ChatNotFound` (as for a chat that
/// does not exist).
#[utoipa::path(
    tag = "chats",
    params(("id" = ChatId, Path, description = "The chat's id")),
    request_body = JoinChat,
    responses((status = 200, description = "The chat, the caller now among its participants", body = Envelope<ChatWithParticipants>)),
)]
#[post("/chat/{id}/join")]
pub async fn join_chat(
    caller: Require<WritePrivate>,
    state: web::Data<AppState>,
    Id(chat_id): Id<ChatId>,
    body: web::Json<JoinChat>,
) -> Result<HttpResponse, ApiError> {
    state
        .chat
        .chats
        .join_with_secret(chat_id, caller.user, &body.invite_secret)
        .await?;
    let chat = state.chat.chats.get(chat_id).await?;
    let participants = state.chat.chats.participants(chat_id).await?;
    Ok(ok(ChatWithParticipants { chat, participants }))
}

/// One chat and its participants.
///
/// Anyone may read a public chat; a private one, its creator, participants and team members.
/// Its managers also get `inviteSecret`.
#[utoipa::path(
    tag = "chats",
    params(("id" = ChatId, Path, description = "The chat's id")),
    responses(
        (status = 200, description = "The chat", body = Envelope<ChatView>),
        (status = 404, description = "No such chat, or one the caller may not read (`ChatNotFound`)", body = crate::http::openapi::ErrorEnvelope),
    ),
    security((), ("cookie" = []), ("bearer" = []), ("apiKey" = [])),
)]
#[get("/chat/{id}")]
pub async fn get_chat(
    reader: Reader,
    state: web::Data<AppState>,
    Id(chat_id): Id<ChatId>,
) -> Result<HttpResponse, ApiError> {
    let access = state
        .chat
        .chats
        .require(chat_id, reader.0, Need::Read)
        .await?;
    let chat = state.chat.chats.get(chat_id).await?;
    let participants = state.chat.chats.participants(chat_id).await?;
    let invite_secret = if access.can_manage() {
        Some(state.chat.chats.invite_secret(chat_id).await?)
    } else {
        None
    };
    Ok(ok(ChatView {
        chat,
        participants,
        invite_secret,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpdateChat {
    /// At most 128 characters, trimmed.
    #[schema(max_length = 128)]
    name: Option<String>,
    is_private: Option<bool>,
    open_to_anyone_with_invite: Option<bool>,
}

/// Updates a chat (its managers only); absent fields stay as they are.
#[utoipa::path(
    tag = "chats",
    params(("id" = ChatId, Path, description = "The chat's id")),
    request_body = UpdateChat,
    responses((status = 200, description = "The chat as updated", body = Envelope<Chat>)),
)]
#[put("/chat/{id}")]
pub async fn update_chat(
    caller: Require<WritePrivate>,
    state: web::Data<AppState>,
    Id(chat_id): Id<ChatId>,
    body: web::Json<UpdateChat>,
) -> Result<HttpResponse, ApiError> {
    state
        .chat
        .chats
        .require(chat_id, Some(caller.user), Need::Manage)
        .await?;
    let body = body.into_inner();
    let chat = state
        .chat
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

/// Deletes a chat with its messages (its managers only).
#[utoipa::path(
    tag = "chats",
    params(("id" = ChatId, Path, description = "The chat's id")),
    responses((status = 200, description = "The chat was deleted", body = Envelope<Deleted<ChatId>>)),
)]
#[delete("/chat/{id}")]
pub async fn delete_chat(
    caller: Require<WritePrivate>,
    state: web::Data<AppState>,
    Id(chat_id): Id<ChatId>,
) -> Result<HttpResponse, ApiError> {
    state
        .chat
        .chats
        .require(chat_id, Some(caller.user), Need::Manage)
        .await?;
    state.chat.chats.delete(chat_id).await?;
    Ok(ok(Deleted::new(chat_id)))
}

/// The chats the caller takes part in, newest first.
#[utoipa::path(
    tag = "chats",
    params(PageQuery),
    responses((status = 200, description = "A page of chats", body = Envelope<Relay<Chat>>)),
)]
#[get("/chats")]
pub async fn list_chats(
    caller: Require<crate::http::auth::session::ReadPrivate>,
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let (take, after) = take_and_after(&query)?;
    let chats = state
        .chat
        .chats
        .list_mine(caller.user, take, after.map(ChatId))
        .await?;
    Ok(ok(crate::http::paging::relay(chats, take, |c| {
        c.id.to_string()
    })))
}

/// Removes a participant: the caller leaves, or a manager removes someone.
#[utoipa::path(
    tag = "chats",
    params(
        ("chat" = ChatId, Path, description = "The chat's id"),
        ("user" = UserId, Path, description = "The participant's user id"),
    ),
    responses((status = 200, description = "Whether they took part (and so were removed)", body = Envelope<Removed>)),
)]
#[delete("/chatParticipant/{chat}/{user}")]
pub async fn remove_participant(
    caller: Require<WritePrivate>,
    state: web::Data<AppState>,
    Ids(chat_id, user): Ids<ChatId, UserId>,
) -> Result<HttpResponse, ApiError> {
    let access = state.chat.chats.access(chat_id, Some(caller.user)).await?;
    if user != caller.user && !access.can_manage() {
        return Err(ChatError::Forbidden.into());
    }
    let removed = state.chat.chats.remove_participant(chat_id, user).await?;
    Ok(ok(Removed { removed }))
}

/// A chat's participants (`chatId` required; `take` and `after` are not used: all of them).
#[utoipa::path(
    tag = "chats",
    params(PageQuery),
    responses((status = 200, description = "The participants", body = Envelope<Vec<Participant>>)),
    security((), ("cookie" = []), ("bearer" = []), ("apiKey" = [])),
)]
#[get("/chatParticipants")]
pub async fn list_participants(
    reader: Reader,
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let chat_id = chat_id_from(&query)?;
    state
        .chat
        .chats
        .require(chat_id, reader.0, Need::Read)
        .await?;
    Ok(ok(state.chat.chats.participants(chat_id).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpdateParticipant {
    has_unread: bool,
}

/// Sets the caller's own unread flag in a chat (`user` must be the caller).
#[utoipa::path(
    tag = "chats",
    params(
        ("chat" = ChatId, Path, description = "The chat's id"),
        ("user" = UserId, Path, description = "The caller's user id"),
    ),
    request_body = UpdateParticipant,
    responses((status = 200, description = "The flag as set", body = Envelope<ParticipantUnread>)),
)]
#[put("/chatParticipant/{chat}/{user}")]
pub async fn update_participant(
    caller: Require<WritePrivate>,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Json<UpdateParticipant>,
) -> Result<HttpResponse, ApiError> {
    let chat_id: ChatId = id(&path.0, Code::InvalidChatId)?;
    let user: UserId = id(&path.1, Code::InvalidUserId)?;
    if user != caller.user {
        return Err(ChatError::Forbidden.into());
    }
    if !state
        .chat
        .chats
        .set_unread(chat_id, user, body.has_unread)
        .await?
    {
        return Err(ApiError::of(
            Code::NotAParticipant,
            "You do not take part in this chat",
        ));
    }
    Ok(ok(ParticipantUnread {
        chat_id,
        user_id: user,
        has_unread: body.has_unread,
    }))
}

// Bodies.

/// `POST /chat`: the chat, its participants and its invite secret.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedChat {
    chat: Chat,
    participants: Vec<Participant>,
    /// The secret to share, `null` unless the chat is open to anyone with an invite.
    invite_secret: Option<String>,
}

/// A chat and its participants.
#[derive(Serialize, ToSchema)]
pub struct ChatWithParticipants {
    chat: Chat,
    participants: Vec<Participant>,
}

/// `GET /chat/{id}`: the chat, its participants and, for its managers, its invite secret.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatView {
    chat: Chat,
    participants: Vec<Participant>,
    /// Present for the chat's managers only: the secret to share, `null` unless the chat is
    /// open to anyone with an invite.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    invite_secret: Option<Option<String>>,
}

/// `DELETE /chatParticipant/{chat}/{user}`.
#[derive(Serialize, ToSchema)]
pub struct Removed {
    /// False when the user did not take part in the chat.
    removed: bool,
}

/// `PUT /chatParticipant/{chat}/{user}`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantUnread {
    chat_id: ChatId,
    user_id: UserId,
    has_unread: bool,
}
