//! The auth services' errors as API errors: each failure named once with its code.

use crate::auth::accounts::AccountError;
use crate::auth::service::SignInError;
use crate::http::codes::Code;
use crate::http::error::ApiError;

impl From<AccountError> for ApiError {
    fn from(error: AccountError) -> Self {
        match error {
            AccountError::EmailInUse => ApiError::of(
                Code::EmailInUse,
                "An account with this email address exists",
            ),
            AccountError::InvalidCode => ApiError::of(
                Code::InvalidCode,
                "This code is wrong, already used or expired",
            ),
            AccountError::InvalidCredentials => {
                ApiError::of(Code::InvalidCredentials, "Wrong email or password")
            }
            e @ AccountError::SoftLocked { .. } => {
                ApiError::of(Code::AccountSoftLocked, e.to_string())
            }
            e @ AccountError::HardLocked => ApiError::of(Code::AccountHardLocked, e.to_string()),
            other => ApiError::internal(other),
        }
    }
}

impl From<SignInError> for ApiError {
    fn from(error: SignInError) -> Self {
        match error {
            SignInError::Token(e @ crate::auth::token::TokenError::TooLarge(_)) => {
                ApiError::of(Code::SessionTooLarge, e.to_string())
            }
            e @ SignInError::SessionEnded => ApiError::of(Code::SessionRevoked, e.to_string()),
            other => ApiError::internal(other),
        }
    }
}
