//! `SystemCaller`: the extractor for routes only the system (operators, other services, MCP)
//! may call, authenticated with `admin.system_key` as `X-API-Key: <key>`,
//! `Authorization: Bearer <key>` or `Authorization: ApiKey <key>`.
//! With no key configured those routes are closed (403), never open.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{FromRequest, HttpRequest, web};
use secrecy::ExposeSecret;

use super::error::ApiError;
use crate::errors::Code;
use crate::state::AppState;

/// Proof that the request carried the system key.
#[derive(Debug, Clone, Copy)]
pub struct SystemCaller;

impl FromRequest for SystemCaller {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(check(req))
    }
}

/// Whether `req` carries the system key (for routes that show operators more than the public).
pub fn is_system(req: &HttpRequest) -> bool {
    check(req).is_ok()
}

fn check(req: &HttpRequest) -> Result<SystemCaller, ApiError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("AppState missing")))?;
    let expected = state.auth.admin_key.expose_secret();
    if expected.is_empty() {
        return Err(ApiError::of(
            Code::AdminDisabled,
            "Admin routes are disabled on this server (admin.system_key is not set)",
        ));
    }
    let presented = presented_key(req)
        .ok_or_else(|| ApiError::of(Code::MissingApiKey, "This route needs the system key"))?;
    if constant_time_eq(presented.as_bytes(), expected.as_bytes()) {
        Ok(SystemCaller)
    } else {
        Err(ApiError::of(
            Code::InvalidApiKey,
            "The key is not valid for this route",
        ))
    }
}

fn presented_key(req: &HttpRequest) -> Option<&str> {
    if let Some(key) = req.headers().get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(key.trim());
    }
    let auth = req.headers().get(AUTHORIZATION)?.to_str().ok()?;
    auth.strip_prefix("Bearer ")
        .or_else(|| auth.strip_prefix("ApiKey "))
        .map(str::trim)
}

/// Compares without an early exit, so response timing does not reveal how much of a key matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn compares_bytes() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
