//! The session middleware and the auth extractors.
//!
//! For every request the middleware reads the session token (the cookie, or
//! `Authorization: Bearer <token>` for API clients), authenticates it once, and leaves the result
//! in the request's extensions for [`AuthUser`] / [`MaybeAuthUser`]. On the way out it sets the
//! refreshed cookie after a silent refresh, or removes a cookie whose session is gone — unless the
//! handler set the cookie itself (sign-in, sign-out).

use std::future::{Ready, ready};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::cookie::{Cookie, SameSite, time};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::AUTHORIZATION;
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};

use crate::auth::token::TokenUser;
use crate::auth::{AuthFailure, Authenticated};
use crate::config::AuthSettings;
use crate::http::error::{ApiError, ErrorKind};
use crate::ids::{SessionId, UserId};
use crate::state::AppState;

/// What the middleware found.
#[derive(Debug, Clone)]
pub enum AuthState {
    Anonymous,
    Authenticated(Authenticated),
    Failed(AuthFailure),
}

pub async fn session_layer(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let settings = state.auth.settings();
    let from_cookie = req
        .cookie(&settings.cookie_name)
        .map(|c| c.value().to_owned());
    let token = from_cookie.clone().or_else(|| bearer_token(req.request()));
    let outcome = match &token {
        None => AuthState::Anonymous,
        Some(token) => match state.auth.authenticate(token).await {
            Ok(authenticated) => AuthState::Authenticated(authenticated),
            Err(failure) => AuthState::Failed(failure),
        },
    };
    let refreshed = match &outcome {
        AuthState::Authenticated(a) => a.refreshed.clone(),
        _ => None,
    };
    let remove = from_cookie.is_some() && matches!(outcome, AuthState::Failed(_));
    req.extensions_mut().insert(outcome);

    let mut response = next.call(req).await?.map_into_boxed_body();
    let handler_set_cookie = response
        .response()
        .cookies()
        .any(|c| c.name() == settings.cookie_name);
    if !handler_set_cookie {
        if let Some(token) = refreshed {
            let _ = response
                .response_mut()
                .add_cookie(&session_cookie(settings, token));
        } else if remove {
            let _ = response
                .response_mut()
                .add_cookie(&removal_cookie(settings));
        }
    }
    Ok(response)
}

/// `Authorization: Bearer <jwt>` (three dot-separated parts; API keys are told apart later).
fn bearer_token(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let token = value.strip_prefix("Bearer ")?.trim();
    (token.split('.').count() == 3).then(|| token.to_owned())
}

/// The session cookie: HttpOnly, SameSite=Lax, Secure when configured, for the session lifetime.
pub fn session_cookie(settings: &AuthSettings, token: String) -> Cookie<'static> {
    Cookie::build(settings.cookie_name.clone(), token)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(settings.cookie_secure)
        .max_age(time::Duration::days(settings.session_days as i64))
        .finish()
}

pub fn removal_cookie(settings: &AuthSettings) -> Cookie<'static> {
    let mut cookie = session_cookie(settings, String::new());
    cookie.make_removal();
    cookie
}

/// A signed-in user (the current one of the token). Anything else answers 401.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub id: UserId,
    pub session_id: SessionId,
    /// Every user signed in on this browser, the current one first.
    pub users: Vec<TokenUser>,
}

/// The signed-in user, if any. A bad or revoked token counts as no user.
#[derive(Debug, Clone)]
pub struct MaybeAuthUser(pub Option<AuthUser>);

fn auth_user(req: &HttpRequest) -> Result<AuthUser, ApiError> {
    let extensions = req.extensions();
    match extensions.get::<AuthState>() {
        Some(AuthState::Authenticated(a)) => Ok(AuthUser {
            id: a.current().id,
            session_id: a.current().session_id,
            users: a.users.clone(),
        }),
        Some(AuthState::Failed(failure)) => Err(ApiError::new(
            ErrorKind::Unauthorized,
            match failure {
                AuthFailure::InvalidToken => "InvalidToken",
                AuthFailure::Expired => "SessionExpired",
                AuthFailure::Revoked => "SessionRevoked",
            },
            failure.to_string(),
        )),
        Some(AuthState::Anonymous) | None => Err(ApiError::new(
            ErrorKind::Unauthorized,
            "NotLoggedIn",
            "Sign in to do this",
        )),
    }
}

impl FromRequest for AuthUser {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(auth_user(req))
    }
}

impl FromRequest for MaybeAuthUser {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(MaybeAuthUser(auth_user(req).ok())))
    }
}
