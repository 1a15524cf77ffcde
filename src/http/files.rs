//! Files (`crate::files`):
//! - `POST /file` (multipart: `file`, `purpose` = profile | banner | attachment, `chatId` for an
//!   attachment) → `{id, url, contentType, size, variants: [{width, height, url}]}`; past
//!   `storage.max_file_bytes` 413 `BodyTooLarge`;
//! - `GET /file/{id}` and `GET /file/{id}/{W}x{H}` → the bytes (local storage) or a redirect to
//!   a presigned URL (S3), for those allowed: profile and banner images are public, an
//!   attachment is read by those who may read its chat (others: 404).

use actix_multipart::Multipart;
use actix_web::{HttpResponse, get, post, web};
use futures_util::StreamExt;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::errors::Code;
use crate::files::{Download, Purpose, StoredFile};
use crate::http::auth::readers::Reader;
use crate::http::auth::session::{Require, WritePrivate};
use crate::http::error::ApiError;
use crate::http::path::Id;
use crate::http::reply::{Envelope, ok};
use crate::ids::{ChatId, FileId};
use crate::state::AppState;

pub fn config(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(upload)
        .service(download)
        .service(download_variant);
}

/// `POST /file`, as a form.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // describes the form in the document; the handler reads the fields itself
pub struct UploadForm {
    /// The file; its kind is read from its bytes.
    #[schema(value_type = String, format = Binary)]
    file: String,
    /// `profile`, `banner` or `attachment`.
    #[schema(example = "attachment")]
    purpose: String,
    /// The chat of an attachment.
    #[schema(value_type = Option<ChatId>)]
    chat_id: Option<String>,
}

fn bad_form(message: impl Into<String>) -> ApiError {
    ApiError::of(Code::InvalidBody, message.into())
}

/// Upload a file: a profile or banner image (resized into its variants) or a chat attachment.
#[utoipa::path(
    tag = "files",
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses((status = 200, description = "The stored file", body = Envelope<StoredFile>)),
)]
#[post("/file")]
pub async fn upload(
    caller: Require<WritePrivate>,
    state: web::Data<AppState>,
    mut form: Multipart,
) -> Result<HttpResponse, ApiError> {
    let (limit, max_fields, max_text) = state.files.form_limits();
    let (mut file, mut purpose, mut chat) = (None::<Vec<u8>>, None, None);
    let mut fields = 0;
    while let Some(field) = form.next().await {
        let mut field = field.map_err(|e| bad_form(format!("Bad multipart body: {e}")))?;
        fields += 1;
        if fields > max_fields {
            return Err(bad_form("Too many fields"));
        }
        let name = field.name().unwrap_or_default().to_owned();
        let max = if name == "file" { limit } else { max_text };
        let mut bytes = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(|e| bad_form(format!("Bad multipart body: {e}")))?;
            if bytes.len() + chunk.len() > max {
                return Err(if name == "file" {
                    ApiError::of(
                        Code::BodyTooLarge,
                        format!("A file is at most {limit} bytes (storage.max_file_bytes)"),
                    )
                } else {
                    bad_form(format!("The field {name:?} is too long"))
                });
            }
            bytes.extend_from_slice(&chunk);
        }
        let text = || String::from_utf8(bytes.clone()).map_err(|_| bad_form("Text is UTF-8"));
        match name.as_str() {
            "file" => file = Some(bytes),
            "purpose" => purpose = Some(text()?),
            "chatId" => chat = Some(text()?),
            other => return Err(bad_form(format!("Unknown field {other:?}"))),
        }
    }
    let file = file.ok_or_else(|| bad_form("The form needs a file field"))?;
    let purpose = purpose
        .as_deref()
        .and_then(Purpose::parse)
        .ok_or_else(|| bad_form("purpose is profile, banner or attachment"))?;
    let chat = chat
        .map(|c| {
            c.trim()
                .parse::<i64>()
                .map(ChatId)
                .map_err(|_| ApiError::of(Code::InvalidChatId, "A chat id is a decimal number"))
        })
        .transpose()?;
    let stored = state.files.upload(caller.user, purpose, chat, file).await?;
    state
        .infra
        .metrics
        .files_uploaded(purpose.as_str(), stored.size);
    Ok(ok(stored))
}

fn serve(found: Download) -> HttpResponse {
    match found {
        Download::Redirect(url) => HttpResponse::Found()
            .insert_header(("Location", url))
            .insert_header(("Cache-Control", "private, no-store"))
            .finish(),
        Download::Bytes {
            content_type,
            bytes,
            svg,
        } => {
            let mut response = HttpResponse::Ok();
            response
                .content_type(content_type)
                .insert_header(("X-Content-Type-Options", "nosniff"))
                .insert_header(("Cache-Control", "private, max-age=300"));
            if svg {
                // An SVG may hold script: shown as an image, never run as a page.
                response.insert_header((
                    "Content-Security-Policy",
                    "default-src 'none'; style-src 'unsafe-inline'; sandbox",
                ));
            }
            response.body(bytes)
        }
    }
}

/// A file's bytes (or a redirect to them), for those allowed.
#[utoipa::path(
    tag = "files",
    params(("id" = FileId, Path, description = "The file's id")),
    responses(
        (status = 200, description = "The bytes", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 302, description = "A presigned URL of the bytes (S3 storage)"),
    ),
    security((), ("cookie" = []), ("bearer" = []), ("apiKey" = [])),
)]
#[get("/file/{id:\\d+}")]
pub async fn download(
    reader: Reader,
    state: web::Data<AppState>,
    Id(id): Id<FileId>,
) -> Result<HttpResponse, ApiError> {
    Ok(serve(state.files.open(id, None, reader.0).await?))
}

/// One variant of an image (`400x400`, `1500x500`, …).
#[utoipa::path(
    tag = "files",
    params(
        ("id" = FileId, Path, description = "The file's id"),
        ("size" = String, Path, description = "`<width>x<height>`, one of the file's variants"),
    ),
    responses(
        (status = 200, description = "The bytes", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 302, description = "A presigned URL of the bytes (S3 storage)"),
    ),
    security((), ("cookie" = []), ("bearer" = []), ("apiKey" = [])),
)]
#[get("/file/{id:\\d+}/{size}")]
pub async fn download_variant(
    reader: Reader,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, size) = path.into_inner();
    let id = id
        .parse::<i64>()
        .map(FileId)
        .map_err(|_| ApiError::of(Code::InvalidId, "A file id is a decimal number"))?;
    let size = size
        .split_once('x')
        .and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)))
        .ok_or_else(|| ApiError::of(Code::FileNotFound, "No such size of this file"))?;
    Ok(serve(state.files.open(id, Some(size), reader.0).await?))
}
