//! Messages: post, list, edit, delete, the branch tree, regenerate a bot's answer.

use super::common::*;
use crate::chat::{ChatMessage, TreeNode};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PostMessage {
    chat_id: ChatId,
    /// 1 to 32,768 characters, not only whitespace.
    #[schema(min_length = 1, max_length = 32768)]
    text: String,
    /// The message this one answers (a branch of the chat's tree).
    parent_id: Option<ChatMessageId>,
}

/// Posts a message to a chat; each bot taking part answers it.
///
/// With bots taking part, the caller's credit balance must cover an answer first (402
/// `InsufficientCredits` otherwise).
#[utoipa::path(
    tag = "messages",
    request_body = PostMessage,
    responses((status = 200, description = "The message", body = Envelope<ChatMessage>)),
)]
#[post("/chatMessage")]
pub async fn post_message(
    caller: RequireTeam<WritePrivate>,
    state: web::Data<AppState>,
    body: web::Json<PostMessage>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let text = message_text(body.text)?;
    if caller.team.is_some() {
        caller.within(state.chat.chats.team_of(body.chat_id).await?)?;
    }
    state
        .chat
        .chats
        .require(body.chat_id, Some(caller.user), Need::Write)
        .await?;
    let message = state
        .chat
        .chats
        .post(
            caller.user,
            caller.api_key,
            body.chat_id,
            text,
            body.parent_id,
        )
        .await?;
    Ok(ok(message))
}

/// A chat's messages, newest first (`chatId` required).
#[utoipa::path(
    tag = "messages",
    params(PageQuery),
    responses((status = 200, description = "A page of messages", body = Envelope<Relay<ChatMessage>>)),
    security((), ("cookie" = []), ("bearer" = []), ("apiKey" = [])),
)]
#[get("/chatMessages")]
pub async fn list_messages(
    req: HttpRequest,
    session: SessionReader,
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let reader = session.reader;
    let (take, after) = take_and_after(&query)?;
    let chat_id: ChatId = id(
        query
            .chat_id
            .as_deref()
            .ok_or_else(|| ApiError::of(Code::MissingChatId, "chatId is required"))?,
        Code::InvalidChatId,
    )?;
    if reader.team.is_some() {
        // Boxed (team keys only): see `AuthService::authenticate`.
        reader.within(Box::pin(state.chat.chats.team_of(chat_id)).await?)?;
    }
    let before = after.map(ChatMessageId);
    let messages = match state
        .chat
        .chats
        .readable_messages(chat_id, reader.user, take, before, session.confirm)
        .await
    {
        // Signed out meanwhile: read as nobody, as a token refused up front would.
        Err(ChatError::SessionEnded) => {
            let nobody = session.ended(&req);
            Box::pin(
                state
                    .chat
                    .chats
                    .readable_messages(chat_id, nobody.user, take, before, None),
            )
            .await?
        }
        read => read?,
    };
    Ok(ok(crate::http::paging::relay(messages, take, |m| {
        m.id.to_string()
    })))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditMessage {
    /// 1 to 32,768 characters, not only whitespace.
    #[schema(min_length = 1, max_length = 32768)]
    text: String,
}

/// Edits the caller's own message (while they still take part in the chat).
#[utoipa::path(
    tag = "messages",
    params(("id" = ChatMessageId, Path, description = "The message's id")),
    request_body = EditMessage,
    responses((status = 200, description = "The message as edited", body = Envelope<ChatMessage>)),
)]
#[put("/chatMessage/{id}")]
pub async fn edit_message(
    caller: Require<WritePrivate>,
    state: web::Data<AppState>,
    Id(message_id): Id<ChatMessageId>,
    body: web::Json<EditMessage>,
) -> Result<HttpResponse, ApiError> {
    let text = message_text(body.into_inner().text)?;
    let (message, access) = visible_message(&state, message_id, caller.user).await?;
    // An author who has left (or was removed from) the chat no longer writes in it.
    if message.user_id != Some(caller.user) || !access.can_write() {
        return Err(ChatError::Forbidden.into());
    }
    Ok(ok(state.chat.chats.edit(message_id, text).await?))
}

/// Deletes a message: its author (while taking part) or a manager of the chat.
#[utoipa::path(
    tag = "messages",
    params(("id" = ChatMessageId, Path, description = "The message's id")),
    responses((status = 200, description = "The message was deleted", body = Envelope<Deleted<ChatMessageId>>)),
)]
#[delete("/chatMessage/{id}")]
pub async fn delete_message(
    caller: Require<WritePrivate>,
    state: web::Data<AppState>,
    Id(message_id): Id<ChatMessageId>,
) -> Result<HttpResponse, ApiError> {
    let (message, access) = visible_message(&state, message_id, caller.user).await?;
    let author = message.user_id == Some(caller.user);
    let may = access.can_manage() || (author && access.can_write());
    if !may {
        return Err(ChatError::Forbidden.into());
    }
    state.chat.chats.remove(&message).await?;
    Ok(ok(Deleted::new(message_id)))
}

/// A message and the caller's access to its chat; `MessageNotFound` when the caller may not
/// read that chat (a stranger learns nothing about which ids exist).
async fn visible_message(
    state: &AppState,
    id: ChatMessageId,
    user: crate::ids::UserId,
) -> Result<(crate::chat::ChatMessage, crate::chat::access::ChatAccess), ApiError> {
    let message = state.chat.chats.message(id).await?;
    let access = state.chat.chats.access(message.chat_id, Some(user)).await?;
    if !access.can_read() {
        return Err(ChatError::MessageNotFound.into());
    }
    Ok((message, access))
}

/// The most nodes `GET /chatMessageTree` answers.
const TREE_LIMIT: i64 = 10_000;

/// A chat's branch structure: every message's parent and version, without the text.
///
/// Oldest first, at most 10,000 nodes. `chatId` is required; `take` and `after` are not used.
#[utoipa::path(
    tag = "messages",
    params(PageQuery),
    responses((status = 200, description = "The tree's nodes (at most 10,000)", body = Envelope<MessageTree>)),
    security((), ("cookie" = []), ("bearer" = []), ("apiKey" = [])),
)]
#[get("/chatMessageTree")]
pub async fn message_tree(
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
    let mut nodes = state.chat.chats.tree(chat_id, TREE_LIMIT + 1).await?;
    let truncated = nodes.len() as i64 > TREE_LIMIT;
    nodes.truncate(TREE_LIMIT as usize);
    Ok(ok(MessageTree { nodes, truncated }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Regenerate {
    /// A bot's answer.
    message_id: ChatMessageId,
}

/// Asks the bot that wrote an answer for another version of it.
///
/// The new version is a sibling (same parent, next `versionIndex`); it is queued and arrives
/// over the WebSocket like any bot answer.
#[utoipa::path(
    tag = "messages",
    request_body = Regenerate,
    responses((status = 200, description = "The new version was queued", body = Envelope<Regenerating>)),
)]
#[post("/regenerateResponse")]
pub async fn regenerate(
    caller: Require<WritePrivate>,
    state: web::Data<AppState>,
    body: web::Json<Regenerate>,
) -> Result<HttpResponse, ApiError> {
    let (answer, access) = visible_message(&state, body.message_id, caller.user).await?;
    if !access.can_write() {
        return Err(ChatError::Forbidden.into());
    }
    let version = state
        .chat
        .chats
        .regenerate(caller.user, caller.api_key, &answer)
        .await?;
    Ok(ok(Regenerating {
        queued: true,
        parent_id: answer.parent_id,
        version,
    }))
}

// Bodies.

/// `GET /chatMessageTree`.
#[derive(Serialize, ToSchema)]
pub struct MessageTree {
    nodes: Vec<TreeNode>,
    /// The chat has more than 10,000 messages; only the oldest 10,000 are listed.
    truncated: bool,
}

/// `POST /regenerateResponse`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Regenerating {
    /// Always true.
    queued: bool,
    /// The message the new version answers.
    parent_id: Option<ChatMessageId>,
    /// The version number queued (`versionIndex` of the answer to come).
    version: i32,
}
