//! Team invites: create, list (mine, or a team's), accept (becomes a member), decline,
//! withdraw (an admin of the team, or the inviter).

use actix_web::{HttpResponse, get, post, web};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::http::auth::session::{ReadPrivate, Require, WritePrivate};
use crate::http::error::ApiError;
use crate::http::paging::{self, Relay};
use crate::http::path::{Id, parse_id};
use crate::http::reply::{Envelope, ok};
use crate::ids::TeamId;
use crate::ids::{MemberInviteId, UserId};
use crate::state::AppState;
use crate::teams::TeamPermission;
use crate::teams::invites::{MemberInvite, NewInvite};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateInvite {
    team_id: TeamId,
    /// The person invited.
    user_id: UserId,
    /// A note for them, at most 4,096 characters.
    #[schema(max_length = 4096)]
    message: Option<String>,
    /// They will be an admin (admins only; default false).
    will_be_admin: Option<bool>,
    /// What they will be allowed (only what the inviter holds; default `["WriteChats"]`).
    will_have_permissions: Option<Vec<TeamPermission>>,
}

/// Invites a person to a team (`InviteMembers`); they get a notification.
///
/// Inviting someone again makes their invite pending again, with what this one names.
#[utoipa::path(
    tag = "teams",
    request_body = CreateInvite,
    responses((status = 200, description = "The invite", body = Envelope<MemberInvite>)),
)]
#[post("/memberInvite")]
pub async fn invite(
    caller: Require<WritePrivate>,
    state: web::Data<AppState>,
    body: web::Json<CreateInvite>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    crate::http::bodies::check_invite_message(body.message.as_deref())?;
    let new = NewInvite {
        team: body.team_id,
        invitee: body.user_id,
        message: body.message,
        will_be_admin: body.will_be_admin.unwrap_or(false),
        will_have_permissions: body.will_have_permissions,
    };
    Ok(ok(state.people.teams.invite(caller.user, new).await?))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct InvitesQuery {
    /// A team's pending invites (`InviteMembers`) instead of the caller's own.
    #[param(value_type = Option<TeamId>)]
    team_id: Option<String>,
    /// Page size, 1–100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    take: Option<i64>,
    /// The `endCursor` of the previous page.
    after: Option<String>,
}

/// Pending invites to the caller (or, with `teamId`, of that team), newest first.
#[utoipa::path(
    tag = "teams",
    params(InvitesQuery),
    responses((status = 200, description = "A page of invites", body = Envelope<Relay<MemberInvite>>)),
)]
#[get("/memberInvites")]
pub async fn list_invites(
    caller: Require<ReadPrivate>,
    state: web::Data<AppState>,
    query: web::Query<InvitesQuery>,
) -> Result<HttpResponse, ApiError> {
    let team = query
        .team_id
        .as_deref()
        .map(parse_id::<TeamId>)
        .transpose()?;
    let (take, after) = paging::params(query.take, query.after.as_deref())?;
    let invites = state
        .people
        .teams
        .invites(caller.user, team, take, after)
        .await?;
    Ok(ok(paging::relay(invites, take, |i| i.id.to_string())))
}

/// Accepts an invite to the caller: they become a member with what it names.
#[utoipa::path(
    tag = "teams",
    params(("id" = MemberInviteId, Path, description = "The invite's id")),
    responses((status = 200, description = "The accepted invite", body = Envelope<MemberInvite>)),
)]
#[post("/memberInvite/{id}/accept")]
pub async fn accept_invite(
    caller: Require<WritePrivate>,
    state: web::Data<AppState>,
    Id(invite_id): Id<MemberInviteId>,
) -> Result<HttpResponse, ApiError> {
    Ok(ok(state
        .people
        .teams
        .answer(caller.user, invite_id, true)
        .await?))
}

/// Declines an invite to the caller.
#[utoipa::path(
    tag = "teams",
    params(("id" = MemberInviteId, Path, description = "The invite's id")),
    responses((status = 200, description = "The declined invite", body = Envelope<MemberInvite>)),
)]
#[post("/memberInvite/{id}/decline")]
pub async fn decline_invite(
    caller: Require<WritePrivate>,
    state: web::Data<AppState>,
    Id(invite_id): Id<MemberInviteId>,
) -> Result<HttpResponse, ApiError> {
    Ok(ok(state
        .people
        .teams
        .answer(caller.user, invite_id, false)
        .await?))
}

/// Withdraws a pending invite of a team: an admin of the team may, and its inviter. It can no
/// longer be accepted (409 `InviteWithdrawn`).
#[utoipa::path(
    tag = "teams",
    params(("id" = MemberInviteId, Path, description = "The invite's id")),
    responses((status = 200, description = "The invite, now `Withdrawn`", body = Envelope<MemberInvite>)),
)]
#[post("/memberInvite/{id}/withdraw")]
pub async fn withdraw_invite(
    caller: Require<WritePrivate>,
    state: web::Data<AppState>,
    Id(invite_id): Id<MemberInviteId>,
) -> Result<HttpResponse, ApiError> {
    Ok(ok(state
        .people
        .teams
        .withdraw(caller.user, invite_id)
        .await?))
}
