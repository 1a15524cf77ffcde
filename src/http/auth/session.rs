//! The session middleware and the auth extractors.
//!
//! For every request the middleware reads the session token (the cookie, or
//! `Authorization: Bearer <token>` for API clients), authenticates it once, and leaves the result
//! in the request's extensions for [`AuthUser`] / [`MaybeAuthUser`]. On the way out it sets the
//! refreshed cookie after a silent refresh, or removes a cookie whose session is gone — unless the
//! handler set the cookie itself (sign-in, sign-out).
//!
//! On the routes of [`CONFIRMED_BY_HANDLER`] a token within its access window is left
//! [`AuthState::Unconfirmed`]: only [`SessionReader`](super::readers::SessionReader) takes it, and hands the session to the
//! handler's statement, which looks its row up (instead of a Redis round trip here). Every other
//! extractor refuses that state, so a route listed by mistake fails loudly, never open.

use std::future::{Ready, ready};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::cookie::{Cookie, SameSite, time};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::AUTHORIZATION;
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use tracing_actix_web::RootSpan;

use crate::auth::api_keys::{ApiKeyAuth, KEY_PREFIX, MissingPermission, Permission};
use crate::auth::token::TokenUser;
use crate::auth::{AuthFailure, Authenticated, Authentication};
use crate::config::AuthSettings;
use crate::errors::Code;
use crate::http::error::ApiError;
use crate::ids::{SessionId, UserId};
use crate::state::AppState;

/// What the middleware found.
#[derive(Debug, Clone)]
pub enum AuthState {
    Anonymous,
    Authenticated(Authenticated),
    /// A valid token within its access window whose session nobody has looked up yet: see
    /// [`CONFIRMED_BY_HANDLER`].
    Unconfirmed(Authenticated),
    Failed(AuthFailure),
    /// A valid, enabled API key.
    ApiKey(ApiKeyAuth),
    /// An API key was presented but is unknown or disabled.
    BadApiKey,
}

impl AuthState {
    /// Who is calling, for the request span's `user_id`: the session's current user (also when
    /// unconfirmed: the token is ours, the handler's statement checks its session), or the API
    /// key's owner (a team key's maker).
    fn caller(&self) -> Option<UserId> {
        match self {
            AuthState::Authenticated(a) | AuthState::Unconfirmed(a) => Some(a.current().id),
            AuthState::ApiKey(key) => Some(key.user),
            AuthState::Anonymous | AuthState::Failed(_) | AuthState::BadApiKey => None,
        }
    }
}

pub async fn session_layer(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let settings = state.auth.sessions.settings();
    let from_cookie = req
        .cookie(&settings.cookie_name)
        .map(|c| c.value().to_owned());
    let token = from_cookie.clone().or_else(|| bearer_token(req.request()));
    let api_key = api_key(req.request());
    let outcome = match (&api_key, &token) {
        // Boxed, as the session's refresh is: see `AuthService::authenticate`.
        (Some(key), _) => match Box::pin(state.auth.api_keys.authenticate(key)).await {
            Ok(Some(auth)) => AuthState::ApiKey(auth),
            Ok(None) => AuthState::BadApiKey,
            Err(error) => {
                tracing::warn!(%error, "API key lookup failed");
                AuthState::BadApiKey
            }
        },
        (None, None) => AuthState::Anonymous,
        (None, Some(token)) if confirmed_by_handler(&req) => {
            match state.auth.sessions.authenticate_unconfirmed(token).await {
                Ok(Authentication::Confirmed(authenticated)) => {
                    AuthState::Authenticated(authenticated)
                }
                Ok(Authentication::Unconfirmed(authenticated)) => {
                    AuthState::Unconfirmed(authenticated)
                }
                Err(failure) => AuthState::Failed(failure),
            }
        }
        (None, Some(token)) => match state.auth.sessions.authenticate(token).await {
            Ok(authenticated) => AuthState::Authenticated(authenticated),
            Err(failure) => AuthState::Failed(failure),
        },
    };
    let refreshed = match &outcome {
        AuthState::Authenticated(a) => a.refreshed.clone(),
        _ => None,
    };
    if let Some(user) = outcome.caller()
        && let Some(span) = req.extensions().get::<RootSpan>()
    {
        span.record("user_id", tracing::field::display(user));
    }
    req.extensions_mut().insert(outcome);

    let mut response = next.call(req).await?.map_into_boxed_body();
    // Read after the handler: one that confirmed the session itself may have found it ended.
    let remove = from_cookie.is_some()
        && matches!(
            response.request().extensions().get::<AuthState>(),
            Some(AuthState::Failed(_))
        );
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

/// Routes (method GET) whose handler takes [`SessionReader`](super::readers::SessionReader) and looks the session's row up in
/// the statement it runs anyway, so the middleware skips the revocation list's round trip: the
/// page of chat messages, the most frequent authenticated read (issue 13).
const CONFIRMED_BY_HANDLER: &[&str] = &["/api/v2/chatMessages"];

fn confirmed_by_handler(req: &ServiceRequest) -> bool {
    req.method() == actix_web::http::Method::GET
        && crate::http::request_span::route(req.request())
            .is_some_and(|route| CONFIRMED_BY_HANDLER.contains(&&*route))
}

/// An API key: `X-API-Key: <key>`, `Authorization: ApiKey <key>`, or `Authorization: Bearer
/// vrk_…` (told apart from session tokens by its prefix).
fn api_key(req: &HttpRequest) -> Option<String> {
    if let Some(key) = req.headers().get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(key.trim().to_owned());
    }
    let value = req.headers().get(AUTHORIZATION)?.to_str().ok()?;
    if let Some(key) = value.strip_prefix("ApiKey ") {
        return Some(key.trim().to_owned());
    }
    let token = value.strip_prefix("Bearer ")?.trim();
    token.starts_with(KEY_PREFIX).then(|| token.to_owned())
}

/// `Authorization: Bearer <jwt>` (three dot-separated parts).
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
        Some(AuthState::Failed(failure)) => Err(ApiError::of(
            match failure {
                AuthFailure::InvalidToken => Code::InvalidToken,
                AuthFailure::Expired => Code::SessionExpired,
                AuthFailure::Revoked => Code::SessionRevoked,
            },
            failure.to_string(),
        )),
        Some(AuthState::Unconfirmed(_)) => Err(unconfirmed()),
        Some(AuthState::ApiKey(_)) => Err(ApiError::of(
            Code::SessionRequired,
            "This needs a signed-in session, not an API key",
        )),
        Some(AuthState::BadApiKey) => Err(invalid_api_key()),
        Some(AuthState::Anonymous) | None => {
            Err(ApiError::of(Code::NotLoggedIn, not_logged_in(req)))
        }
    }
}

/// Why nobody is signed in, when the server can tell: a browser drops a `Secure` cookie on
/// plain http, and the person sees only that every call after signing in is refused.
fn not_logged_in(req: &HttpRequest) -> String {
    let secure_cookie = req
        .app_data::<web::Data<AppState>>()
        .is_some_and(|state| state.auth.sessions.settings().cookie_secure);
    let plain_http = req.connection_info().scheme() == "http";
    if secure_cookie && plain_http && req.headers().get(AUTHORIZATION).is_none() {
        "Sign in to do this. No session came with this request: this node's session cookie is \
         Secure, and browsers drop Secure cookies over plain http. Use https, or on a \
         development machine set server.development = true (with auth.cookie_secure = false)"
            .into()
    } else {
        "Sign in to do this".into()
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

/// A route listed in [`CONFIRMED_BY_HANDLER`] whose handler does not take [`SessionReader`](super::readers::SessionReader): a
/// bug, refused rather than trusting a session nobody looked up.
pub(crate) fn unconfirmed() -> ApiError {
    tracing::error!("a route that defers the session check has no handler making it");
    ApiError::of(Code::InternalError, "The session was not checked")
}

pub(super) fn invalid_api_key() -> ApiError {
    ApiError::of(Code::InvalidApiKey, "This API key is unknown or disabled")
}

/// A permission a route needs; see [`Require`].
pub trait Needs {
    const PERMISSION: Permission;
}

macro_rules! permission_markers {
    ($($name:ident),*) => {$(
        #[doc = concat!("The `", stringify!($name), "` permission, for [`Require`].")]
        #[derive(Debug, Clone, Copy)]
        pub struct $name;
        impl Needs for $name {
            const PERMISSION: Permission = Permission::$name;
        }
    )*};
}
permission_markers!(ReadPublic, ReadPrivate, WritePrivate, ReadAuth, WriteAuth);

/// A caller allowed `P`: a signed-in session (which may do everything its user may), or a
/// user's API key holding `P`. Written in the handler's signature (`_: Require<ReadAuth>`), so
/// no handler checks permissions by hand. A team's key is refused here (403
/// `TeamKeyNotAccepted`): only the routes that take [`RequireTeam`] keep it within its team.
#[derive(Debug, Clone)]
pub struct Require<P: Needs> {
    pub user: UserId,
    /// The key, when the caller is an API key.
    pub api_key: Option<crate::ids::ApiKeyId>,
    _permission: std::marker::PhantomData<P>,
}

/// [`Require`] on a route that also takes a team's key: `team` is then the key's team, and the
/// handler keeps the request within it (the user is the key's maker).
#[derive(Debug, Clone)]
pub struct RequireTeam<P: Needs> {
    pub user: UserId,
    pub api_key: Option<crate::ids::ApiKeyId>,
    /// The team of a team's key; `None` for a session or a user's key.
    pub team: Option<crate::ids::TeamId>,
    _permission: std::marker::PhantomData<P>,
}

fn require<P: Needs>(req: &HttpRequest) -> Result<RequireTeam<P>, ApiError> {
    let key = match req.extensions().get::<AuthState>() {
        Some(AuthState::ApiKey(key)) => Some(key.clone()),
        Some(AuthState::BadApiKey) => return Err(invalid_api_key()),
        _ => None,
    };
    match key {
        Some(key) if key.permissions.contains(&P::PERMISSION) => Ok(RequireTeam {
            user: key.user,
            api_key: Some(key.key_id),
            team: key.team,
            _permission: std::marker::PhantomData,
        }),
        Some(_) => Err(MissingPermission(P::PERMISSION).into()),
        None => auth_user(req).map(|user| RequireTeam {
            user: user.id,
            api_key: None,
            team: None,
            _permission: std::marker::PhantomData,
        }),
    }
}

impl<P: Needs> FromRequest for Require<P> {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(require::<P>(req).and_then(|caller| match caller.team {
            Some(_) => Err(team_key_refused()),
            None => Ok(Require {
                user: caller.user,
                api_key: caller.api_key,
                _permission: std::marker::PhantomData,
            }),
        }))
    }
}

impl<P: Needs> FromRequest for RequireTeam<P> {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(require::<P>(req))
    }
}

/// A team's key (`mine`) may touch only what belongs to its team (`team`).
pub(super) fn within(
    mine: Option<crate::ids::TeamId>,
    team: Option<crate::ids::TeamId>,
) -> Result<(), ApiError> {
    match mine {
        Some(mine) if team != Some(mine) => Err(ApiError::of(
            Code::TeamKeyNotAccepted,
            "A team's API key works only within its own team",
        )),
        _ => Ok(()),
    }
}

fn team_key_refused() -> ApiError {
    ApiError::of(
        Code::TeamKeyNotAccepted,
        "A team's API key works only on its team's chat messages, runs and credits",
    )
}

impl<P: Needs> RequireTeam<P> {
    /// Refuses a team's key used outside its team (`team` being what the request touches).
    pub fn within(&self, team: Option<crate::ids::TeamId>) -> Result<(), ApiError> {
        within(self.team, team)
    }
}
