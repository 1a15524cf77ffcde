//! The flows a mailed code completes: ask for a password reset, set the new password with the
//! code (which signs this browser in, through `handlers::signed_in`), verify an email address.
//! The mails themselves are queued by `AuthService` (`email-send` jobs).

use actix_web::{HttpRequest, HttpResponse, post, web};
use secrecy::SecretString;
use serde::Deserialize;
use utoipa::ToSchema;

use super::bodies::*;
use super::handlers::{device, signed_in};
use super::rules::{check_password_rules, parse_email};
use crate::http::error::ApiError;
use crate::http::reply::{Envelope, ok};
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailBody {
    email: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[serde(rename_all = "camelCase")]
pub struct ResetBody {
    /// The code from the reset mail.
    code: String,
    /// Within the configured length bounds.
    #[schema(value_type = String, format = Password)]
    new_password: SecretString,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeBody {
    /// The code from the verification mail.
    code: String,
}

/// Mails a password reset link if the account exists.
///
/// The answer is the same either way, so it does not reveal who has an account.
#[utoipa::path(
    tag = "auth",
    request_body = EmailBody,
    responses((status = 200, description = "Done (whether or not the account exists)", body = Envelope<Sent>)),
    security(("public" = [])),
)]
#[post("/auth/email/requestPasswordChange")]
pub async fn request_password_change(
    state: web::Data<AppState>,
    body: web::Json<EmailBody>,
) -> Result<HttpResponse, ApiError> {
    let email = parse_email(&body.into_inner().email)?;
    state
        .auth
        .sessions
        .request_password_reset(&state.infra.jobs, &email)
        .await?;
    Ok(ok(Sent { sent: true }))
}

/// Sets a new password with the code from the reset mail.
///
/// Signs every device out, and signs this browser in as that account alone (sets the session
/// cookie).
#[utoipa::path(
    tag = "auth",
    request_body = ResetBody,
    responses((
        status = 200,
        description = "Signed in with the new password",
        body = Envelope<Session>,
        headers(("Set-Cookie" = String, description = "The session cookie")),
    )),
    security(("public" = [])),
)]
#[post("/auth/email/resetPassword")]
pub async fn reset_password(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<ResetBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    check_password_rules(&state, &body.new_password)?;
    let hash = crate::auth::password::hash(body.new_password)
        .await
        .map_err(ApiError::internal)?;
    let (user, auth) = state.auth.sessions.reset_password(&body.code, hash).await?;
    let (users, token) = state
        .auth
        .sessions
        .sign_in(user, auth, &device(&req), Vec::new())
        .await?;
    Ok(signed_in(&state, &users, token))
}

/// Confirms the email address a verification code was mailed to.
#[utoipa::path(
    tag = "auth",
    request_body = CodeBody,
    responses((status = 200, description = "The address is verified", body = Envelope<Verified>)),
    security(("public" = [])),
)]
#[post("/auth/email/verify")]
pub async fn verify_email(
    state: web::Data<AppState>,
    body: web::Json<CodeBody>,
) -> Result<HttpResponse, ApiError> {
    state
        .auth
        .sessions
        .verify_email(&body.into_inner().code)
        .await?;
    Ok(ok(Verified { verified: true }))
}
