//! The rules a sign-in's inputs meet, shared by the auth handlers and the profile's
//! credentials change: an email address that parses, a password within the configured length.

use secrecy::{ExposeSecret, SecretString};

use crate::domain::EmailAddress;
use crate::errors::Code;
use crate::http::error::ApiError;
use crate::state::AppState;

pub(crate) fn parse_email(text: &str) -> Result<EmailAddress, ApiError> {
    EmailAddress::parse(text)
        .map_err(|_| ApiError::of(Code::InvalidEmail, "This is not an email address"))
}

pub(crate) fn check_password_rules(
    state: &AppState,
    password: &SecretString,
) -> Result<(), ApiError> {
    let settings = state.auth.sessions.settings();
    let length = password.expose_secret().chars().count();
    if length < settings.password_min_length || length > settings.password_max_length {
        return Err(ApiError::of(
            Code::InvalidPassword,
            format!(
                "A password is {}-{} characters",
                settings.password_min_length, settings.password_max_length
            ),
        ));
    }
    Ok(())
}
