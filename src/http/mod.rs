//! HTTP: routes, extractor settings and the edge middleware. Handlers are thin: extract, call one
//! service, answer `{"data": …, "version": "v2"}` (see [`ok`]) or an [`ApiError`].
//!
//! Routes: `GET /healthcheck`, `GET /metrics`, `GET /ws`, `/mcp`, `GET /docs`, and under `/api/v2`
//! everything else; each capability is `src/http/<capability>` exposing `fn config`. Every
//! handler carries `#[utoipa::path]` beside its actix route attribute and is registered through
//! utoipa-actix-web, which collects the OpenAPI document while it registers ([`openapi`]).

mod admin;
mod api_keys;
pub mod auth;
mod billing;
pub mod bodies;
mod chat;
pub mod edge;
pub mod error;
mod exports;
mod files;
mod health;
pub mod input;
mod mcp;
mod metrics;
mod notifications;
pub mod openapi;
pub mod origin;
pub mod paging;
pub mod path;
mod profile;
mod push;
pub mod rate_limit;
pub mod request_span;
mod routines;
mod runs;
pub mod system_key;
pub mod teams;
pub mod upgrade;
mod users;
pub mod ws;

use actix_web::error::{JsonPayloadError, PayloadError};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

pub use error::{ApiError, Code};

/// Registers every route, documenting each as it goes.
pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(health::healthcheck)
        .service(metrics::metrics)
        .service(ws::connect)
        .service(openapi::docs_redirect)
        .service(openapi::docs_index)
        .service(openapi::docs_file)
        .configure(mcp::config)
        .service(billing::stripe_webhook)
        .service(
            // actix tries a scope's routes one by one, in the order they are registered, until
            // one matches: the chat routes, the most requested (a page of messages), go first.
            // Nothing else starts with `/chat`, so the order changes no route's meaning.
            utoipa_actix_web::scope("/api/v2")
                .configure(chat::config)
                .service(openapi::openapi_json)
                .configure(admin::config)
                .configure(auth::config)
                .configure(api_keys::config)
                .configure(billing::config)
                .configure(files::config)
                .configure(notifications::config)
                .configure(profile::config)
                .configure(exports::config)
                .configure(push::config)
                .configure(routines::config)
                .configure(runs::config)
                .configure(teams::config)
                .configure(users::config),
        );
}

/// The success envelope: `{"data": …, "version": "v2"}`. Handlers answer with [`ok`]; the
/// OpenAPI document names `Envelope<T>` as each route's body.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Envelope<T> {
    pub data: T,
    #[schema(value_type = String, example = "v2")]
    pub version: &'static str,
}

/// The success envelope, serialised straight from `data` (building a `serde_json::Value` first
/// costs a map insert per field and was a measurable share of a page GET) into a buffer that
/// starts at [`OK_BODY_CAPACITY`] (actix's `json` starts from an empty one and grows it by
/// doubling: about ten reallocations and copies for a page of messages).
pub fn ok<T: Serialize>(data: T) -> HttpResponse {
    let mut body = Vec::with_capacity(OK_BODY_CAPACITY);
    match serde_json::to_writer(
        &mut body,
        &Envelope {
            data,
            version: "v2",
        },
    ) {
        Ok(()) => HttpResponse::Ok()
            .insert_header((
                actix_web::http::header::CONTENT_TYPE,
                actix_web::http::header::HeaderValue::from_static("application/json"),
            ))
            .body(body),
        Err(error) => HttpResponse::from_error(JsonPayloadError::Serialize(error)),
    }
}

/// A page of 20 chat messages is about 8 KiB; most other answers are under 1 KiB.
const OK_BODY_CAPACITY: usize = 4096;

/// Answers requests that match no route: 405 when the path is a route's but the method is not
/// (each method of a path is its own resource, guarded by method, so actix falls through to
/// here; the route's pattern is found again to name its methods in `Allow`), 404 otherwise.
pub async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let Some(pattern) = req.resource_map().match_pattern(req.path()) else {
        return Err(ApiError::of(
            Code::RouteNotFound,
            format!("No route for {} {}", req.method(), req.path()),
        ));
    };
    let error = ApiError::of(
        Code::MethodNotAllowed,
        format!("{} does not accept {}", req.path(), req.method()),
    );
    let mut response = actix_web::ResponseError::error_response(&error);
    let allow = req
        .app_data::<web::Data<openapi::Document>>()
        .and_then(|doc| doc.allowed(&pattern))
        .and_then(|methods| methods.parse().ok());
    if let Some(allow) = allow {
        response
            .headers_mut()
            .insert(actix_web::http::header::ALLOW, allow);
    }
    Ok(response)
}

/// JSON bodies: size limit from config; every failure becomes an `ApiError`.
pub fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .error_handler(move |error, _req| json_error(error, limit).into())
}

fn json_error(error: JsonPayloadError, limit: usize) -> ApiError {
    match error {
        JsonPayloadError::OverflowKnownLength { .. }
        | JsonPayloadError::Overflow { .. }
        | JsonPayloadError::Payload(PayloadError::Overflow) => ApiError::of(
            Code::BodyTooLarge,
            format!("The JSON body is larger than the {limit}-byte limit"),
        ),
        JsonPayloadError::ContentType => ApiError::of(
            Code::UnsupportedContentType,
            "Send the body as JSON with Content-Type: application/json",
        ),
        JsonPayloadError::Deserialize(e) => deserialize_error(&e),
        _ => ApiError::of(Code::UnreadableBody, "The request body could not be read"),
    }
}

/// A JSON body that may be left out: empty is `None`; anything else must parse, with the same
/// codes as the JSON extractor (actix's `Option<Json<T>>` would turn a bad body into `None`).
pub fn optional_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<Option<T>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(body)
        .map(Some)
        .map_err(|e| deserialize_error(&e))
}

/// A body that is JSON but does not fit the route (422), or is not JSON (400).
fn deserialize_error(e: &serde_json::Error) -> ApiError {
    if e.is_data() {
        ApiError::of(
            Code::InvalidBody,
            format!("The JSON does not fit this route: {e}"),
        )
    } else {
        ApiError::of(Code::InvalidJson, format!("Malformed JSON: {e}"))
    }
}

pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default()
        .error_handler(|error, _req| ApiError::of(Code::InvalidQuery, error.to_string()).into())
}

pub fn path_config() -> web::PathConfig {
    web::PathConfig::default()
        .error_handler(|error, _req| ApiError::of(Code::InvalidPath, error.to_string()).into())
}
