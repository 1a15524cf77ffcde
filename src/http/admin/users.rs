//! Admin handlers for accounts: lock (hard lock, every session revoked at once) and unlock.

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::http::Code;
use crate::http::system_key::SystemCaller;
use crate::http::{ApiError, ok};
use crate::ids::UserId;
use crate::state::AppState;

fn user_id(path: &str) -> Result<UserId, ApiError> {
    path.parse()
        .map(UserId)
        .map_err(|_| ApiError::of(Code::InvalidUserId, "A user id is a decimal number"))
}

/// `POST /api/v2/admin/users/{id}/lock`: the account can no longer sign in, and every session of
/// it is refused from the next request on, on every node.
pub async fn lock(
    _: SystemCaller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = user_id(&path)?;
    let revoked = crate::auth::accounts::hard_lock(&state.pool, id)
        .await?
        .ok_or_else(|| ApiError::of(Code::UserNotFound, "No user has this id"))?;
    state.auth.publish_revoked(&revoked).await;
    // Their API keys stop too: cached lookups are dropped, the next one reads the status.
    state.api_keys.forget_user(id).await?;
    Ok(ok(
        json!({ "id": id, "status": "HardLocked", "sessionsRevoked": revoked.len() }),
    ))
}

/// `POST /api/v2/admin/users/{id}/unlock`: clears a soft or hard lock and the failure count.
pub async fn unlock(
    _: SystemCaller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = user_id(&path)?;
    if !crate::auth::accounts::unlock(&state.pool, id).await? {
        return Err(ApiError::of(Code::UserNotFound, "No user has this id"));
    }
    Ok(ok(json!({ "id": id, "status": "Unlocked" })))
}
