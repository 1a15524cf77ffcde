//! How the extractors fail: the settings of `web::Json`, `web::Query` and `web::Path` that turn
//! every failure into an `ApiError` with its own code (registered once per app by
//! `startup::http`), and [`optional_json`] for a body that may be left out.
//!
//! request ─▶ extractor ─▶ parse error ─▶ here ─▶ `ApiError` ─▶ the edge renders the envelope

use actix_web::error::{JsonPayloadError, PayloadError};
use actix_web::web;

use super::error::ApiError;
use crate::errors::Code;

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
