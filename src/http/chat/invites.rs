//! Invites: create, list mine, accept (becomes a participant), decline.

use super::*;

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
        return Err(ApiError::of(
            Code::InvalidMessage,
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
    caller: Require<crate::http::auth::session::ReadPrivate>,
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let (take, after) = take_and_after(&query)?;
    let invites = state.chats.invites_for(caller.user, take, after).await?;
    Ok(ok(crate::http::paging::relay(invites, take, |i| {
        i.id.to_string()
    })))
}

async fn answer_invite(
    caller: Require<WritePrivate>,
    state: web::Data<AppState>,
    Id(invite): Id<ChatInviteId>,
    accept: bool,
) -> Result<HttpResponse, ApiError> {
    Ok(ok(state
        .chats
        .answer_invite(caller.user, invite, accept)
        .await?))
}

pub async fn accept_invite(
    caller: Require<WritePrivate>,
    state: web::Data<AppState>,
    invite: Id<ChatInviteId>,
) -> Result<HttpResponse, ApiError> {
    answer_invite(caller, state, invite, true).await
}

pub async fn decline_invite(
    caller: Require<WritePrivate>,
    state: web::Data<AppState>,
    invite: Id<ChatInviteId>,
) -> Result<HttpResponse, ApiError> {
    answer_invite(caller, state, invite, false).await
}
