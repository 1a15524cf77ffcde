//! Why a sign-in or a sign-up failed, and the code each answers with.

use crate::errors::{Code, ErrorCode, Told};

use crate::auth::token::TokenError;

#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
    /// The current account's session was revoked, expired or its user locked.
    #[error("the session was signed out")]
    SessionEnded,
    #[error(transparent)]
    Token(TokenError),
}

impl ErrorCode for SignInError {
    fn told(&self) -> Told {
        match self {
            SignInError::Token(e @ TokenError::TooLarge(_)) => Told::says(Code::SessionTooLarge, e),
            SignInError::SessionEnded => Told::says(Code::SessionRevoked, self),
            SignInError::Sql(_) | SignInError::Token(_) => Told::internal(),
        }
    }
}

/// Why a sign-up did not happen (nothing was written).
#[derive(Debug, thiserror::Error)]
pub enum SignUpError {
    #[error(transparent)]
    Account(crate::auth::accounts::AccountError),
    #[error(transparent)]
    SignIn(#[from] SignInError),
}

impl ErrorCode for SignUpError {
    fn told(&self) -> Told {
        match self {
            SignUpError::Account(e) => e.told(),
            SignUpError::SignIn(e) => e.told(),
        }
    }
}
