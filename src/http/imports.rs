//! The caller's data import (`crate::imports`):
//! - `POST /user/importData` takes an archive made by `GET /user/exportData/{id}` as its body,
//!   checks it whole (422 `InvalidArchive`) and queues its import (one at a time: 409
//!   `ImportInProgress`);
//! - `GET /user/importData/{id}` says how it went.
//!
//! body (read here up to `exports.import_max_bytes`, whatever its content type) ─▶
//! `Imports::start` (`Archive::parse`, then the `import-user-data` job) ─▶ the import, Pending

use actix_web::{HttpResponse, get, post, web};
use futures_util::StreamExt;

use crate::errors::Code;
use crate::http::auth::session::{ReadPrivate, Require, WritePrivate};
use crate::http::error::ApiError;
use crate::http::path::Id;
use crate::http::reply::{Envelope, ok};
use crate::ids::UserImportId;
use crate::imports::UserImport;
use crate::state::AppState;

pub fn config(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(start_import).service(get_import);
}

/// Recreates an archive of a data export under the caller, with new ids: it is checked whole
/// now, and written by a job (poll `GET /user/importData/{id}`).
#[utoipa::path(
    tag = "profile",
    request_body(content = Object, content_type = "application/json",
                  description = "An archive made by `GET /user/exportData/{id}`"),
    responses((status = 200, description = "The import, Pending", body = Envelope<UserImport>)),
)]
#[post("/user/importData")]
pub async fn start_import(
    caller: Require<WritePrivate>,
    state: web::Data<AppState>,
    limits: web::Data<crate::http::input::BodyLimits>,
    mut body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    // The input guard has read and checked the body up to this limit already, whatever its
    // content type; the bound is kept here too so the handler does not depend on it.
    let limit = limits.import_json;
    let mut archive = web::BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|_| {
            ApiError::of(Code::UnreadableBody, "The request body could not be read")
        })?;
        if archive.len() + chunk.len() > limit {
            return Err(ApiError::of(
                Code::BodyTooLarge,
                format!("An archive is at most {limit} bytes (exports.import_max_bytes)"),
            ));
        }
        archive.extend_from_slice(&chunk);
    }
    Ok(ok(state
        .people
        .imports
        .start(caller.user, &archive)
        .await?))
}

/// How one of the caller's imports went: `Pending`, `Done` with what was recreated, or
/// `Failed` with why (nothing of it was kept).
#[utoipa::path(
    tag = "profile",
    params(("id" = UserImportId, Path, description = "The import's id")),
    responses((status = 200, description = "The import", body = Envelope<UserImport>)),
)]
#[get("/user/importData/{id}")]
pub async fn get_import(
    caller: Require<ReadPrivate>,
    state: web::Data<AppState>,
    Id(import): Id<UserImportId>,
) -> Result<HttpResponse, ApiError> {
    Ok(ok(state.people.imports.get(caller.user, import.0).await?))
}
