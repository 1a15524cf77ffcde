//! Applies the rate limits to every `/api/v2` request: one bucket per route pattern and caller —
//! the signed-in user, else the client's IP address. Over the limit: 429 `RateLimited` with
//! `Retry-After`; limiter unavailable and failing closed: 503 `RateLimitUnavailable`.

use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderValue, RETRY_AFTER};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, web};

use super::auth::session::AuthState;
use super::error::ApiError;
use crate::config::RateLimitSettings;
use crate::errors::Code;
use crate::ratelimit::{Decision, Limit, RateLimiter};

const DAY: Duration = Duration::from_secs(24 * 3600);

pub struct RateLimits {
    pub limiter: RateLimiter,
    pub settings: RateLimitSettings,
    /// `server.behind_proxy`: take the client address from forwarding headers.
    pub behind_proxy: bool,
}

/// The client's address: the TCP peer, or — behind a trusted proxy — the forwarded address.
pub fn client_ip(req: &actix_web::HttpRequest, behind_proxy: bool) -> Option<String> {
    if behind_proxy && let Some(ip) = req.connection_info().realip_remote_addr() {
        // The forwarded value may carry a port ("1.2.3.4:5678"); the bucket is per address.
        let ip = ip
            .parse::<std::net::SocketAddr>()
            .map(|a| a.ip().to_string())
            .unwrap_or_else(|_| ip.to_owned());
        return Some(ip);
    }
    req.peer_addr().map(|a| a.ip().to_string())
}

pub async fn rate_limit_layer(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let limits = req.app_data::<web::Data<RateLimits>>().cloned();
    let Some(limits) = limits.filter(|l| l.settings.enabled && req.path().starts_with("/api/v2/"))
    else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let route = super::request_span::route(req.request());
    let route = route.as_deref().unwrap_or("unmatched");
    // API keys get a multiple of a person's allowance (the original: 1000x); people are limited per user, else per address.
    let (caller, factor) = match req.extensions().get::<AuthState>() {
        // One bucket for all of an owner's keys: more keys do not buy more requests.
        Some(AuthState::ApiKey(key)) => (
            format!("k:{}", key.user),
            limits.settings.api_key_multiplier,
        ),
        // An unconfirmed token (its session looked up later, by the handler) is still signed
        // by us for that user: it spends that user's allowance either way.
        Some(AuthState::Authenticated(a)) | Some(AuthState::Unconfirmed(a)) => {
            (format!("u:{}", a.current().id), 1)
        }
        _ => (
            format!(
                "ip:{}",
                client_ip(req.request(), limits.behind_proxy).unwrap_or_default()
            ),
            1,
        ),
    };
    let per_day = limits.settings.per_day(route).saturating_mul(factor);
    let decision = limits
        .limiter
        .check(
            &format!("{route}:{caller}"),
            Limit {
                capacity: per_day,
                period: DAY,
            },
        )
        .await;
    match decision {
        Decision::Allowed => Ok(next.call(req).await?.map_into_boxed_body()),
        Decision::Limited { retry_after_secs } => {
            let error = ApiError::of(
                Code::RateLimited,
                format!("Too many requests to this route; try again in {retry_after_secs} s"),
            );
            let mut response = req.error_response(error);
            if let Ok(value) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                response.headers_mut().insert(RETRY_AFTER, value);
            }
            Ok(response)
        }
        Decision::Unavailable => Ok(req.error_response(ApiError::of(
            Code::RateLimitUnavailable,
            "Rate limiting is unavailable; try again shortly",
        ))),
    }
}
