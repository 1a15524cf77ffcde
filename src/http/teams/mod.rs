//! `/api/v2/team*`, `/member*`: teams, their members and invites. Who may do what is decided in
//! `teams::access` (one place); handlers parse, and `TeamService` asks it.
//!
//! - `POST /team {name, handle?, isPrivate?}` · `GET /team/{id}` · `PUT /team/{id}` ·
//!   `DELETE /team/{id}` (admins) · `GET /teams?take&after` (mine, newest first)
//! - `GET /members?teamId&take&after` · `PUT /member/{id} {isAdmin?, permissions?}` ·
//!   `DELETE /member/{id}` (leave, or remove someone)
//! - `POST /memberInvite {teamId, userId, message?, willBeAdmin?, willHavePermissions?}` ·
//!   `GET /memberInvites?teamId?` · `POST /memberInvite/{id}/accept` · `…/decline` ·
//!   `…/withdraw` (admins, the inviter)
//!
//! A team chat is made with `POST /chat {teamId}` (`CreateChats`).

mod invites;
mod members;

use actix_web::{HttpResponse, delete, get, post, put, web};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::domain::{ChatName, Handle};
use crate::errors::Code;
use crate::http::auth::readers::Reader;
use crate::http::auth::session::{ReadPrivate, Require, WritePrivate};
use crate::http::bodies::Deleted;
use crate::http::error::ApiError;
use crate::http::paging::{self, Relay};
use crate::http::path::Id;
use crate::http::reply::{Envelope, ok};
use crate::ids::TeamId;
use crate::state::AppState;
use crate::teams::{NewTeam, Team, TeamChange, TeamError, TeamPermission};

pub fn config(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(create_team)
        .service(get_team)
        .service(update_team)
        .service(delete_team)
        .service(list_teams)
        .service(members::list_members)
        .service(members::update_member)
        .service(members::remove_member)
        .service(invites::invite)
        .service(invites::list_invites)
        .service(invites::accept_invite)
        .service(invites::decline_invite)
        .service(invites::withdraw_invite);
}

/// A team's name: 1 to 128 characters once trimmed.
fn team_name(name: &str) -> Result<String, ApiError> {
    let name = ChatName::parse(name)
        .map(ChatName::into_string)
        .ok()
        .filter(|n| !n.is_empty());
    name.ok_or_else(|| ApiError::of(Code::InvalidName, "A team name is 1 to 128 characters"))
}

fn team_handle(handle: &str) -> Result<String, ApiError> {
    Handle::parse(handle)
        .map(|h| h.as_str().to_owned())
        .map_err(|_| {
            ApiError::of(
                Code::InvalidHandle,
                "A handle is 3 to 16 letters, digits or underscores",
            )
        })
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateTeam {
    /// 1 to 128 characters.
    #[schema(max_length = 128)]
    name: String,
    /// 3 to 16 letters, digits or underscores; unique among teams, in any case.
    handle: Option<String>,
    /// A private team is seen only by its members (default false).
    is_private: Option<bool>,
}

/// Makes a team; the caller is its first admin.
#[utoipa::path(
    tag = "teams",
    request_body = CreateTeam,
    responses((status = 200, description = "The team", body = Envelope<Team>)),
)]
#[post("/team")]
pub async fn create_team(
    caller: Require<WritePrivate>,
    state: web::Data<AppState>,
    body: web::Json<CreateTeam>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let new = NewTeam {
        name: team_name(&body.name)?,
        handle: body.handle.as_deref().map(team_handle).transpose()?,
        is_private: body.is_private.unwrap_or(false),
    };
    Ok(ok(state.people.teams.create(caller.user, new).await?))
}

/// A team: anyone may see a team that is not private; a private one only its members.
#[utoipa::path(
    tag = "teams",
    params(("id" = TeamId, Path, description = "The team's id")),
    responses((status = 200, description = "The team", body = Envelope<Team>)),
    security(("public" = [])),
)]
#[get("/team/{id}")]
pub async fn get_team(
    reader: Reader,
    state: web::Data<AppState>,
    Id(team): Id<TeamId>,
) -> Result<HttpResponse, ApiError> {
    state.people.teams.require(team, reader.0, None).await?;
    Ok(ok(state.people.teams.get(team).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpdateTeam {
    #[schema(max_length = 128)]
    name: Option<String>,
    /// A new handle; `""` removes it.
    handle: Option<String>,
    is_private: Option<bool>,
}

/// Changes a team's name, handle or privacy (`UpdateTeam`).
#[utoipa::path(
    tag = "teams",
    params(("id" = TeamId, Path, description = "The team's id")),
    request_body = UpdateTeam,
    responses((status = 200, description = "The team", body = Envelope<Team>)),
)]
#[put("/team/{id}")]
pub async fn update_team(
    caller: Require<WritePrivate>,
    state: web::Data<AppState>,
    Id(team): Id<TeamId>,
    body: web::Json<UpdateTeam>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let change = TeamChange {
        name: body.name.as_deref().map(team_name).transpose()?,
        handle: body
            .handle
            .as_deref()
            .map(|h| (!h.is_empty()).then(|| team_handle(h)).transpose())
            .transpose()?,
        is_private: body.is_private,
    };
    state
        .people
        .teams
        .require(team, Some(caller.user), Some(TeamPermission::UpdateTeam))
        .await?;
    Ok(ok(state.people.teams.update(team, change).await?))
}

/// Deletes a team with its members, invites and chats (admins only).
#[utoipa::path(
    tag = "teams",
    params(("id" = TeamId, Path, description = "The team's id")),
    responses((status = 200, description = "The team was deleted", body = Envelope<Deleted<TeamId>>)),
)]
#[delete("/team/{id}")]
pub async fn delete_team(
    caller: Require<WritePrivate>,
    state: web::Data<AppState>,
    Id(team): Id<TeamId>,
) -> Result<HttpResponse, ApiError> {
    state.people.teams.require_admin(team, caller.user).await?;
    let keys = state.auth.api_keys.team_key_hashes(team).await?;
    if !state.people.teams.delete(team).await? {
        return Err(TeamError::TeamNotFound.into());
    }
    state.auth.api_keys.forget_team(&keys).await;
    Ok(ok(Deleted::new(team)))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page size, 1–100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    take: Option<i64>,
    /// The `endCursor` of the previous page.
    after: Option<String>,
}

/// The teams the caller is a member of, newest first.
#[utoipa::path(
    tag = "teams",
    params(PageQuery),
    responses((status = 200, description = "A page of teams", body = Envelope<Relay<Team>>)),
)]
#[get("/teams")]
pub async fn list_teams(
    caller: Require<ReadPrivate>,
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let (take, after) = paging::params(query.take, query.after.as_deref())?;
    let teams = state.people.teams.mine(caller.user, take, after).await?;
    Ok(ok(paging::relay(teams, take, |t| t.id.to_string())))
}
