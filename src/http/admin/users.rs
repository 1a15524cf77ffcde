//! Admin handlers for accounts: lock (hard lock, every session revoked at once) and unlock.

use actix_web::{HttpResponse, post, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::errors::Code;
use crate::http::error::ApiError;
use crate::http::path::Id;
use crate::http::reply::{Envelope, ok};
use crate::http::system_key::SystemCaller;
use crate::ids::UserId;
use crate::state::AppState;

/// `POST /api/v2/admin/users/{id}/lock`: the account can no longer sign in, and every session of
/// it is refused from the next request on, on every node.
#[utoipa::path(
    tag = "admin",
    params(("id" = UserId, Path, description = "The user's id")),
    responses((status = 200, description = "Locked; this many sessions revoked", body = Envelope<Locked>)),
    security(("apiKey" = []), ("bearer" = [])),
)]
#[post("/admin/users/{id}/lock")]
pub async fn lock(
    _: SystemCaller,
    state: web::Data<AppState>,
    Id(id): Id<UserId>,
) -> Result<HttpResponse, ApiError> {
    let revoked = state
        .auth
        .sessions
        .hard_lock(id)
        .await?
        .ok_or_else(|| ApiError::of(Code::UserNotFound, "No user has this id"))?;
    // Their API keys stop too: cached lookups are dropped, the next one reads the status.
    state.auth.api_keys.forget_user(id).await?;
    Ok(ok(Locked {
        id,
        status: "HardLocked",
        sessions_revoked: Some(revoked),
    }))
}

/// `POST /api/v2/admin/users/{id}/unlock`: clears a soft or hard lock and the failure count.
#[utoipa::path(
    tag = "admin",
    params(("id" = UserId, Path, description = "The user's id")),
    responses((status = 200, description = "Unlocked", body = Envelope<Locked>)),
    security(("apiKey" = []), ("bearer" = [])),
)]
#[post("/admin/users/{id}/unlock")]
pub async fn unlock(
    _: SystemCaller,
    state: web::Data<AppState>,
    Id(id): Id<UserId>,
) -> Result<HttpResponse, ApiError> {
    if !state.auth.sessions.unlock(id).await? {
        return Err(ApiError::of(Code::UserNotFound, "No user has this id"));
    }
    Ok(ok(Locked {
        id,
        status: "Unlocked",
        sessions_revoked: None,
    }))
}

/// An account's lock state after an admin action.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Locked {
    id: UserId,
    /// `HardLocked` or `Unlocked`.
    #[schema(value_type = String)]
    status: &'static str,
    /// Sessions revoked by a lock (absent on unlock).
    #[serde(skip_serializing_if = "Option::is_none")]
    sessions_revoked: Option<usize>,
}
