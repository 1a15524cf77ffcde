//! The API's own pages: `GET /api/v2/openapi.json` (the document `openapi.rs` built at
//! start-up, served as kept) and `GET /docs` (Swagger UI from files compiled into the binary,
//! utoipa-swagger-ui's `vendored` feature, pointed at that URL, so it works offline).

use std::sync::Arc;

use actix_web::http::header::{CacheControl, CacheDirective, ContentType};
use actix_web::{HttpResponse, get, web};

use super::error::ApiError;
use super::openapi::{DOCUMENT_PATH, Document};
use crate::errors::Code;

/// The `/docs` pages, outside `/api/v2` (the document itself is registered in that scope).
pub fn config(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(docs_redirect)
        .service(docs_index)
        .service(docs_file);
}

/// `GET /api/v2/openapi.json`: this document.
#[utoipa::path(
    tag = "meta",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json", body = Object)),
    security(("public" = [])),
)]
#[get("/openapi.json")]
pub async fn openapi_json(doc: web::Data<Document>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(ContentType::json())
        .insert_header(CacheControl(vec![CacheDirective::NoCache]))
        .body(doc.json.clone())
}

/// The Swagger UI's settings: read the document from [`DOCUMENT_PATH`].
pub struct UiConfig(pub Arc<utoipa_swagger_ui::Config<'static>>);

impl UiConfig {
    pub fn new() -> Self {
        Self(Arc::new(utoipa_swagger_ui::Config::new([DOCUMENT_PATH])))
    }
}

impl Default for UiConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// `GET /docs`: sends the browser to `/docs/`, where the page's relative links resolve.
#[utoipa::path(
    tag = "meta",
    responses((status = 308, description = "To `/docs/`")),
    security(("public" = [])),
)]
#[get("/docs")]
pub async fn docs_redirect() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header((actix_web::http::header::LOCATION, "/docs/"))
        .finish()
}

/// `GET /docs/`: the interactive page (Swagger UI).
#[utoipa::path(
    tag = "meta",
    responses((status = 200, description = "Swagger UI", content_type = "text/html", body = String)),
    security(("public" = [])),
)]
#[get("/docs/")]
pub async fn docs_index(ui: web::Data<UiConfig>) -> Result<HttpResponse, ApiError> {
    ui_file("", &ui)
}

/// `GET /docs/{file}`: the page's scripts and styles.
#[utoipa::path(
    tag = "meta",
    params(("file" = String, Path, description = "A file of Swagger UI, e.g. `swagger-ui.css`")),
    responses((status = 200, description = "The file", content_type = "application/octet-stream", body = String)),
    security(("public" = [])),
)]
#[get("/docs/{file}")]
pub async fn docs_file(
    ui: web::Data<UiConfig>,
    file: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    ui_file(&file, &ui)
}

fn ui_file(name: &str, ui: &UiConfig) -> Result<HttpResponse, ApiError> {
    match utoipa_swagger_ui::serve(name, ui.0.clone()) {
        Ok(Some(file)) => Ok(HttpResponse::Ok()
            .content_type(file.content_type)
            .insert_header(CacheControl(vec![CacheDirective::MaxAge(3600)]))
            .body(file.bytes.into_owned())),
        Ok(None) => Err(ApiError::of(
            Code::DocsFileNotFound,
            format!("No file {name} in the docs"),
        )),
        Err(error) => Err(ApiError::internal(anyhow::anyhow!(error.to_string()))),
    }
}
