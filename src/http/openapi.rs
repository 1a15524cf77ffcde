//! The API described: an OpenAPI 3.1 document generated from the handlers' `#[utoipa::path]`
//! annotations while they are registered. utoipa-actix-web takes each operation's path and
//! method from the same `#[get("…")]` attribute that actix routes by, so the document and the
//! routes cannot drift apart; `tests/api/openapi.rs` fails when a route is registered any other
//! way.
//!
//! Flow: [`Document::build`] registers the route table (`routes::register`, handed in by
//! `startup::http`, so this file does not import the handlers) on a throwaway app once at
//! start-up → [`finish`] adds what no single handler says: [`ErrorAnswers`] (the error envelope
//! as every operation's `default` answer), [`ErrorExamples`] (each declared error answer's
//! example, with a code of its status) and [`Security`] (the three schemes, and who may call
//! an operation that does not say) → the JSON is kept in [`Document`] and served by
//! `GET /api/v2/openapi.json` (`docs.rs`, with Swagger UI at `/docs`).

use std::collections::HashMap;

use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{
    ContentBuilder, ObjectBuilder, OpenApi as Document_, RefOr, ResponseBuilder, Schema, Type,
};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};

use crate::errors::Code;

/// What registers the routes: `routes::register`.
pub type Routes = fn(&mut utoipa_actix_web::service_config::ServiceConfig);

/// Where the document is served, and where the UI reads it from.
pub const DOCUMENT_PATH: &str = "/api/v2/openapi.json";

/// The document as served (serialised once at start-up), and each path's methods for the
/// `Allow` header of a 405.
pub struct Document {
    pub json: bytes::Bytes,
    allow: HashMap<String, String>,
}

impl Document {
    pub fn build(routes: Routes) -> Self {
        let doc = document(routes);
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
pub fn document(routes: Routes) -> Document_ {
    use utoipa_actix_web::AppExt;
    let (_, doc) = actix_web::App::new()
        .into_utoipa_app()
        .openapi(base())
        .configure(routes)
        .split_for_parts();
    finish(doc)
}

/// What no handler says for itself. These run on the registered paths, so they are applied
/// here rather than as `#[openapi(modifiers(…))]` (which run on [`base`], before any path).
fn finish(mut doc: Document_) -> Document_ {
    ErrorAnswers.modify(&mut doc);
    ErrorExamples.modify(&mut doc);
    Security.modify(&mut doc);
    doc
}

/// Every operation of the document, mutably.
fn operations(doc: &mut Document_) -> impl Iterator<Item = &mut utoipa::openapi::path::Operation> {
    doc.paths.paths.values_mut().flat_map(|item| {
        [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
    })
}

/// Every operation may fail with the error envelope: its `default` answer (the codes and their
/// statuses are `ErrorCode` and docs/ERRORS.md).
pub struct ErrorAnswers;

impl Modify for ErrorAnswers {
    fn modify(&self, doc: &mut Document_) {
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
        for operation in operations(doc) {
            operation
                .responses
                .responses
                .entry("default".into())
                .or_insert_with(|| RefOr::T(envelope.clone()));
        }
    }
}

/// Each error answer an operation declares (a 4xx or 5xx carrying the error envelope) gets an
/// example showing a code that status answers: the first code its description names in
/// backticks whose kind has that status (`Code::kind`, the one table). Without it, Swagger UI
/// would show the first code of the whole table (a 400's) under a 404. A declared error answer
/// that names no such code gets none, and `tests/api/openapi.rs` fails on it.
pub struct ErrorExamples;

/// A request id as `trace` carries it (tracing-actix-web's UUID).
const EXAMPLE_TRACE: &str = "0b7c5f3e-9a41-4d8e-8f3a-2c6d1e9b7a40";

impl Modify for ErrorExamples {
    fn modify(&self, doc: &mut Document_) {
        for operation in operations(doc) {
            for (status, response) in operation.responses.responses.iter_mut() {
                let (Ok(status), RefOr::T(response)) = (status.parse::<u16>(), response) else {
                    continue;
                };
                if status < 400 {
                    continue;
                }
                let Some(code) = code_named(&response.description, status) else {
                    continue;
                };
                // The description up to where it names its codes: what a person is told.
                let message = response
                    .description
                    .split(" (`")
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_owned();
                let Some(RefOr::T(content)) = response.content.get_mut("application/json") else {
                    continue;
                };
                let envelope = matches!(&content.schema,
                    Some(RefOr::Ref(r)) if r.ref_location.ends_with("/ErrorEnvelope"));
                if envelope && content.example.is_none() {
                    content.example = Some(serde_json::json!({
                        "errors": [{"code": code.as_str(), "message": message, "trace": EXAMPLE_TRACE}],
                        "version": "v2",
                    }));
                }
            }
        }
    }
}

/// The first code `description` names in backticks that answers with `status`.
fn code_named(description: &str, status: u16) -> Option<Code> {
    description
        .split('`')
        .skip(1)
        .step_by(2)
        .find_map(|name| {
            Code::ALL
                .iter()
                .find(|code| code.as_str() == name && code.kind().status() == status)
        })
        .copied()
}

/// The one place that states how callers authenticate, and who may call an operation that does
/// not say:
///
/// - the three schemes (`cookie`, `bearer`, `apiKey`) are added to the components here;
/// - an operation whose `#[utoipa::path]` has no `security(…)` is for a signed-in caller, by any
///   of the three ([`SIGNED_IN`]): most routes (`Require<…>` in the handler);
/// - a public one (health, the docs, people's public fields, the e-mailed links…) says
///   `security(("public" = []))`: a marker, not a scheme, taken out here so the operation
///   carries no `security` at all, as before. Forgetting it documents a public route as needing
///   a sign-in, the safe side of the mistake;
/// - the others write their list out where they differ: the admin routes and `/metrics` (the
///   system key: `apiKey`, `bearer`), the session-only ones (`cookie`, `bearer`: API keys are
///   refused), and those where signing in is optional (`()` first).
pub struct Security;

/// The schemes a signed-in caller may use, in the order the document lists them.
pub const SIGNED_IN: [&str; 3] = ["cookie", "bearer", "apiKey"];

/// The marker of a public operation (see [`Security`]).
pub const PUBLIC: &str = "public";

impl Modify for Security {
    fn modify(&self, doc: &mut Document_) {
        let public = SecurityRequirement::new(PUBLIC, Vec::<String>::new());
        for operation in operations(doc) {
            match &operation.security {
                None => {
                    operation.security = Some(
                        SIGNED_IN
                            .iter()
                            .map(|scheme| SecurityRequirement::new(*scheme, Vec::<String>::new()))
                            .collect(),
                    );
                }
                Some(listed) if listed == std::slice::from_ref(&public) => {
                    operation.security = None;
                }
                Some(_) => {}
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
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `VROOLI_OPENAPI_OUT=<file> cargo test --lib http::openapi` writes the document there, so
    /// two versions can be compared (`jq -S . a.json | diff - <(jq -S . b.json)`).
    #[test]
    fn document_builds() {
        let doc = Document::build(crate::http::routes::register);
        assert!(!doc.json.is_empty(), "the document serialises");
        if let Ok(path) = std::env::var("VROOLI_OPENAPI_OUT") {
            std::fs::write(path, &doc.json).expect("write the document");
        }
    }

    #[test]
    fn an_error_example_takes_the_first_named_code_of_its_status() {
        let said =
            "The key was reused (`IdempotencyKeyReused`), or there is no such run (`RunNotFound`)";
        assert_eq!(code_named(said, 404), Some(Code::RunNotFound));
        assert_eq!(code_named(said, 409), Some(Code::IdempotencyKeyReused));
        assert_eq!(code_named(said, 422), None);
        assert_eq!(code_named("The `Idempotency-Key` header", 409), None);
    }

    /// [`Security`] leaves no `public` marker behind, and every requirement names a scheme.
    #[test]
    fn every_requirement_names_a_scheme() {
        let doc: serde_json::Value =
            serde_json::to_value(document(crate::http::routes::register)).expect("JSON");
        let schemes = doc["components"]["securitySchemes"]
            .as_object()
            .expect("schemes");
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("path item") {
                for requirement in operation["security"].as_array().into_iter().flatten() {
                    for name in requirement.as_object().expect("requirement").keys() {
                        assert!(
                            schemes.contains_key(name),
                            "{method} {path}: {name} is not a scheme"
                        );
                    }
                }
            }
        }
    }
}
