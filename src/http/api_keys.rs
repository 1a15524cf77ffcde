//! `/api/v2/apiKey*`: a signed-in user creates (the secret is in the answer once), lists,
//! updates, disables and deletes their API keys. Listing is also open to keys with `ReadAuth`.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::auth::session::{AuthUser, ReadAuth, Require};
use super::{ApiError, ok};
use crate::auth::api_keys::{KeyChanges, NewApiKey, Permission};
use crate::http::Code;
use crate::http::path::Id;
use crate::ids::ApiKeyId;
use crate::state::AppState;

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/apiKey").route(web::post().to(create)))
        .service(web::resource("/apiKeys").route(web::get().to(list)))
        .service(
            web::resource("/apiKey/{id}")
                .route(web::put().to(update))
                .route(web::delete().to(delete)),
        );
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateBody {
    name: String,
    permissions: Vec<String>,
    limit_hard: i64,
    limit_soft: Option<i64>,
    stop_at_limit: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpdateBody {
    name: Option<String>,
    permissions: Option<Vec<String>>,
    limit_hard: Option<i64>,
    limit_soft: Option<i64>,
    stop_at_limit: Option<bool>,
    disabled: Option<bool>,
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

/// `POST /api/v2/apiKey {name, permissions, limitHard, limitSoft?, stopAtLimit?}`
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
    let (row, secret) = match state.api_keys.create(&state.ids, user.id, key).await {
        Ok(created) => created,
        Err(e @ crate::auth::api_keys::CreateKeyError::TooMany(_)) => {
            return Err(ApiError::of(Code::TooManyApiKeys, e.to_string()));
        }
        Err(crate::auth::api_keys::CreateKeyError::Sql(e)) => return Err(e.into()),
    };
    Ok(ok(json!({ "apiKey": row, "key": secret })))
}

/// `GET /api/v2/apiKeys`
pub async fn list(
    caller: Require<ReadAuth>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    Ok(ok(state.api_keys.list(caller.user).await?))
}

/// `PUT /api/v2/apiKey/{id}`: any of name, permissions, limits, stopAtLimit, disabled.
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
    match state.api_keys.update(user.id, id, changes).await? {
        Some(row) => Ok(ok(row)),
        None => Err(ApiError::of(
            Code::ApiKeyNotFound,
            "You have no API key with this id",
        )),
    }
}

/// `DELETE /api/v2/apiKey/{id}`
pub async fn delete(
    user: AuthUser,
    state: web::Data<AppState>,
    Id(id): Id<ApiKeyId>,
) -> Result<HttpResponse, ApiError> {
    if state.api_keys.delete(user.id, id).await? {
        Ok(ok(json!({ "id": id.to_string(), "deleted": true })))
    } else {
        Err(ApiError::of(
            Code::ApiKeyNotFound,
            "You have no API key with this id",
        ))
    }
}
