//! How a handler answers success: `{"data": …, "version": "v2"}`, written by [`ok`]; the
//! OpenAPI document names [`Envelope<T>`] as each route's body. Failures are `ApiError`s
//! (`error.rs`), rendered by the edge middleware (`edge.rs`).
//!
//! A leaf: every handler imports it, it imports nothing of `http`.

use actix_web::HttpResponse;
use actix_web::error::JsonPayloadError;
use serde::Serialize;

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
