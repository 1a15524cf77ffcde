//! `ApiError`: the one error type handlers return, and the one table from error kind to HTTP
//! status. Its response carries an [`ErrorInfo`] in the response extensions and no body; the
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

pub use super::codes::Code;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    Conflict,
    PayloadTooLarge,
    UnsupportedMediaType,
    Unprocessable,
    TooManyRequests,
    /// Not enough credits for what was asked.
    PaymentRequired,
    Internal,
    Unavailable,
}

impl ErrorKind {
    pub fn status(self) -> StatusCode {
        match self {
            Self::BadRequest => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
            Self::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            Self::PaymentRequired => StatusCode::PAYMENT_REQUIRED,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The code and message for an error response that did not come from an `ApiError`
    /// (actix's own 404, 405, 413, …).
    pub fn from_status(status: StatusCode) -> (Code, &'static str) {
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
            StatusCode::UNPROCESSABLE_ENTITY => {
                (Code::InvalidBody, "The request body is not valid")
            }
            StatusCode::TOO_MANY_REQUESTS => (Code::RateLimited, "Too many requests"),
            StatusCode::SERVICE_UNAVAILABLE => {
                (Code::ServiceUnavailable, "The service is unavailable")
            }
            s if s.is_client_error() => (Code::BadRequest, "The request could not be served"),
            _ => (Code::InternalError, "Something went wrong on our side"),
        }
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
    pub kind: ErrorKind,
    /// Stable and machine-readable: clients branch on it.
    pub code: Code,
    /// For people; safe to show.
    pub message: Cow<'static, str>,
    /// The internal cause, logged and never sent.
    #[source]
    pub source: Option<anyhow::Error>,
}

impl ApiError {
    /// An error with its code; the status follows from the code (`codes.rs`).
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
            kind: ErrorKind::Internal,
            code: Code::InternalError,
            message: "Something went wrong on our side".into(),
            source: Some(cause.into()),
        }
    }

    /// A dependency is down: answered as 503 so clients and load balancers retry elsewhere.
    pub fn unavailable(cause: impl Into<anyhow::Error>) -> Self {
        Self {
            kind: ErrorKind::Unavailable,
            code: Code::ServiceUnavailable,
            message: "A service this request needs is unavailable; try again shortly".into(),
            source: Some(cause.into()),
        }
    }
}

/// The schema's constraints that stand for a rule a caller can break, each mapped once to the
/// code the caller gets (the migrations name them).
const CONSTRAINTS: &[(&str, Code, &str)] = &[
    (
        "emails_address_key",
        Code::EmailInUse,
        "An account with this email address exists",
    ),
    (
        "chat_participants_chat_user_key",
        Code::AlreadyParticipant,
        "That user already takes part in this chat",
    ),
    (
        "users_handle_key",
        Code::HandleTaken,
        "Someone has this handle",
    ),
    (
        "teams_handle_key",
        Code::HandleTaken,
        "A team with this handle exists",
    ),
    (
        "members_team_user_key",
        Code::AlreadyMember,
        "This user is already a member",
    ),
    (
        "api_keys_soft_below_hard",
        Code::InvalidLimits,
        "The soft limit must be at most the hard limit",
    ),
    (
        "credit_accounts_balance_not_negative",
        Code::InsufficientCredits,
        "Not enough credits",
    ),
];

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &error
            && let Some((_, code, message)) = CONSTRAINTS
                .iter()
                .find(|(name, _, _)| db.constraint() == Some(*name))
        {
            return Self {
                source: Some(error.into()),
                ..Self::of(*code, *message)
            };
        }
        match &error {
            // Any other unique or foreign-key violation: the caller's conflict, in general terms.
            sqlx::Error::Database(db) if db.is_unique_violation() => Self {
                source: Some(error.into()),
                ..Self::of(
                    Code::AlreadyExists,
                    "Something with these details already exists",
                )
            },
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => Self {
                source: Some(error.into()),
                ..Self::of(
                    Code::ReferenceNotFound,
                    "The request refers to something that does not exist",
                )
            },
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                Self::unavailable(error)
            }
            _ => Self::internal(error),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.kind.status()
    }

    fn error_response(&self) -> HttpResponse {
        if let Some(cause) = &self.source {
            if self.kind == ErrorKind::Internal {
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
    fn every_mapped_constraint_exists_in_the_migrations() {
        let migrations: String =
            std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
                .unwrap()
                .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
                .collect();
        for (name, _, _) in CONSTRAINTS {
            assert!(
                migrations.contains(name),
                "no constraint {name} in migrations/"
            );
        }
    }

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
