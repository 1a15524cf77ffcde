//! Safe origins: a browser request (one with an `Origin` header) must come from the configured
//! UI origins (`cors.allowed_origins`), from this server's own origin, or — with
//! `auth.allow_localhost_origins`, the development default — from localhost on any port; anything
//! else is refused with 403 `UnsafeOrigin` before it reaches a handler. Requests without an
//! `Origin` (curl, other servers) are not browser requests and pass, and so do requests with a
//! valid API key.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::ORIGIN;
use actix_web::middleware::Next;

use actix_web::HttpMessage;

use super::auth::session::AuthState;
use super::error::ApiError;
use crate::errors::Code;

/// The safe list, built once from config.
#[derive(Debug, Clone)]
pub struct SafeOrigins {
    pub configured: Vec<String>,
    pub any: bool,
    pub localhost: bool,
}

impl SafeOrigins {
    pub fn allows(&self, origin: &str, own_host: &str) -> bool {
        if self.any
            || self
                .configured
                .iter()
                .any(|o| o.eq_ignore_ascii_case(origin))
        {
            return true;
        }
        let Some(host) = origin
            .strip_prefix("https://")
            .or_else(|| origin.strip_prefix("http://"))
        else {
            return false;
        };
        if host.eq_ignore_ascii_case(own_host) {
            return true;
        }
        let name = host
            .rsplit_once(':')
            .map(|(name, port)| {
                if port.bytes().all(|b| b.is_ascii_digit()) {
                    name
                } else {
                    host
                }
            })
            .unwrap_or(host);
        self.localhost && matches!(name, "localhost" | "127.0.0.1" | "[::1]")
    }
}

pub async fn origin_guard(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    // A valid API key is not a browser session riding on cookies: no origin check.
    let api_key = matches!(
        req.extensions().get::<AuthState>(),
        Some(AuthState::ApiKey(_))
    );
    if let Some(origin) = req.headers().get(ORIGIN).filter(|_| !api_key) {
        let safe = req.app_data::<actix_web::web::Data<SafeOrigins>>();
        let own_host = req.connection_info().host().to_owned();
        let allowed = match (origin.to_str(), safe) {
            (Ok(origin), Some(safe)) => safe.allows(origin, &own_host),
            (_, None) => true,
            (Err(_), _) => false,
        };
        if !allowed {
            let error = ApiError::of(
                Code::UnsafeOrigin,
                "Requests from this origin are not allowed",
            );
            // A response, not an Err: the edge middleware renders it into the envelope.
            return Ok(req.error_response(error));
        }
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_configured_own_and_local_origins() {
        let safe = SafeOrigins {
            configured: vec!["https://vrooli.com".into()],
            any: false,
            localhost: true,
        };
        assert!(safe.allows("https://vrooli.com", "api.vrooli.com"));
        assert!(safe.allows("https://api.vrooli.com", "api.vrooli.com"));
        assert!(safe.allows("http://localhost:5173", "api.vrooli.com"));
        assert!(safe.allows("http://127.0.0.1", "api.vrooli.com"));
        assert!(!safe.allows("https://evil.example", "api.vrooli.com"));
        assert!(!safe.allows("https://localhost.evil.example", "api.vrooli.com"));
        assert!(!safe.allows("null", "api.vrooli.com"));
        let strict = SafeOrigins {
            localhost: false,
            ..safe
        };
        assert!(!strict.allows("http://localhost:5173", "api.vrooli.com"));
    }
}
