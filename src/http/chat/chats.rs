//! Chats and their participants: create, read, update, delete, list mine; list, update, remove
//! participants.

use super::*;

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
    let invite_secret = state.chats.invite_secret(chat.id).await?;
    Ok(ok(
        json!({"chat": chat, "participants": participants, "inviteSecret": invite_secret}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct JoinChat {
    invite_secret: String,
}

/// `POST /chat/{id}/join {inviteSecret}`: joins a chat open to anyone with an invite.
pub async fn join_chat(
    caller: Require<WritePrivate>,
    state: web::Data<AppState>,
    Id(chat_id): Id<ChatId>,
    body: web::Json<JoinChat>,
) -> Result<HttpResponse, ApiError> {
    state
        .chats
        .join_with_secret(chat_id, caller.user, &body.invite_secret)
        .await?;
    let chat = state.chats.get(chat_id).await?;
    let participants = state.chats.participants(chat_id).await?;
    Ok(ok(json!({"chat": chat, "participants": participants})))
}

pub async fn get_chat(
    reader: Reader,
    state: web::Data<AppState>,
    Id(chat_id): Id<ChatId>,
) -> Result<HttpResponse, ApiError> {
    let access = state.chats.require(chat_id, reader.0, Need::Read).await?;
    let chat = state.chats.get(chat_id).await?;
    let participants = state.chats.participants(chat_id).await?;
    let mut body = json!({"chat": chat, "participants": participants});
    if access.can_manage() {
        body["inviteSecret"] = json!(state.chats.invite_secret(chat_id).await?);
    }
    Ok(ok(body))
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
    Id(chat_id): Id<ChatId>,
    body: web::Json<UpdateChat>,
) -> Result<HttpResponse, ApiError> {
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
    Id(chat_id): Id<ChatId>,
) -> Result<HttpResponse, ApiError> {
    state
        .chats
        .require(chat_id, Some(caller.user), Need::Manage)
        .await?;
    state.chats.delete(chat_id).await?;
    Ok(ok(json!({"id": chat_id, "deleted": true})))
}

pub async fn list_chats(
    caller: Require<crate::http::auth::session::ReadPrivate>,
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let (take, after) = take_and_after(&query)?;
    let chats = state
        .chats
        .list_mine(caller.user, take, after.map(ChatId))
        .await?;
    Ok(ok(crate::http::paging::relay(chats, take, |c| {
        c.id.to_string()
    })))
}

pub async fn remove_participant(
    caller: Require<WritePrivate>,
    state: web::Data<AppState>,
    Ids(chat_id, user): Ids<ChatId, UserId>,
) -> Result<HttpResponse, ApiError> {
    let access = state.chats.access(chat_id, Some(caller.user)).await?;
    if user != caller.user && !access.can_manage() {
        return Err(ChatError::Forbidden.into());
    }
    let removed = state.chats.remove_participant(chat_id, user).await?;
    Ok(ok(json!({"removed": removed})))
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
    let chat_id: ChatId = id(&path.0, Code::InvalidChatId)?;
    let user: UserId = id(&path.1, Code::InvalidUserId)?;
    if user != caller.user {
        return Err(ChatError::Forbidden.into());
    }
    if !state
        .chats
        .set_unread(chat_id, user, body.has_unread)
        .await?
    {
        return Err(ApiError::of(
            Code::NotAParticipant,
            "You do not take part in this chat",
        ));
    }
    Ok(ok(
        json!({"chatId": chat_id, "userId": user, "hasUnread": body.has_unread}),
    ))
}
