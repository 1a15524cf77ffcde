//! The caller's data export (`crate::exports`):
//! - `POST /user/exportData` starts one (one outstanding at a time: while one is being made,
//!   409 `ExportInProgress`; while one is Ready and not downloaded, that one is answered);
//! - `GET /user/exportData/{id}` downloads it once it is `Ready`, once (then its chunks are
//!   gone; asking again is 409 `ExportNotReady` naming its status).
//!
//! Bringing such an archive back is `imports.rs`.

use actix_web::{HttpResponse, get, post, web};

use crate::exports::UserExport;
use crate::http::auth::session::{ReadPrivate, Require, WritePrivate};
use crate::http::error::ApiError;
use crate::http::path::Id;
use crate::http::reply::{Envelope, ok};
use crate::ids::UserExportId;
use crate::state::AppState;

pub fn config(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(start).service(download);
}

/// Starts an export of the caller's data; poll the download until it is ready.
///
/// One at a time: while one is being made, 409 `ExportInProgress`; while one is Ready and not
/// yet downloaded, that one is answered (no second copy is made). A Ready export not downloaded
/// within `exports.ready_ttl_secs` expires (`Expired`, the archive deleted).
#[utoipa::path(
    tag = "profile",
    responses((status = 200, description = "The export: Pending, or the Ready one not yet downloaded", body = Envelope<UserExport>)),
)]
#[post("/user/exportData")]
pub async fn start(
    caller: Require<WritePrivate>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    Ok(ok(state.people.exports.start(caller.user).await?))
}

/// Downloads a ready export (a JSON archive), once.
#[utoipa::path(
    tag = "profile",
    params(("id" = UserExportId, Path, description = "The export's id")),
    responses((status = 200, description = "The archive", content_type = "application/json", body = Object)),
)]
#[get("/user/exportData/{id}")]
pub async fn download(
    caller: Require<ReadPrivate>,
    state: web::Data<AppState>,
    Id(export): Id<UserExportId>,
) -> Result<HttpResponse, ApiError> {
    let chunks = state.people.exports.claim(caller.user, export.0).await?;
    let exports = state.people.exports.clone();
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
