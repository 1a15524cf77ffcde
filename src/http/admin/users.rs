//! Admin handlers for accounts: lock (hard lock, every session revoked at once) and unlock.

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::http::Code;
use crate::http::path::Id;
use crate::http::system_key::SystemCaller;
use crate::http::{ApiError, ok};
use crate::ids::UserId;
use crate::state::AppState;

/// `POST /api/v2/admin/users/{id}/lock`: the account can no longer sign in, and every session of
/// it is refused from the next request on, on every node.
pub async fn lock(
    _: SystemCaller,
    state: web::Data<AppState>,
    Id(id): Id<UserId>,
) -> Result<HttpResponse, ApiError> {
    let revoked = state
        .auth
        .hard_lock(id)
        .await?
        .ok_or_else(|| ApiError::of(Code::UserNotFound, "No user has this id"))?;
    // Their API keys stop too: cached lookups are dropped, the next one reads the status.
    state.api_keys.forget_user(id).await?;
    Ok(ok(
        json!({ "id": id, "status": "HardLocked", "sessionsRevoked": revoked }),
    ))
}

/// `POST /api/v2/admin/users/{id}/unlock`: clears a soft or hard lock and the failure count.
pub async fn unlock(
    _: SystemCaller,
    state: web::Data<AppState>,
    Id(id): Id<UserId>,
) -> Result<HttpResponse, ApiError> {
    if !state.auth.unlock(id).await? {
        return Err(ApiError::of(Code::UserNotFound, "No user has this id"));
    }
    Ok(ok(json!({ "id": id, "status": "Unlocked" })))
}
