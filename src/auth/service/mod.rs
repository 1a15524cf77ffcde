//! `AuthService`: sessions and tokens. Signs users in (a `sessions` row per device sign-in, a
//! token listing every signed-in user of the browser), authenticates requests (signature, then
//! the revocation list, then — once the access window has passed — the session rows, with a
//! fresh token: silent refresh), switches the current account, and signs out (revoking rows and
//! publishing the revocation so the next request with the old token is refused).
//!
//! A route whose handler runs a statement anyway may take the revocation look-up into that
//! statement instead ([`AuthService::authenticate_unconfirmed`]): the session row is revoked
//! (committed) before the list hears of it, so the row is the stronger check, and the request
//! saves a Redis round trip.
//!
//! This file holds what a request's authentication yields and the service's state;
//! `sign_in.rs` starts, re-signs and ends sessions (every token is signed there), `authenticate.rs`
//! checks a presented token (refreshing it through `sign_in.rs`), `errors.rs` holds why a
//! sign-in or sign-up failed; `accounts.rs` and `refresh.rs` as before.

mod accounts;
mod authenticate;
mod errors;
mod refresh;
mod sign_in;

pub use errors::{SignInError, SignUpError};
pub use refresh::RefreshError;

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;

use super::keys::TokenKeys;
use super::revocation::Revocations;
use super::token::{self, TokenUser};
use crate::config::AuthSettings;
use crate::ids::Snowflake;

/// Why a request's token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthFailure {
    #[error("the session token is not valid")]
    InvalidToken,
    #[error("the session has expired; sign in again")]
    Expired,
    #[error("the session was signed out")]
    Revoked,
}

/// An authenticated request: the token's users (current first) and, after a silent refresh,
/// the new token to send back.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub users: Vec<TokenUser>,
    pub refreshed: Option<String>,
}

impl Authenticated {
    pub fn current(&self) -> &TokenUser {
        // `token::verify` and `refresh` never produce an empty list.
        &self.users[0]
    }
}

/// What [`AuthService::authenticate_unconfirmed`] found.
#[derive(Debug, Clone)]
pub enum Authentication {
    /// The session rows were read (past the access window): the token's sessions are live.
    Confirmed(Authenticated),
    /// Within the access window, and nobody has looked the current session up yet: the caller
    /// must, against its `sessions` row, before trusting `users`.
    Unconfirmed(Authenticated),
}

/// Where a sign-in comes from, recorded on its session.
#[derive(Debug, Clone, Default)]
pub struct Device {
    pub info: Option<String>,
    pub ip: Option<std::net::IpAddr>,
}

pub struct AuthService {
    pool: PgPool,
    ids: Arc<Snowflake>,
    keys: TokenKeys,
    revocations: Revocations,
    verified: token::VerifiedTokens,
    settings: AuthSettings,
}

impl AuthService {
    pub fn new(
        pool: PgPool,
        ids: Arc<Snowflake>,
        keys: TokenKeys,
        revocations: Revocations,
        settings: AuthSettings,
    ) -> Self {
        Self {
            pool,
            ids,
            keys,
            revocations,
            verified: token::VerifiedTokens::new(settings.verified_token_cache),
            settings,
        }
    }

    pub fn settings(&self) -> &AuthSettings {
        &self.settings
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    fn access_window(&self) -> chrono::Duration {
        chrono::Duration::minutes(self.settings.access_minutes as i64)
    }

    /// The revocation list must remember a session for one access window.
    pub fn revocation_ttl(settings: &AuthSettings) -> Duration {
        Duration::from_secs(settings.access_minutes * 60)
    }
}
