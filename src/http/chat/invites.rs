//! Invites: create, list mine, accept (becomes a participant), decline, withdraw (the chat's
//! managers, or the inviter).

use super::common::*;
use crate::chat::invites::ChatInvite;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateInvite {
    chat_id: ChatId,
    /// The person invited (bots are added to a chat directly instead).
    user_id: UserId,
    /// A note for them, at most 4,096 characters.
    #[schema(max_length = 4096)]
    message: Option<String>,
}

/// Invites a person to a chat the caller may write in; they get a notification.
///
/// Inviting someone again makes their invite pending again.
#[utoipa::path(
    tag = "invites",
    request_body = CreateInvite,
    responses((status = 200, description = "The invite", body = Envelope<ChatInvite>)),
)]
#[post("/chatInvite")]
pub async fn invite(
    caller: Require<WritePrivate>,
    state: web::Data<AppState>,
    body: web::Json<CreateInvite>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    crate::http::bodies::check_invite_message(body.message.as_deref())?;
    state
        .chat
        .chats
        .require(body.chat_id, Some(caller.user), Need::Write)
        .await?;
    let created = state
        .chat
        .chats
        .invite(caller.user, body.chat_id, body.user_id, body.message)
        .await?;
    Ok(ok(created))
}

/// The caller's pending invites, newest first.
#[utoipa::path(
    tag = "invites",
    params(PageQuery),
    responses((status = 200, description = "A page of invites", body = Envelope<Relay<ChatInvite>>)),
)]
#[get("/chatInvites")]
pub async fn list_invites(
    caller: Require<crate::http::auth::session::ReadPrivate>,
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let (take, after) = take_and_after(&query)?;
    let invites = state
        .chat
        .chats
        .invites_for(caller.user, take, after)
        .await?;
    Ok(ok(crate::http::paging::relay(invites, take, |i| {
        i.id.to_string()
    })))
}

async fn answer_invite(
    caller: Require<WritePrivate>,
    state: web::Data<AppState>,
    Id(invite_id): Id<ChatInviteId>,
    accept: bool,
) -> Result<HttpResponse, ApiError> {
    Ok(ok(state
        .chat
        .chats
        .answer_invite(caller.user, invite_id, accept)
        .await?))
}

/// Accepts one of the caller's pending invites: they become a participant of the chat.
#[utoipa::path(
    tag = "invites",
    params(("id" = ChatInviteId, Path, description = "The invite's id")),
    responses((status = 200, description = "The invite, now `Accepted`", body = Envelope<ChatInvite>)),
)]
#[post("/chatInvite/{id}/accept")]
pub async fn accept_invite(
    caller: Require<WritePrivate>,
    state: web::Data<AppState>,
    invite_id: Id<ChatInviteId>,
) -> Result<HttpResponse, ApiError> {
    answer_invite(caller, state, invite_id, true).await
}

/// Declines one of the caller's pending invites.
#[utoipa::path(
    tag = "invites",
    params(("id" = ChatInviteId, Path, description = "The invite's id")),
    responses((status = 200, description = "The invite, now `Declined`", body = Envelope<ChatInvite>)),
)]
#[post("/chatInvite/{id}/decline")]
pub async fn decline_invite(
    caller: Require<WritePrivate>,
    state: web::Data<AppState>,
    invite_id: Id<ChatInviteId>,
) -> Result<HttpResponse, ApiError> {
    answer_invite(caller, state, invite_id, false).await
}

/// Withdraws a pending invite to a chat: the chat's managers may, and its inviter. It can no
/// longer be accepted (409 `InviteWithdrawn`).
#[utoipa::path(
    tag = "invites",
    params(("id" = ChatInviteId, Path, description = "The invite's id")),
    responses((status = 200, description = "The invite, now `Withdrawn`", body = Envelope<ChatInvite>)),
)]
#[post("/chatInvite/{id}/withdraw")]
pub async fn withdraw_invite(
    caller: Require<WritePrivate>,
    state: web::Data<AppState>,
    Id(invite_id): Id<ChatInviteId>,
) -> Result<HttpResponse, ApiError> {
    Ok(ok(state
        .chat
        .chats
        .withdraw_invite(caller.user, invite_id)
        .await?))
}
