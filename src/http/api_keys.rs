//! `/api/v2/apiKey*`: a signed-in user creates (the secret is in the answer once), lists,
//! updates, disables and deletes their API keys — and, as an admin of a team, that team's
//! (`teamId`; see `auth::api_keys` for what a team's key may do). Listing is also open to keys
//! with `ReadAuth`.

use actix_web::{HttpResponse, delete, get, post, put, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::session::{AuthUser, ReadAuth, Require};
use super::bodies::Deleted;
use super::error::ApiError;
use super::reply::{Envelope, ok};
use crate::auth::api_keys::{ApiKeyRow, KeyChanges, NewApiKey, Permission};
use crate::errors::Code;
use crate::http::path::{Id, parse_id};
use crate::ids::{ApiKeyId, TeamId};
use crate::state::AppState;

pub fn config(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(create)
        .service(list)
        .service(update)
        .service(delete);
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateBody {
    /// 1–128 characters (trimmed).
    name: String,
    /// A key of this team (the caller must be one of its admins): it acts as the caller within
    /// the team while they stay an admin, and spends the team's credits.
    team_id: Option<TeamId>,
    /// What the key may do; repeats are ignored.
    #[schema(value_type = Vec<Permission>)]
    permissions: Vec<String>,
    /// The credits the key may spend, at least 0.
    limit_hard: i64,
    /// A warning threshold, at most `limitHard`.
    limit_soft: Option<i64>,
    /// Whether the key stops working at the hard limit (default `true`).
    stop_at_limit: Option<bool>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpdateBody {
    /// 1–128 characters (trimmed).
    name: Option<String>,
    /// Replaces the key's permissions.
    #[schema(value_type = Option<Vec<Permission>>)]
    permissions: Option<Vec<String>>,
    /// At least 0.
    limit_hard: Option<i64>,
    /// At most the (new or stored) hard limit.
    limit_soft: Option<i64>,
    stop_at_limit: Option<bool>,
    /// `true` disables the key, `false` enables it again.
    disabled: Option<bool>,
}

/// A new key: its row and the secret, shown this once.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedApiKey {
    api_key: ApiKeyRow,
    /// The secret (`vrk_…`), for `X-API-Key`; it is never shown again.
    key: String,
}

fn parse_name(name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 128 {
        return Err(ApiError::of(
            Code::InvalidName,
            "A key name is 1-128 characters",
        ));
    }
    Ok(name.to_owned())
}

fn parse_permissions(names: &[String]) -> Result<Vec<Permission>, ApiError> {
    let mut permissions = Vec::with_capacity(names.len());
    for name in names {
        let permission = Permission::parse(name).ok_or_else(|| {
            ApiError::of(
                Code::InvalidPermission,
                format!("Unknown permission {name:?}"),
            )
        })?;
        if !permissions.contains(&permission) {
            permissions.push(permission);
        }
    }
    Ok(permissions)
}

fn check_limits(hard: Option<i64>, soft: Option<i64>) -> Result<(), ApiError> {
    if hard.is_some_and(|h| h < 0)
        || soft.is_some_and(|s| s < 0)
        || matches!((hard, soft), (Some(h), Some(s)) if s > h)
    {
        return Err(ApiError::of(
            Code::InvalidLimits,
            "Limits are at least 0 and the soft limit is at most the hard one",
        ));
    }
    Ok(())
}

/// Creates an API key for the signed-in user.
///
/// The answer holds the secret, which is never shown again. Only a signed-in session may create
/// keys (not an API key).
#[utoipa::path(
    tag = "apiKeys",
    request_body = CreateBody,
    responses((status = 200, description = "The new key with its secret", body = Envelope<CreatedApiKey>)),
    security(("cookie" = []), ("bearer" = [])),
)]
#[post("/apiKey")]
pub async fn create(
    user: AuthUser,
    state: web::Data<AppState>,
    body: web::Json<CreateBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    check_limits(Some(body.limit_hard), body.limit_soft)?;
    let key = NewApiKey {
        name: parse_name(&body.name)?,
        permissions: parse_permissions(&body.permissions)?,
        limit_hard: body.limit_hard,
        limit_soft: body.limit_soft,
        stop_at_limit: body.stop_at_limit.unwrap_or(true),
    };
    if let Some(team) = body.team_id {
        // A team the caller may not see is not found (as every team route answers).
        state
            .people
            .teams
            .require(team, Some(user.id), None)
            .await?;
    }
    let created = state
        .auth
        .api_keys
        .create(&state.infra.ids, user.id, body.team_id, key)
        .await;
    let (row, secret) = created?;
    Ok(ok(CreatedApiKey {
        api_key: row,
        key: secret,
    }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// A team's keys instead (its admins only).
    #[param(value_type = Option<TeamId>)]
    team_id: Option<String>,
}

/// The caller's API keys, or a team's to its admins (never their secrets).
///
/// Open to a signed-in session, or an API key holding `ReadAuth`.
#[utoipa::path(
    tag = "apiKeys",
    params(ListQuery),
    responses((status = 200, description = "The keys", body = Envelope<Vec<ApiKeyRow>>)),
)]
#[get("/apiKeys")]
pub async fn list(
    caller: Require<ReadAuth>,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let team = query
        .team_id
        .as_deref()
        .map(parse_id::<TeamId>)
        .transpose()?;
    if let Some(team) = team {
        state.people.teams.require_admin(team, caller.user).await?;
    }
    Ok(ok(state.auth.api_keys.list(caller.user, team).await?))
}

/// Changes one of the signed-in user's API keys (or a key of a team they are an admin of).
///
/// Any of name, permissions, limits, stopAtLimit, disabled; fields left out stay as they are.
#[utoipa::path(
    tag = "apiKeys",
    params(("id" = ApiKeyId, Path, description = "The key's id")),
    request_body = UpdateBody,
    responses(
        (status = 200, description = "The key as it is now", body = Envelope<ApiKeyRow>),
        (status = 404, description = "The caller has no key with this id (`ApiKeyNotFound`)", body = crate::http::openapi::ErrorEnvelope),
    ),
    security(("cookie" = []), ("bearer" = [])),
)]
#[put("/apiKey/{id}")]
pub async fn update(
    user: AuthUser,
    state: web::Data<AppState>,
    Id(id): Id<ApiKeyId>,
    body: web::Json<UpdateBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    check_limits(body.limit_hard, body.limit_soft)?;
    let changes = KeyChanges {
        name: body.name.as_deref().map(parse_name).transpose()?,
        permissions: body
            .permissions
            .as_deref()
            .map(parse_permissions)
            .transpose()?,
        limit_hard: body.limit_hard,
        limit_soft: body.limit_soft.map(Some),
        stop_at_limit: body.stop_at_limit,
        disabled: body.disabled,
    };
    // The table's soft-below-hard check catches a soft limit above the stored hard one; its
    // constraint maps to InvalidLimits (http::error's table).
    match state.auth.api_keys.update(user.id, id, changes).await? {
        Some(row) => Ok(ok(row)),
        None => Err(ApiError::of(
            Code::ApiKeyNotFound,
            "You have no API key with this id",
        )),
    }
}

/// Deletes one of the signed-in user's API keys (or a key of a team they are an admin of); it
/// stops working at once.
#[utoipa::path(
    tag = "apiKeys",
    params(("id" = ApiKeyId, Path, description = "The key's id")),
    responses(
        (status = 200, description = "The key is gone", body = Envelope<Deleted<ApiKeyId>>),
        (status = 404, description = "The caller has no key with this id (`ApiKeyNotFound`)", body = crate::http::openapi::ErrorEnvelope),
    ),
    security(("cookie" = []), ("bearer" = [])),
)]
#[delete("/apiKey/{id}")]
pub async fn delete(
    user: AuthUser,
    state: web::Data<AppState>,
    Id(id): Id<ApiKeyId>,
) -> Result<HttpResponse, ApiError> {
    if state.auth.api_keys.delete(user.id, id).await? {
        Ok(ok(Deleted::new(id)))
    } else {
        Err(ApiError::of(
            Code::ApiKeyNotFound,
            "You have no API key with this id",
        ))
    }
}
