//! The input guard: what every request's body and query must be before a handler sees it.
//!
//! ```text
//! request ─▶ query string: a percent-encoded control character? ─▶ 422 ControlCharacter
//!         ─▶ body (whatever its Content-Type; not a file upload's multipart form, which
//!            `http::files` bounds itself): read up to the route's limit
//!            (server.json_body_limit_bytes, or server.message_json_body_limit_bytes on the
//!            routes that carry a message's text, server.routine_json_body_limit_bytes on the
//!            routine routes and /mcp and on the operators' room publish,
//!            exports.import_max_bytes on a data import)
//!            ─▶ over it: 413 BodyTooLarge · compressed: 415 UnsupportedContentEncoding
//!            ─▶ a string escape of a control character (\u0000 … \u001f but \t \n \r)?
//!               ─▶ 422 ControlCharacter
//!         ─▶ the body handed back to the request, unchanged ─▶ handler (web::Json parses it)
//! ```
//!
//! Raw control bytes inside a JSON string are already invalid JSON (the extractor says 400
//! `InvalidJson`); escaped ones decode into text that PostgreSQL refuses (`\u0000`, a 500 before
//! this guard) or that no client can show. Refusing them here, once, keeps every handler and
//! every SQL statement free of the question.
//!
//! Why every body and not only those labelled JSON: every route but the upload reads its body
//! as JSON, and the few that read it themselves (a run's start, a data import, MCP, Stripe's
//! webhook, `/auth/logout`) parse it whatever it is labelled, so `curl --data-binary`
//! (form-urlencoded) keeps working. A label is no reason to skip the checks: sent as
//! `text/plain`, a run's start took 20 MiB and a `\u0000` reached PostgreSQL (a 500); a data
//! import took a NUL its job could not write (issue 34). Routes on actix's JSON extractor still
//! answer 415 `UnsupportedContentType` to a body declared as something else, after these checks.

use actix_web::HttpMessage;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::CONTENT_ENCODING;
use actix_web::middleware::Next;
use actix_web::web::{self, Bytes, BytesMut};
use futures_util::StreamExt;

use super::error::ApiError;
use crate::errors::Code;

/// The body limits, built once from `[server]`.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    pub json: usize,
    pub message_json: usize,
    pub routine_json: usize,
    /// `POST /user/importData` (an archive of a data export): `exports.import_max_bytes`.
    pub import_json: usize,
}

impl BodyLimits {
    /// The most any route accepts (the JSON extractor's own limit).
    pub fn largest(&self) -> usize {
        self.json
            .max(self.message_json)
            .max(self.routine_json)
            .max(self.import_json)
    }

    fn for_route(&self, pattern: Option<&str>) -> usize {
        match pattern {
            Some(
                "/api/v2/chatMessage" | "/api/v2/chatMessage/{id}" | "/api/v2/admin/rooms/publish",
            ) => self.message_json,
            Some(
                "/api/v2/resource"
                | "/api/v2/resource/import"
                | "/api/v2/resourceVersion"
                | "/api/v2/resourceVersion/{id}"
                // MCP calls may carry a message or a routine's graph (resource_manage).
                | "/mcp"
                // Stripe's events carry whole objects (a session, an invoice with its lines).
                | "/webhooks/stripe",
            ) => self.routine_json,
            Some("/api/v2/user/importData") => self.import_json,
            _ => self.json,
        }
    }
}

pub async fn input_guard(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(limits) = req.app_data::<web::Data<BodyLimits>>().map(|l| ***l) else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    if has_control_escape_in_query(req.query_string()) {
        return Ok(req.error_response(control_character()));
    }
    let route = super::request_span::route(req.request());
    if takes_any_body(route.as_deref()) {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let limit = limits.for_route(route.as_deref());
    let body = match read_body(&mut req, limit).await {
        Ok(body) => body,
        Err(error) => return Ok(req.error_response(error)),
    };
    // A compressed body would be inflated past its limit by the extractor, after this check.
    let encoded = req
        .headers()
        .get(CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| !v.eq_ignore_ascii_case("identity"));
    if encoded && !body.is_empty() {
        return Ok(req.error_response(ApiError::of(
            Code::UnsupportedContentEncoding,
            "Send request bodies uncompressed",
        )));
    }
    if has_control_escape(&body) {
        return Ok(req.error_response(control_character()));
    }
    req.set_payload(Payload::from(body));
    Ok(next.call(req).await?.map_into_boxed_body())
}

/// The routes whose bodies are not JSON and are bounded by their handlers: a file upload (a
/// multipart form up to `storage.max_file_bytes`) and the WebSocket upgrade (no body; the
/// connection is handed over after it).
fn takes_any_body(pattern: Option<&str>) -> bool {
    matches!(pattern, Some("/api/v2/file" | "/ws"))
}

async fn read_body(req: &mut ServiceRequest, limit: usize) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::of(
            Code::BodyTooLarge,
            format!("The body is larger than this route's {limit}-byte limit"),
        )
    };
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut payload = req.take_payload();
    let mut body = BytesMut::with_capacity(declared.unwrap_or(0));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| {
            ApiError::of(Code::UnreadableBody, "The request body could not be read")
        })?;
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

fn control_character() -> ApiError {
    ApiError::of(
        Code::ControlCharacter,
        "Text may not contain control characters (only tab, line feed and carriage return)",
    )
}

fn is_refused_control(c: u32) -> bool {
    c < 0x20 && !matches!(c, 0x09 | 0x0a | 0x0d)
}

/// Whether a JSON document has a `\uXXXX` escape of a refused control character in a string. A
/// backslash escapes exactly the next character, so `\\u0000` (an escaped backslash, then the
/// text "u0000") is not one.
pub fn has_control_escape(json: &[u8]) -> bool {
    let mut i = 0;
    while i < json.len() {
        if json[i] == b'\\' {
            if json.get(i + 1) == Some(&b'u')
                && let Some(hex) = json.get(i + 2..i + 6)
                && let Ok(hex) = std::str::from_utf8(hex)
                && let Ok(c) = u32::from_str_radix(hex, 16)
                && is_refused_control(c)
            {
                return true;
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    false
}

/// Whether a query string percent-encodes a refused control character (`%00` … `%1F`).
pub fn has_control_escape_in_query(query: &str) -> bool {
    let bytes = query.as_bytes();
    bytes.windows(3).any(|w| {
        w[0] == b'%'
            && std::str::from_utf8(&w[1..])
                .ok()
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .is_some_and(is_refused_control)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_escaped_control_characters_only_where_they_decode_to_one() {
        assert!(has_control_escape(br#"{"text":"a\u0000b"}"#));
        assert!(has_control_escape(br#"{"text":"\u001B[31m"}"#));
        assert!(!has_control_escape(
            br#"{"text":"line\nbreak\ttab\r\u000a"}"#
        ));
        assert!(!has_control_escape(
            br#"{"text":"\\u0000 is how you write NUL"}"#
        ));
        assert!(has_control_escape(br#"{"text":"\\\u0000"}"#));
        assert!(!has_control_escape(br#"{"text":"\u00e9t\u00E9 \u0020"}"#));
        assert!(!has_control_escape(br#"{"text":"ends with \"#));
    }

    #[test]
    fn finds_percent_encoded_control_characters() {
        assert!(has_control_escape_in_query("chatId=1%00"));
        assert!(has_control_escape_in_query("q=%1b"));
        assert!(!has_control_escape_in_query("q=a%0Ab%09%20%7E"));
        assert!(!has_control_escape_in_query("q=%"));
    }
}
