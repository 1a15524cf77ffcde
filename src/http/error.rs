//! `ApiError`: the one error type handlers return, made from any domain error through
//! `crate::errors` (the one mapping to codes), with the HTTP status of the code's kind. Its response carries an [`ErrorInfo`] in the response extensions and no body; the
//! edge middleware ([`super::edge`]) renders every error response — ours, the JSON extractor's,
//! actix's own 404/405/413 — into the same envelope with the request id as `trace`:
//!
//! `{"errors":[{"code":"InvalidJson","message":"…","trace":"<request id>"}],"version":"v2"}`
//!
//! Internal causes are logged here, inside the request's span (so with its request id), and
//! never sent.

use std::borrow::Cow;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

pub use crate::errors::{Code, Kind};
use crate::errors::{ErrorCode, Told};

/// The HTTP status of a kind of failure (the code table says each code's kind).
pub fn status_of(kind: Kind) -> StatusCode {
    StatusCode::from_u16(kind.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// The code and message for an error response that did not come from an `ApiError`
/// (actix's own 404, 405, 413, …).
pub fn told_for_status(status: StatusCode) -> (Code, &'static str) {
    match status {
        StatusCode::BAD_REQUEST => (Code::BadRequest, "The request could not be understood"),
        StatusCode::UNAUTHORIZED => (Code::Unauthorized, "Authentication is required"),
        StatusCode::FORBIDDEN => (Code::Forbidden, "Not allowed"),
        StatusCode::NOT_FOUND => (Code::RouteNotFound, "No such route"),
        StatusCode::METHOD_NOT_ALLOWED => (
            Code::MethodNotAllowed,
            "This route does not accept that method",
        ),
        StatusCode::CONFLICT => (
            Code::Conflict,
            "The request conflicts with the current state",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            Code::BodyTooLarge,
            "The request body is larger than allowed",
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            (Code::UnsupportedContentType, "Unsupported content type")
        }
        StatusCode::UNPROCESSABLE_ENTITY => (Code::InvalidBody, "The request body is not valid"),
        StatusCode::TOO_MANY_REQUESTS => (Code::RateLimited, "Too many requests"),
        StatusCode::SERVICE_UNAVAILABLE => (Code::ServiceUnavailable, "The service is unavailable"),
        s if s.is_client_error() => (Code::BadRequest, "The request could not be served"),
        _ => (Code::InternalError, "Something went wrong on our side"),
    }
}

/// What the edge middleware needs to render an error envelope.
#[derive(Debug, Clone)]
pub struct ErrorInfo {
    pub code: Cow<'static, str>,
    pub message: Cow<'static, str>,
}

#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    pub kind: Kind,
    /// Stable and machine-readable: clients branch on it.
    pub code: Code,
    /// For people; safe to show.
    pub message: Cow<'static, str>,
    /// The internal cause, logged and never sent.
    #[source]
    pub source: Option<anyhow::Error>,
}

impl ApiError {
    /// An error with its code; the status follows from the code (the table in the `vrooli-codes` crate).
    pub fn of(code: Code, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            kind: code.kind(),
            code,
            message: message.into(),
            source: None,
        }
    }

    /// A failure that is ours, not the caller's: logged with its cause, answered as 500.
    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        Self {
            kind: Kind::Internal,
            code: Code::InternalError,
            message: "Something went wrong on our side".into(),
            source: Some(cause.into()),
        }
    }

    /// A dependency is down: answered as 503 so clients and load balancers retry elsewhere.
    pub fn unavailable(cause: impl Into<anyhow::Error>) -> Self {
        Self {
            kind: Kind::Unavailable,
            code: Code::ServiceUnavailable,
            message: "A service this request needs is unavailable; try again shortly".into(),
            source: Some(cause.into()),
        }
    }
}

/// Any domain error (and a database error) as its code says, the same on every transport
/// (`crate::errors`). A failure of ours keeps the error as its cause, logged with the response.
impl<E: ErrorCode> From<E> for ApiError {
    fn from(error: E) -> Self {
        let Told { code, message } = error.told();
        Self {
            kind: code.kind(),
            code,
            message,
            source: code.kind().is_ours().then(|| anyhow::Error::new(error)),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        status_of(self.kind)
    }

    fn error_response(&self) -> HttpResponse {
        if let Some(cause) = &self.source {
            if self.kind == Kind::Internal {
                tracing::error!(
                    code = self.code.as_str(),
                    cause = format!("{cause:#}"),
                    "request failed"
                );
            } else {
                tracing::warn!(
                    code = self.code.as_str(),
                    cause = format!("{cause:#}"),
                    "request failed"
                );
            }
        }
        let mut response = HttpResponse::new(self.status_code());
        response.extensions_mut().insert(ErrorInfo {
            code: Cow::Borrowed(self.code.as_str()),
            message: self.message.clone(),
        });
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_causes_stay_out_of_the_message() {
        let e = ApiError::internal(anyhow::anyhow!("password=hunter2 at db"));
        let response = e.error_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let info = response.extensions().get::<ErrorInfo>().cloned().unwrap();
        assert_eq!(info.code, "InternalError");
        assert!(!info.message.contains("hunter2"));
    }
}
