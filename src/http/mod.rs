//! HTTP: routes, extractor settings and the edge middleware. Handlers are thin: extract, call one
//! service, answer `{"data": …, "version": "v2"}` (see [`ok`]) or an [`ApiError`].
//!
//! Routes today: `GET /healthcheck`, `GET /metrics`, and under `/api/v2` the admin routes
//! (`admin/`); each capability is `src/http/<capability>/` exposing `fn config`.

mod admin;
mod api_keys;
pub mod auth;
mod chat;
pub mod codes;
pub mod edge;
pub mod error;
mod health;
pub mod input;
mod mcp;
mod metrics;
mod notifications;
pub mod origin;
pub mod paging;
pub mod path;
pub mod rate_limit;
mod routines;
mod runs;
pub mod system_key;
pub mod upgrade;
mod users;
pub mod ws;

use actix_web::error::{JsonPayloadError, PayloadError};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

pub use error::{ApiError, Code, ErrorKind};

/// Registers every route.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/healthcheck").route(web::get().to(health::healthcheck)))
        .service(web::resource("/metrics").route(web::get().to(metrics::metrics)))
        .service(web::resource("/ws").route(web::get().to(ws::connect)))
        .configure(mcp::config)
        .service(
            web::scope("/api/v2")
                .configure(admin::config)
                .configure(auth::config)
                .configure(api_keys::config)
                .configure(chat::config)
                .configure(notifications::config)
                .configure(routines::config)
                .configure(runs::config)
                .configure(users::config),
        );
}

/// The success envelope, serialised straight from `data` (building a `serde_json::Value` first
/// costs a map insert per field and was a measurable share of a page GET).
pub fn ok<T: Serialize>(data: T) -> HttpResponse {
    #[derive(Serialize)]
    struct Envelope<T> {
        data: T,
        version: &'static str,
    }
    HttpResponse::Ok().json(Envelope {
        data,
        version: "v2",
    })
}

/// Answers requests that match no route.
pub async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::of(
        Code::RouteNotFound,
        format!("No route for {} {}", req.method(), req.path()),
    ))
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
        JsonPayloadError::Deserialize(e) if e.is_data() => ApiError::of(
            Code::InvalidBody,
            format!("The JSON does not fit this route: {e}"),
        ),
        JsonPayloadError::Deserialize(e) => {
            ApiError::of(Code::InvalidJson, format!("Malformed JSON: {e}"))
        }
        _ => ApiError::of(Code::UnreadableBody, "The request body could not be read"),
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
