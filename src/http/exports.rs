//! The caller's data export (`crate::exports`):
//! - `POST /user/exportData` starts one (one at a time: 409 `ExportInProgress`);
//! - `GET /user/exportData/{id}` downloads it once it is `Ready`, once (then its chunks are
//!   gone; asking again is 409 `ExportNotReady` naming its status);
//! - `POST /user/importData` takes such an archive as its body, checks it whole (422
//!   `InvalidArchive`) and queues its import (`crate::imports`; one at a time: 409
//!   `ImportInProgress`); `GET /user/importData/{id}` says how it went.

use actix_web::{HttpResponse, get, post, web};
use futures_util::StreamExt;

use crate::exports::UserExport;
use crate::http::auth::session::{ReadPrivate, Require, WritePrivate};
use crate::http::path::Id;
use crate::http::{ApiError, Code, Envelope, ok};
use crate::ids::{UserExportId, UserImportId};
use crate::imports::UserImport;
use crate::state::AppState;

pub fn config(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(start)
        .service(download)
        .service(start_import)
        .service(get_import);
}

/// Starts an export of the caller's data; poll the download until it is ready.
#[utoipa::path(
    tag = "profile",
    responses((status = 200, description = "The export, Pending", body = Envelope<UserExport>)),
    security(("cookie" = []), ("bearer" = []), ("apiKey" = [])),
)]
#[post("/user/exportData")]
pub async fn start(
    caller: Require<WritePrivate>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    Ok(ok(state.exports.start(caller.user).await?))
}

/// Downloads a ready export (a JSON archive), once.
#[utoipa::path(
    tag = "profile",
    params(("id" = UserExportId, Path, description = "The export's id")),
    responses((status = 200, description = "The archive", content_type = "application/json", body = Object)),
    security(("cookie" = []), ("bearer" = []), ("apiKey" = [])),
)]
#[get("/user/exportData/{id}")]
pub async fn download(
    caller: Require<ReadPrivate>,
    state: web::Data<AppState>,
    Id(export): Id<UserExportId>,
) -> Result<HttpResponse, ApiError> {
    let chunks = state.exports.claim(caller.user, export.0).await?;
    let exports = state.exports.clone();
    // Chunk by chunk from the database: the archive is never whole in memory.
    let body = futures_util::stream::unfold(0, move |seq| {
        let exports = exports.clone();
        async move {
            if seq >= chunks {
                return None;
            }
            let chunk = exports
                .chunk(export.0, seq, seq + 1 == chunks)
                .await
                .map(web::Bytes::from)
                .map_err(ApiError::from);
            Some((chunk, seq + 1))
        }
    });
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"vrooli-export-{}.json\"", export.0),
        ))
        .streaming(body))
}

/// Recreates an archive of a data export under the caller, with new ids: it is checked whole
/// now, and written by a job (poll `GET /user/importData/{id}`).
#[utoipa::path(
    tag = "profile",
    request_body(content = Object, content_type = "application/json",
                  description = "An archive made by `GET /user/exportData/{id}`"),
    responses((status = 200, description = "The import, Pending", body = Envelope<UserImport>)),
    security(("cookie" = []), ("bearer" = []), ("apiKey" = [])),
)]
#[post("/user/importData")]
pub async fn start_import(
    caller: Require<WritePrivate>,
    state: web::Data<AppState>,
    limits: web::Data<crate::http::input::BodyLimits>,
    mut body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    // The input guard bounds JSON bodies; this bounds one sent under any other content type.
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
    Ok(ok(state.imports.start(caller.user, &archive).await?))
}

/// How one of the caller's imports went: `Pending`, `Done` with what was recreated, or
/// `Failed` with why (nothing of it was kept).
#[utoipa::path(
    tag = "profile",
    params(("id" = UserImportId, Path, description = "The import's id")),
    responses((status = 200, description = "The import", body = Envelope<UserImport>)),
    security(("cookie" = []), ("bearer" = []), ("apiKey" = [])),
)]
#[get("/user/importData/{id}")]
pub async fn get_import(
    caller: Require<ReadPrivate>,
    state: web::Data<AppState>,
    Id(import): Id<UserImportId>,
) -> Result<HttpResponse, ApiError> {
    Ok(ok(state.imports.get(caller.user, import.0).await?))
}
