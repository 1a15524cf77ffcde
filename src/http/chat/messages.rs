//! Messages: post, list, edit, delete, the branch tree, regenerate a bot's answer.

use super::*;

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
    let text = message_text(body.text)?;
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
            text,
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
            .ok_or_else(|| ApiError::of(Code::MissingChatId, "chatId is required"))?,
        Code::InvalidChatId,
    )?;
    let messages = state
        .chats
        .readable_messages(chat_id, reader.0, take, after.map(ChatMessageId))
        .await?;
    Ok(ok(crate::http::paging::relay(messages, take, |m| {
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
    Id(message_id): Id<ChatMessageId>,
    body: web::Json<EditMessage>,
) -> Result<HttpResponse, ApiError> {
    let text = message_text(body.into_inner().text)?;
    let (message, access) = visible_message(&state, message_id, caller.user).await?;
    // An author who has left (or was removed from) the chat no longer writes in it.
    if message.user_id != Some(caller.user) || !access.can_write() {
        return Err(ChatError::Forbidden.into());
    }
    Ok(ok(state.chats.edit(message_id, text).await?))
}

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
    state.chats.remove(&message).await?;
    Ok(ok(json!({"id": message_id, "deleted": true})))
}

/// A message and the caller's access to its chat; `MessageNotFound` when the caller may not
/// read that chat (a stranger learns nothing about which ids exist).
async fn visible_message(
    state: &AppState,
    id: ChatMessageId,
    user: crate::ids::UserId,
) -> Result<(crate::chat::ChatMessage, crate::chat::access::ChatAccess), ApiError> {
    let message = state.chats.message(id).await?;
    let access = state.chats.access(message.chat_id, Some(user)).await?;
    if !access.can_read() {
        return Err(ChatError::MessageNotFound.into());
    }
    Ok((message, access))
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
    let (answer, access) = visible_message(&state, body.message_id, caller.user).await?;
    if !access.can_write() {
        return Err(ChatError::Forbidden.into());
    }
    let version = state
        .chats
        .regenerate(caller.user, caller.api_key, &answer)
        .await?;
    Ok(ok(
        json!({"queued": true, "parentId": answer.parent_id, "version": version}),
    ))
}
