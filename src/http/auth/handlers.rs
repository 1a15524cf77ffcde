//! Thin handlers: parse the body into domain types, call `accounts` / `AuthService`, answer the
//! session (`{"isLoggedIn", "users": [...]}`) and set or clear the cookie.

use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;

use super::session::{AuthUser, MaybeAuthUser, removal_cookie, session_cookie};
use crate::auth::Device;
use crate::auth::accounts::{AccountError, NewAccount};
use crate::auth::service::SignInError;
use crate::auth::token::TokenUser;
use crate::domain::EmailAddress;
use crate::http::Code;
use crate::http::error::ApiError;
use crate::ids::UserId;
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignupBody {
    name: String,
    email: String,
    password: SecretString,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LoginBody {
    email: String,
    password: SecretString,
    /// `"bearer"` for API clients: tokens in the body (access + rotating refresh token) instead
    /// of the cookie.
    token_type: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct UserBody {
    id: Option<UserId>,
}

fn session_body(users: &[TokenUser]) -> serde_json::Value {
    let users: Vec<_> = users
        .iter()
        .map(|u| json!({ "id": u.id, "handle": u.handle, "name": u.name }))
        .collect();
    json!({ "data": { "isLoggedIn": !users.is_empty(), "users": users }, "version": "v2" })
}

fn parse_email(text: &str) -> Result<EmailAddress, ApiError> {
    EmailAddress::parse(text)
        .map_err(|_| ApiError::of(Code::InvalidEmail, "This is not an email address"))
}

fn device(req: &HttpRequest) -> Device {
    Device {
        info: req
            .headers()
            .get("user-agent")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        // Behind a trusted proxy the forwarded address, as the rate limiter uses.
        ip: {
            let behind_proxy = req
                .app_data::<web::Data<crate::http::rate_limit::RateLimits>>()
                .is_some_and(|l| l.behind_proxy);
            crate::http::rate_limit::client_ip(req, behind_proxy).and_then(|ip| ip.parse().ok())
        },
    }
}

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

fn signed_in(state: &AppState, users: &[TokenUser], token: String) -> HttpResponse {
    HttpResponse::Ok()
        .cookie(session_cookie(state.auth.settings(), token))
        .json(session_body(users))
}

/// `POST /api/v2/auth/email/signup {name, email, password}`
pub async fn signup(
    req: HttpRequest,
    state: web::Data<AppState>,
    current: MaybeAuthUser,
    body: web::Json<SignupBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let name = body.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 128 {
        return Err(ApiError::of(
            Code::InvalidName,
            "A name is 1-128 characters",
        ));
    }
    let email = parse_email(&body.email)?;
    check_password_rules(&state, &body.password)?;
    let password_hash = crate::auth::password::hash(body.password)
        .await
        .map_err(ApiError::internal)?;
    let account = NewAccount {
        name,
        email,
        password_hash,
    };
    let others = current.0.map(|c| c.users).unwrap_or_default();
    let (users, token) = state
        .auth
        .sign_up(&state.jobs, account, &device(&req), others)
        .await
        .map_err(|e| match e {
            crate::auth::service::SignUpError::Account(e) => ApiError::from(e),
            crate::auth::service::SignUpError::SignIn(e) => ApiError::from(e),
        })?;
    Ok(signed_in(&state, &users, token))
}

/// `POST /api/v2/auth/email/login {email, password}`: adds the account to this browser's session.
pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    current: MaybeAuthUser,
    body: web::Json<LoginBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let bearer = match body.token_type.as_deref() {
        None | Some("cookie") => false,
        Some("bearer") => true,
        Some(_) => {
            return Err(ApiError::of(
                Code::InvalidTokenType,
                "tokenType is \"cookie\" or \"bearer\"",
            ));
        }
    };
    let email = parse_email(&body.email)?;
    let (user, auth) = state
        .auth
        .check_password(
            &email,
            body.password,
            &device(&req)
                .ip
                .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string()),
            chrono::Utc::now(),
        )
        .await?;
    let others = if bearer {
        Vec::new()
    } else {
        current.0.map(|c| c.users).unwrap_or_default()
    };
    let (users, token) = state
        .auth
        .sign_in(user, auth, &device(&req), others)
        .await?;
    if bearer {
        let refresh = state.auth.rotate_refresh_token(users[0].session_id).await?;
        return Ok(bearer_tokens(&users, token, refresh));
    }
    Ok(signed_in(&state, &users, token))
}

fn bearer_tokens(users: &[TokenUser], access: String, refresh: String) -> HttpResponse {
    let mut body = session_body(users);
    body["data"]["accessToken"] = json!(access);
    body["data"]["refreshToken"] = json!(refresh);
    HttpResponse::Ok().json(body)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RefreshBody {
    refresh_token: String,
}

/// `POST /api/v2/auth/refresh {refreshToken}`: for API clients. Answers a new access token and a
/// new refresh token; the old refresh token stops working, and presenting it again revokes the
/// session.
pub async fn refresh(
    state: web::Data<AppState>,
    body: web::Json<RefreshBody>,
) -> Result<HttpResponse, ApiError> {
    use crate::auth::service::RefreshError;
    match state
        .auth
        .refresh_with(&body.into_inner().refresh_token)
        .await
    {
        Ok((users, access, refresh)) => Ok(bearer_tokens(&users, access, refresh)),
        Err(RefreshError::Invalid) => Err(ApiError::of(
            Code::InvalidRefreshToken,
            "The refresh token is not valid",
        )),
        Err(RefreshError::Reused) => Err(ApiError::of(
            Code::RefreshTokenReused,
            "This refresh token was already used; the session has been signed out",
        )),
        Err(RefreshError::SignIn(e)) => Err(e.into()),
    }
}

/// `POST /api/v2/auth/logout {id?}`: signs one account (default: the current one) out of this
/// browser and revokes its session.
pub async fn logout(
    state: web::Data<AppState>,
    user: AuthUser,
    body: Option<web::Json<UserBody>>,
) -> Result<HttpResponse, ApiError> {
    let target = body.and_then(|b| b.into_inner().id).unwrap_or(user.id);
    let (users, token) = state.auth.sign_out(user.users, target).await?;
    Ok(match token {
        Some(token) => signed_in(&state, &users, token),
        None => HttpResponse::Ok()
            .cookie(removal_cookie(state.auth.settings()))
            .json(session_body(&[])),
    })
}

/// `POST /api/v2/auth/logoutAll`: revokes every session of every account on this browser, on
/// every device.
pub async fn logout_all(
    state: web::Data<AppState>,
    user: AuthUser,
) -> Result<HttpResponse, ApiError> {
    state.auth.sign_out_everywhere(&user.users).await?;
    Ok(HttpResponse::Ok()
        .cookie(removal_cookie(state.auth.settings()))
        .json(session_body(&[])))
}

/// `POST /api/v2/auth/guest/login`: a guest session (`isLoggedIn: false`, no users). As in the
/// original, a guest session replaces the browser's cookie; the signed-in session it held is not
/// revoked (log out for that) and simply expires unused.
pub async fn guest_login(state: web::Data<AppState>, current: MaybeAuthUser) -> HttpResponse {
    let mut response = HttpResponse::Ok();
    if current.0.is_some() {
        response.cookie(removal_cookie(state.auth.settings()));
    }
    response.json(session_body(&[]))
}

/// `POST /api/v2/auth/validateSession`: the current session, or `isLoggedIn: false`.
pub async fn validate_session(current: MaybeAuthUser) -> HttpResponse {
    HttpResponse::Ok().json(session_body(
        &current.0.map(|c| c.users).unwrap_or_default(),
    ))
}

/// `POST /api/v2/auth/switchCurrentAccount {id}`: makes another signed-in account current.
pub async fn switch_current_account(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<UserBody>,
) -> Result<HttpResponse, ApiError> {
    let target = body
        .into_inner()
        .id
        .ok_or_else(|| ApiError::of(Code::MissingId, "Send the id of the account"))?;
    match state.auth.switch_current(user.users, target).await? {
        Some((users, token)) => Ok(signed_in(&state, &users, token)),
        None => Err(ApiError::of(
            Code::AccountNotSignedIn,
            "That account is not signed in on this browser",
        )),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailBody {
    email: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(rename_all = "camelCase")]
pub struct ResetBody {
    code: String,
    new_password: SecretString,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeBody {
    code: String,
}

fn check_password_rules(state: &AppState, password: &SecretString) -> Result<(), ApiError> {
    let settings = state.auth.settings();
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

/// `POST /api/v2/auth/email/requestPasswordChange {email}`: mails a reset link if the account
/// exists. The answer is the same either way, so it does not reveal who has an account.
pub async fn request_password_change(
    state: web::Data<AppState>,
    body: web::Json<EmailBody>,
) -> Result<HttpResponse, ApiError> {
    let email = parse_email(&body.into_inner().email)?;
    state
        .auth
        .request_password_reset(&state.jobs, &email)
        .await?;
    Ok(crate::http::ok(json!({ "sent": true })))
}

/// `POST /api/v2/auth/email/resetPassword {code, newPassword}`: sets the password, signs every
/// device out, and signs this browser in.
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
    let (user, auth) = state.auth.reset_password(&body.code, hash).await?;
    let (users, token) = state
        .auth
        .sign_in(user, auth, &device(&req), Vec::new())
        .await?;
    Ok(signed_in(&state, &users, token))
}

/// `POST /api/v2/auth/email/verify {code}`: confirms the address the code was mailed to.
pub async fn verify_email(
    state: web::Data<AppState>,
    body: web::Json<CodeBody>,
) -> Result<HttpResponse, ApiError> {
    state.auth.verify_email(&body.into_inner().code).await?;
    Ok(crate::http::ok(json!({ "verified": true })))
}
