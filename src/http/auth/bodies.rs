//! What the auth routes read and answer: the request bodies, the session (`{"isLoggedIn",
//! "users"}`) with or without its tokens, and the small confirmations; each is the type the
//! handler (de)serialises, so the OpenAPI document describes exactly what travels.

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::token::TokenUser;
use crate::ids::UserId;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SignupBody {
    /// The display name, 1–128 characters (trimmed).
    pub(super) name: String,
    pub(super) email: String,
    /// Within the configured length bounds (`auth.password_min_length`–`password_max_length`).
    #[schema(value_type = String, format = Password)]
    pub(super) password: SecretString,
    /// As for login: `"cookie"` (the default) or `"bearer"` (tokens in the body, no cookie).
    #[schema(example = "bearer")]
    pub(super) token_type: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LoginBody {
    pub(super) email: String,
    #[schema(value_type = String, format = Password)]
    pub(super) password: SecretString,
    /// `"cookie"` (the default) or `"bearer"` for API clients: tokens in the body (access +
    /// rotating refresh token) instead of the cookie.
    #[schema(example = "bearer")]
    pub(super) token_type: Option<String>,
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserBody {
    /// One of the accounts signed in on this browser.
    pub(super) id: Option<UserId>,
}

/// The browser's session: every account signed in on it, the current one first.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    /// Whether any account is signed in (`false` for a guest).
    pub(super) is_logged_in: bool,
    pub(super) users: Vec<SessionUser>,
}

/// An account of the session. `handle` and `name` are `null` when the token had no room for them.
#[derive(Serialize, ToSchema)]
pub struct SessionUser {
    pub(super) handle: Option<String>,
    pub(super) id: UserId,
    pub(super) name: Option<String>,
}

/// A session for an API client (`tokenType: "bearer"`, or a refresh): the session and its tokens.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BearerSession {
    /// The session token, for `Authorization: Bearer <token>`.
    pub(super) access_token: String,
    /// Whether any account is signed in (always `true` here).
    pub(super) is_logged_in: bool,
    /// For `POST /auth/refresh`; single-use: presenting it twice revokes the session.
    pub(super) refresh_token: String,
    pub(super) users: Vec<SessionUser>,
}

/// What a login answers: the session (cookie login, the cookie set) or the session with its
/// tokens (`tokenType: "bearer"`, no cookie).
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum LoginSession {
    Cookie(Session),
    Bearer(BearerSession),
}

/// Sent: a reset mail went out if the account exists.
#[derive(Serialize, ToSchema)]
pub struct Sent {
    /// Always `true`, whether or not the account exists.
    pub(super) sent: bool,
}

/// The address is verified.
#[derive(Serialize, ToSchema)]
pub struct Verified {
    /// Always `true`.
    pub(super) verified: bool,
}

pub(super) fn session_users(users: &[TokenUser]) -> Vec<SessionUser> {
    users
        .iter()
        .map(|u| SessionUser {
            handle: u.handle.clone(),
            id: u.id,
            name: u.name.clone(),
        })
        .collect()
}

pub(super) fn session_body(users: &[TokenUser]) -> Session {
    Session {
        is_logged_in: !users.is_empty(),
        users: session_users(users),
    }
}

pub(super) fn bearer_tokens(
    users: &[TokenUser],
    access: String,
    refresh_token: String,
) -> BearerSession {
    BearerSession {
        access_token: access,
        is_logged_in: !users.is_empty(),
        refresh_token,
        users: session_users(users),
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RefreshBody {
    /// The refresh token of the last login or refresh.
    pub(super) refresh_token: String,
}
