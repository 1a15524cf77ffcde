//! The API described: an OpenAPI 3.1 document generated from the handlers' `#[utoipa::path]`
//! annotations while they are registered. utoipa-actix-web takes each operation's path and
//! method from the same `#[get("…")]` attribute that actix routes by, so the document and the
//! routes cannot drift apart; `tests/api/openapi.rs` fails when a route is registered any other
//! way.
//!
//! Flow: [`document`] registers [`super::routes`] on a throwaway app once at start-up →
//! [`finish`] adds what no single handler says (the error envelope as every operation's
//! `default` answer, the security schemes) → the JSON is kept in [`Document`] and served by
//! `GET /api/v2/openapi.json`; `GET /docs` serves Swagger UI from files compiled into the binary
//! (utoipa-swagger-ui's `vendored` feature), pointed at that URL, so it works offline.

use std::collections::HashMap;
use std::sync::Arc;

use actix_web::http::header::{CacheControl, CacheDirective, ContentType};
use actix_web::{HttpResponse, get, web};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, ObjectBuilder, OpenApi as Document_, RefOr, ResponseBuilder, Schema, Type,
};
use utoipa::{OpenApi, PartialSchema, ToSchema};

use super::{ApiError, Code};

/// Where the document is served, and where the UI reads it from.
pub const DOCUMENT_PATH: &str = "/api/v2/openapi.json";

/// The document as served (serialised once at start-up), and each path's methods for the
/// `Allow` header of a 405.
pub struct Document {
    pub json: bytes::Bytes,
    allow: HashMap<String, String>,
}

impl Document {
    pub fn build() -> Self {
        let doc = document();
        let allow = doc
            .paths
            .paths
            .iter()
            .map(|(path, item)| {
                let methods: Vec<&str> = [
                    ("GET", item.get.is_some()),
                    ("PUT", item.put.is_some()),
                    ("POST", item.post.is_some()),
                    ("DELETE", item.delete.is_some()),
                    ("PATCH", item.patch.is_some()),
                ]
                .into_iter()
                .filter_map(|(method, present)| present.then_some(method))
                .collect();
                (path.clone(), methods.join(", "))
            })
            .collect();
        // Serialising a document of our own types cannot fail; an empty body would say so.
        let json = serde_json::to_vec(&doc).unwrap_or_default().into();
        Self { json, allow }
    }

    /// The methods a route pattern (as actix matched it, `{id:\d+}` and all) accepts, for an
    /// `Allow` header.
    pub fn allowed(&self, pattern: &str) -> Option<&str> {
        self.allow
            .get(&without_patterns(pattern))
            .map(String::as_str)
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Vrooli API",
        version = "2",
        description = "The Vrooli server's REST API. Every success is `{\"data\": …, \
            \"version\": \"v2\"}`; every failure is the error envelope with a stable `code`. \
            Ids are decimal strings (64-bit Snowflake ids). Lists are Relay pages (`take`, \
            `after`). Live events travel over the WebSocket at `/ws` (docs/PROTOCOL.md); AI \
            agents use the MCP server at `/mcp`.",
        license(name = "AGPL-3.0-only", identifier = "AGPL-3.0-only"),
    ),
    components(schemas(ErrorEnvelope, ErrorItem, ErrorCode))
)]
struct ApiDoc;

/// The document's base: info and the shared schemas; the paths come from registration.
pub fn base() -> Document_ {
    ApiDoc::openapi()
}

/// Builds the whole document: registers every route on an app that is never run, as
/// `startup::http` does for the real one.
pub fn document() -> Document_ {
    use utoipa_actix_web::AppExt;
    let (_, doc) = actix_web::App::new()
        .into_utoipa_app()
        .openapi(base())
        .configure(super::routes)
        .split_for_parts();
    finish(doc)
}

/// What no handler says for itself: every operation may fail with the error envelope (its
/// `default` answer; the codes and their statuses are `ErrorCode` and docs/ERRORS.md), and the
/// three ways to authenticate.
fn finish(mut doc: Document_) -> Document_ {
    let envelope = ResponseBuilder::new()
        .description(
            "The request failed: the error envelope, with a stable `code` (docs/ERRORS.md \
             gives each code's status)",
        )
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                    "ErrorEnvelope",
                ))))
                .build(),
        )
        .build();
    for item in doc.paths.paths.values_mut() {
        for operation in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            operation
                .responses
                .responses
                .entry("default".into())
                .or_insert_with(|| RefOr::T(envelope.clone()));
        }
    }
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "cookie",
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            "session-v2",
            "The session cookie set by the sign-in routes (`auth.cookie_name`; HttpOnly). \
             Writes from a browser also need an allowed `Origin`.",
        ))),
    );
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .description(Some(
                    "The same session token as the cookie, as `Authorization: Bearer <token>`; on the \
                     admin routes and `/metrics`, the system key (`admin.system_key`)",
                ))
                .build(),
        ),
    );
    components.add_security_scheme(
        "apiKey",
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
            "X-API-Key",
            "An API key (`POST /api/v2/apiKey`; its permissions apply), or `admin.system_key` \
             for the admin routes and `/metrics`. `Authorization: ApiKey <key>` works too.",
        ))),
    );
    doc
}

/// An actix route pattern as the document writes it: `/run/{id:\d+}` → `/run/{id}` (as
/// utoipa's actix support does).
pub fn without_patterns(route: &str) -> String {
    let (mut out, mut in_braces, mut skipping) = (String::new(), false, false);
    for c in route.chars() {
        match c {
            '{' => in_braces = true,
            '}' => (in_braces, skipping) = (false, false),
            ':' if in_braces => skipping = true,
            _ => {}
        }
        if !skipping {
            out.push(c);
        }
    }
    out
}

/// The error envelope every failure answers with.
#[derive(ToSchema)]
#[allow(dead_code)] // described, not built: `edge::render_error` writes the same shape
pub struct ErrorEnvelope {
    /// Always one entry today.
    errors: Vec<ErrorItem>,
    #[schema(example = "v2")]
    version: String,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErrorItem {
    code: ErrorCode,
    /// For people; safe to show.
    message: String,
    /// The request id, as in the server's logs.
    trace: String,
}

/// A stable, machine-readable error code: clients branch on it (docs/ERRORS.md).
pub struct ErrorCode;

impl PartialSchema for ErrorCode {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(Code::ALL.iter().map(|c| c.as_str())))
            .description(Some("A stable error code (docs/ERRORS.md)"))
            .into()
    }
}

impl ToSchema for ErrorCode {}

/// `GET /api/v2/openapi.json`: this document.
#[utoipa::path(
    tag = "meta",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json", body = Object)),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `VROOLI_OPENAPI_OUT=<file> cargo test --lib http::openapi` writes the document there, so
    /// two versions can be compared (`jq -S . a.json | diff - <(jq -S . b.json)`).
    #[test]
    fn document_builds() {
        let doc = Document::build();
        assert!(!doc.json.is_empty(), "the document serialises");
        if let Ok(path) = std::env::var("VROOLI_OPENAPI_OUT") {
            std::fs::write(path, &doc.json).expect("write the document");
        }
    }
}
