//! Members: list a team's, change one (role, permissions), remove one or leave.

use actix_web::{HttpResponse, delete, get, put, web};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::http::auth::readers::Reader;
use crate::http::auth::session::{Require, WritePrivate};
use crate::http::bodies::Deleted;
use crate::http::error::ApiError;
use crate::http::paging::{self, Relay};
use crate::http::path::{Id, parse_id};
use crate::http::reply::{Envelope, ok};
use crate::ids::MemberId;
use crate::ids::TeamId;
use crate::state::AppState;
use crate::teams::TeamPermission;
use crate::teams::{Member, MemberChange};

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct MembersQuery {
    /// The team (required).
    #[param(value_type = TeamId)]
    team_id: String,
    /// Page size, 1–100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    take: Option<i64>,
    /// The `endCursor` of the previous page.
    after: Option<String>,
}

/// A team's members, oldest first (anyone who may see the team).
#[utoipa::path(
    tag = "teams",
    params(MembersQuery),
    responses((status = 200, description = "A page of members", body = Envelope<Relay<Member>>)),
    security(("public" = [])),
)]
#[get("/members")]
pub async fn list_members(
    reader: Reader,
    state: web::Data<AppState>,
    query: web::Query<MembersQuery>,
) -> Result<HttpResponse, ApiError> {
    let team = parse_id::<TeamId>(&query.team_id)?;
    let (take, after) = paging::params(query.take, query.after.as_deref())?;
    state.people.teams.require(team, reader.0, None).await?;
    let members = state.people.teams.members(team, take, after).await?;
    Ok(ok(paging::relay(members, take, |m| m.id.to_string())))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpdateMember {
    /// Make or unmake an admin (admins only; the last admin stays one).
    is_admin: Option<bool>,
    /// What the member may do (replaces the list; only what the caller holds).
    permissions: Option<Vec<TeamPermission>>,
}

/// Changes a member's role or permissions (`ManageMembers`; admins for anything of an admin).
#[utoipa::path(
    tag = "teams",
    params(("id" = MemberId, Path, description = "The member's id")),
    request_body = UpdateMember,
    responses((status = 200, description = "The member", body = Envelope<Member>)),
)]
#[put("/member/{id}")]
pub async fn update_member(
    caller: Require<WritePrivate>,
    state: web::Data<AppState>,
    Id(member): Id<MemberId>,
    body: web::Json<UpdateMember>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let change = MemberChange {
        is_admin: body.is_admin,
        permissions: body.permissions,
    };
    let updated = state
        .people
        .teams
        .update_member(caller.user, member, change)
        .await?;
    // An admin made a member again: their team's keys stop at the next request.
    let keys = state.auth.api_keys.team_key_hashes(updated.team_id).await?;
    state.auth.api_keys.forget_team(&keys).await;
    Ok(ok(updated))
}

/// Removes a member (`ManageMembers`; admins for an admin), or leaves (one's own membership).
#[utoipa::path(
    tag = "teams",
    params(("id" = MemberId, Path, description = "The member's id")),
    responses((status = 200, description = "The member was removed", body = Envelope<Deleted<MemberId>>)),
)]
#[delete("/member/{id}")]
pub async fn remove_member(
    caller: Require<WritePrivate>,
    state: web::Data<AppState>,
    Id(member): Id<MemberId>,
) -> Result<HttpResponse, ApiError> {
    let team = state.people.teams.member(member).await?.team_id;
    let keys = state.auth.api_keys.team_key_hashes(team).await?;
    let removed = state
        .people
        .teams
        .remove_member(caller.user, member)
        .await?;
    // The keys they made stop at the next request (read before: the removal may take them).
    state.auth.api_keys.forget_team(&keys).await;
    for chat in removed.chats {
        state.chat.chats.participants_changed(chat).await?;
    }
    Ok(ok(Deleted::new(member)))
}
