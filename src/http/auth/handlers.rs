//! Thin handlers: parse the body into domain types, call `accounts` / `AuthService`, answer the
//! session (`{"isLoggedIn", "users": [...]}`) and set or clear the cookie. Signing up, in and
//! out, refreshing and switching accounts; the flows a mailed code completes are `emailed.rs`.

use actix_web::cookie::Cookie;
use actix_web::{HttpRequest, HttpResponse, post, web};
use serde::Serialize;

use super::bodies::*;
use super::rules::{check_password_rules, parse_email};
use super::session::{AuthUser, MaybeAuthUser, removal_cookie, session_cookie};
use crate::auth::Device;
use crate::auth::accounts::NewAccount;
use crate::auth::token::TokenUser;
use crate::errors::Code;
use crate::http::error::ApiError;
use crate::http::reply::{Envelope, ok};
use crate::state::AppState;

/// The enveloped `data` with a cookie set (or removed).
fn with_cookie<T: Serialize>(cookie: Cookie<'static>, data: T) -> HttpResponse {
    HttpResponse::Ok().cookie(cookie).json(Envelope {
        data,
        version: "v2",
    })
}

pub(super) fn device(req: &HttpRequest) -> Device {
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

pub(super) fn signed_in(state: &AppState, users: &[TokenUser], token: String) -> HttpResponse {
    with_cookie(
        session_cookie(state.auth.sessions.settings(), token),
        session_body(users),
    )
}

/// `tokenType` of a sign-up or login: whether the client wants bearer tokens (else a cookie).
fn wants_bearer(token_type: Option<&str>) -> Result<bool, ApiError> {
    match token_type {
        None | Some("cookie") => Ok(false),
        Some("bearer") => Ok(true),
        Some(_) => Err(ApiError::of(
            Code::InvalidTokenType,
            "tokenType is \"cookie\" or \"bearer\"",
        )),
    }
}

/// Creates an account with email and password and signs it in.
///
/// With a cookie (the default) the new account joins the accounts already signed in on this
/// browser, as the current one, and the session cookie is set. With `tokenType: "bearer"`, as
/// for login, no cookie is set: the answer holds an access token and a refresh token.
#[utoipa::path(
    tag = "auth",
    request_body = SignupBody,
    responses((
        status = 200,
        description = "Signed in as the new account: the session (cookie) or the session with its tokens (bearer)",
        body = Envelope<LoginSession>,
        headers(("Set-Cookie" = String, description = "The session cookie (cookie sign-up only)")),
    )),
    security((), ("cookie" = []), ("bearer" = [])),
)]
#[post("/auth/email/signup")]
pub async fn signup(
    req: HttpRequest,
    state: web::Data<AppState>,
    current: MaybeAuthUser,
    body: web::Json<SignupBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let bearer = wants_bearer(body.token_type.as_deref())?;
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
    let others = if bearer {
        Vec::new()
    } else {
        current.0.map(|c| c.users).unwrap_or_default()
    };
    let (users, token) = state
        .auth
        .sessions
        .sign_up(&state.infra.jobs, account, &device(&req), others)
        .await?;
    if bearer {
        return bearer_answer(&state, &users, token).await;
    }
    Ok(signed_in(&state, &users, token))
}

/// The session with its tokens (a new rotating refresh token): what a bearer client gets.
async fn bearer_answer(
    state: &AppState,
    users: &[TokenUser],
    token: String,
) -> Result<HttpResponse, ApiError> {
    let refresh_token = state
        .auth
        .sessions
        .rotate_refresh_token(users[0].session_id)
        .await?;
    Ok(ok(LoginSession::Bearer(bearer_tokens(
        users,
        token,
        refresh_token,
    ))))
}

/// Signs in with email and password.
///
/// With a cookie (the default) the account joins this browser's session, as the current one,
/// and the session cookie is set. With `tokenType: "bearer"` no cookie is set: the answer holds
/// an access token and a refresh token for a new session of this account alone.
#[utoipa::path(
    tag = "auth",
    request_body = LoginBody,
    responses((
        status = 200,
        description = "Signed in: the session (cookie) or the session with its tokens (bearer)",
        body = Envelope<LoginSession>,
        headers(("Set-Cookie" = String, description = "The session cookie (cookie login only)")),
    )),
    security((), ("cookie" = []), ("bearer" = [])),
)]
#[post("/auth/email/login")]
pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    current: MaybeAuthUser,
    body: web::Json<LoginBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let bearer = wants_bearer(body.token_type.as_deref())?;
    let email = parse_email(&body.email)?;
    let (user, auth) = state
        .auth
        .sessions
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
        .sessions
        .sign_in(user, auth, &device(&req), others)
        .await?;
    if bearer {
        return bearer_answer(&state, &users, token).await;
    }
    Ok(with_cookie(
        session_cookie(state.auth.sessions.settings(), token),
        LoginSession::Cookie(session_body(&users)),
    ))
}

/// Renews an API client's tokens.
///
/// Answers a new access token and a new refresh token; the old refresh token stops working, and
/// presenting it again revokes the session. No cookie is read or set: the refresh token is the
/// credential.
#[utoipa::path(
    tag = "auth",
    request_body = RefreshBody,
    responses((status = 200, description = "The session with new tokens", body = Envelope<BearerSession>)),
    security(("public" = [])),
)]
#[post("/auth/refresh")]
pub async fn refresh(
    state: web::Data<AppState>,
    body: web::Json<RefreshBody>,
) -> Result<HttpResponse, ApiError> {
    match state
        .auth
        .sessions
        .refresh_with(&body.into_inner().refresh_token)
        .await
    {
        Ok((users, access, renewed)) => Ok(ok(bearer_tokens(&users, access, renewed))),
        Err(e) => Err(e.into()),
    }
}

/// Signs one account out of this browser.
///
/// The account (by default the current one) leaves the session and its session is revoked. The
/// cookie is replaced by the remaining accounts' session, or removed when none is left.
#[utoipa::path(
    tag = "auth",
    request_body = Option<UserBody>,
    responses((
        status = 200,
        description = "The accounts still signed in (none: `isLoggedIn: false`)",
        body = Envelope<Session>,
        headers(("Set-Cookie" = String, description = "The new session cookie, or its removal")),
    )),
    security(("cookie" = []), ("bearer" = [])),
)]
#[post("/auth/logout")]
pub async fn logout(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let body: Option<UserBody> = crate::http::extract::optional_json(&body)?;
    let target = body.and_then(|b| b.id).unwrap_or(user.id);
    let (users, token) = state.auth.sessions.sign_out(user.users, target).await?;
    Ok(match token {
        Some(token) => signed_in(&state, &users, token),
        None => with_cookie(
            removal_cookie(state.auth.sessions.settings()),
            session_body(&[]),
        ),
    })
}

/// Signs out everywhere.
///
/// Revokes every session of every account signed in on this browser, on every device, and
/// removes the cookie.
#[utoipa::path(
    tag = "auth",
    responses((
        status = 200,
        description = "Signed out (`isLoggedIn: false`)",
        body = Envelope<Session>,
        headers(("Set-Cookie" = String, description = "The cookie's removal")),
    )),
    security(("cookie" = []), ("bearer" = [])),
)]
#[post("/auth/logoutAll")]
pub async fn logout_all(
    state: web::Data<AppState>,
    user: AuthUser,
) -> Result<HttpResponse, ApiError> {
    state.auth.sessions.sign_out_everywhere(&user.users).await?;
    Ok(with_cookie(
        removal_cookie(state.auth.sessions.settings()),
        session_body(&[]),
    ))
}

/// Starts a guest session (`isLoggedIn: false`, no users).
///
/// As in the original, a guest session replaces the browser's cookie: a session cookie is
/// removed; the signed-in session it held is not revoked (log out for that) and simply expires
/// unused.
#[utoipa::path(
    tag = "auth",
    responses((
        status = 200,
        description = "A guest session",
        body = Envelope<Session>,
        headers(("Set-Cookie" = String, description = "The removal of a session cookie, if one was sent")),
    )),
    security((), ("cookie" = []), ("bearer" = [])),
)]
#[post("/auth/guest/login")]
pub async fn guest_login(state: web::Data<AppState>, current: MaybeAuthUser) -> HttpResponse {
    let mut response = HttpResponse::Ok();
    if current.0.is_some() {
        response.cookie(removal_cookie(state.auth.sessions.settings()));
    }
    response.json(Envelope {
        data: session_body(&[]),
        version: "v2",
    })
}

/// The current session, or `isLoggedIn: false`.
///
/// Never fails for want of a session: a missing, bad or revoked token is a guest.
#[utoipa::path(
    tag = "auth",
    responses((status = 200, description = "The session", body = Envelope<Session>)),
    security((), ("cookie" = []), ("bearer" = [])),
)]
#[post("/auth/validateSession")]
pub async fn validate_session(current: MaybeAuthUser) -> HttpResponse {
    ok(session_body(
        &current.0.map(|c| c.users).unwrap_or_default(),
    ))
}

/// Makes another account signed in on this browser the current one.
#[utoipa::path(
    tag = "auth",
    request_body = UserBody,
    responses(
        (
            status = 200,
            description = "The session, that account first",
            body = Envelope<Session>,
            headers(("Set-Cookie" = String, description = "The session cookie")),
        ),
        (status = 400, description = "That account is not signed in on this browser (`AccountNotSignedIn`)", body = crate::http::openapi::ErrorEnvelope),
    ),
    security(("cookie" = []), ("bearer" = [])),
)]
#[post("/auth/switchCurrentAccount")]
pub async fn switch_current_account(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<UserBody>,
) -> Result<HttpResponse, ApiError> {
    let target = body
        .into_inner()
        .id
        .ok_or_else(|| ApiError::of(Code::MissingId, "Send the id of the account"))?;
    match state
        .auth
        .sessions
        .switch_current(user.users, target)
        .await?
    {
        Some((users, token)) => Ok(signed_in(&state, &users, token)),
        None => Err(ApiError::of(
            Code::AccountNotSignedIn,
            "That account is not signed in on this browser",
        )),
    }
}
