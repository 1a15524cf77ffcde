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

mod accounts;
mod refresh;

pub use refresh::RefreshError;

use crate::errors::{Code, ErrorCode, Told};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

use super::keys::TokenKeys;
use super::revocation::{Revocations, Revoked};
use super::token::{self, Claims, TokenError, TokenUser};
use crate::config::AuthSettings;
use crate::ids::{SessionId, Snowflake, UserAuthId, UserId};

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

    /// Starts a session for `user` and returns a token with it in front of `others` (the users
    /// already signed in on this browser; a repeat sign-in of one of them replaces it).
    pub async fn sign_in(
        &self,
        user: UserId,
        auth: UserAuthId,
        device: &Device,
        others: Vec<TokenUser>,
    ) -> Result<(Vec<TokenUser>, String), SignInError> {
        let mut conn = self.pool.acquire().await?;
        self.sign_in_on(&mut conn, user, auth, device, others).await
    }

    /// Creates an account and signs it in: the user, its email, password and verification mail
    /// (`accounts::sign_up`) and its first session commit together or not at all.
    pub async fn sign_up(
        &self,
        jobs: &crate::jobs::JobStore,
        account: super::accounts::NewAccount,
        device: &Device,
        others: Vec<TokenUser>,
    ) -> Result<(Vec<TokenUser>, String), SignUpError> {
        let mut tx = self.pool.begin().await.map_err(SignInError::Sql)?;
        let (user, auth) = super::accounts::sign_up(&mut tx, &self.ids, jobs, account)
            .await
            .map_err(SignUpError::Account)?;
        let signed_in = self.sign_in_on(&mut tx, user, auth, device, others).await?;
        tx.commit().await.map_err(SignInError::Sql)?;
        Ok(signed_in)
    }

    /// [`Self::sign_in`] on `conn`, so sign-up can create the account and its first session in
    /// one transaction.
    pub async fn sign_in_on(
        &self,
        conn: &mut PgConnection,
        user: UserId,
        auth: UserAuthId,
        device: &Device,
        others: Vec<TokenUser>,
    ) -> Result<(Vec<TokenUser>, String), SignInError> {
        let now = Utc::now();
        let session = SessionId(self.ids.next_id());
        let expires = now + chrono::Duration::days(self.settings.session_days as i64);
        sqlx::query(
            "INSERT INTO sessions (id, user_id, user_auth_id, last_refresh_at, expires_at, device_info, ip_address)
             VALUES ($1, $2, $3, $4, $5, $6, $7::inet)",
        )
        .bind(session)
        .bind(user)
        .bind(auth)
        .bind(now)
        .bind(expires)
        .bind(device.info.as_deref().map(|d| d.chars().take(256).collect::<String>()))
        .bind(device.ip.map(|ip| ip.to_string()))
        .execute(&mut *conn)
        .await?;
        let (handle, name): (Option<String>, String) =
            sqlx::query_as("SELECT handle, name FROM users WHERE id = $1")
                .bind(user)
                .fetch_one(&mut *conn)
                .await?;
        let mut users = vec![TokenUser {
            id: user,
            session_id: session,
            handle,
            name: Some(name),
        }];
        users.extend(others.into_iter().filter(|u| u.id != user));
        self.issue_on(conn, &users, now).await
    }

    /// Signs a token for the users of `users` whose sessions are live; the token's `exp` is the
    /// latest session expiry among them. Every token this service signs goes through here, so no
    /// re-signing (switch, sign-out of one account, refresh) can extend a session that was
    /// revoked, expired or whose user was locked: the rows are read first, dead users dropped,
    /// and [`SignInError::SessionEnded`] answered when the current (first) one is dead.
    async fn issue(
        &self,
        users: &[TokenUser],
        now: DateTime<Utc>,
    ) -> Result<(Vec<TokenUser>, String), SignInError> {
        let mut conn = self.pool.acquire().await?;
        self.issue_on(&mut conn, users, now).await
    }

    async fn issue_on(
        &self,
        conn: &mut PgConnection,
        users: &[TokenUser],
        now: DateTime<Utc>,
    ) -> Result<(Vec<TokenUser>, String), SignInError> {
        let sessions: Vec<i64> = users.iter().map(|u| u.session_id.0).collect();
        let live: Vec<(i64, DateTime<Utc>)> = sqlx::query_as(LIVE_SESSIONS)
            .bind(&sessions)
            .bind(now)
            .fetch_all(&mut *conn)
            .await?;
        let Some(first) = users.first() else {
            return Err(SignInError::SessionEnded);
        };
        if !live.iter().any(|(id, _)| *id == first.session_id.0) {
            return Err(SignInError::SessionEnded);
        }
        let users: Vec<TokenUser> = users
            .iter()
            .filter(|u| live.iter().any(|(id, _)| *id == u.session_id.0))
            .cloned()
            .collect();
        let exp = live.iter().map(|(_, exp)| *exp).max().unwrap_or(now);
        let token = token::issue(
            &self.keys,
            users.clone(),
            now,
            now + self.access_window(),
            exp,
            self.settings.max_token_bytes,
        )
        .map_err(SignInError::Token)?;
        Ok((users, token))
    }

    /// Authenticates a presented token; see the module header for the steps.
    pub async fn authenticate(&self, presented: &str) -> Result<Authenticated, AuthFailure> {
        let now = Utc::now();
        let claims = self.verify(presented, now)?;
        let current = claims.users[0].session_id;
        let within_window = claims.access_exp > now.timestamp();
        if within_window {
            match self.revocations.check(current).await {
                Revoked::No => {
                    return Ok(Authenticated {
                        users: claims.users.clone(),
                        refreshed: None,
                    });
                }
                Revoked::Yes => return Err(AuthFailure::Revoked),
                Revoked::Unknown => {} // fall through to the session rows
            }
        }
        // Boxed: this rare path (a token past its access window, or Redis not answering) holds
        // a query's and a signing's state, and unboxed it would size every request's future,
        // which is moved (copied whole) into a box on each layer of the HTTP stack.
        Box::pin(self.refresh(Arc::unwrap_or_clone(claims), now, within_window)).await
    }

    /// [`Self::authenticate`] without the revocation look-up for a token within its access
    /// window: that one comes back [`Authentication::Unconfirmed`], for a handler that checks
    /// the session row in the statement it runs anyway. Past the window the rows are read (and
    /// the token re-signed) as always.
    pub async fn authenticate_unconfirmed(
        &self,
        presented: &str,
    ) -> Result<Authentication, AuthFailure> {
        let now = Utc::now();
        let claims = self.verify(presented, now)?;
        if claims.access_exp > now.timestamp() {
            return Ok(Authentication::Unconfirmed(Authenticated {
                users: claims.users.clone(),
                refreshed: None,
            }));
        }
        // Boxed: see `authenticate`.
        Box::pin(self.refresh(Arc::unwrap_or_clone(claims), now, false))
            .await
            .map(Authentication::Confirmed)
    }

    /// The token's signature and expiry (cached per token text).
    fn verify(&self, presented: &str, now: DateTime<Utc>) -> Result<Arc<Claims>, AuthFailure> {
        self.verified
            .verify(&self.keys, presented, now.timestamp())
            .map_err(|e| match e {
                TokenError::Expired => AuthFailure::Expired,
                _ => AuthFailure::InvalidToken,
            })
    }

    /// Checks the token's sessions against their rows; drops users whose session ended and
    /// re-issues the token (unless only confirming within the window).
    async fn refresh(
        &self,
        claims: Claims,
        now: DateTime<Utc>,
        within_window: bool,
    ) -> Result<Authenticated, AuthFailure> {
        let sessions: Vec<i64> = claims.users.iter().map(|u| u.session_id.0).collect();
        let live: Vec<i64> = sqlx::query_scalar(
            "UPDATE sessions s SET last_refresh_at = $2
               FROM users u
              WHERE s.id = ANY($1) AND u.id = s.user_id
                AND s.revoked_at IS NULL AND s.expires_at > $2
                AND u.status NOT IN ('HardLocked', 'Deleted')
             RETURNING s.id",
        )
        .bind(&sessions)
        .bind(now)
        .fetch_all(&self.pool)
        .await
        .map_err(|error| {
            tracing::warn!(%error, "session check failed");
            AuthFailure::InvalidToken
        })?;
        if !live.contains(&claims.users[0].session_id.0) {
            return Err(AuthFailure::Revoked);
        }
        let users: Vec<TokenUser> = claims
            .users
            .into_iter()
            .filter(|u| live.contains(&u.session_id.0))
            .collect();
        if within_window {
            return Ok(Authenticated {
                users,
                refreshed: None,
            });
        }
        let (users, token) = self.issue(&users, now).await.map_err(|e| match e {
            SignInError::SessionEnded => AuthFailure::Revoked,
            _ => AuthFailure::InvalidToken,
        })?;
        Ok(Authenticated {
            users,
            refreshed: Some(token),
        })
    }

    /// Moves `user` to the front; `None` if it is not signed in on this token.
    pub async fn switch_current(
        &self,
        mut users: Vec<TokenUser>,
        user: UserId,
    ) -> Result<Option<(Vec<TokenUser>, String)>, SignInError> {
        let Some(at) = users.iter().position(|u| u.id == user) else {
            return Ok(None);
        };
        let chosen = users.remove(at);
        users.insert(0, chosen);
        Ok(Some(self.issue(&users, Utc::now()).await?))
    }

    /// Signs `user` out of this browser: revokes its session and returns the remaining users and
    /// their token (`None` when nobody is left).
    pub async fn sign_out(
        &self,
        users: Vec<TokenUser>,
        user: UserId,
    ) -> Result<(Vec<TokenUser>, Option<String>), SignInError> {
        let (gone, left): (Vec<TokenUser>, Vec<TokenUser>) =
            users.into_iter().partition(|u| u.id == user);
        let gone: Vec<SessionId> = gone.iter().map(|u| u.session_id).collect();
        self.revoke(&gone).await?;
        // The first account left becomes current; accounts whose sessions ended meanwhile are
        // dropped rather than re-signed (the next live one takes the front).
        let now = Utc::now();
        let mut left = left;
        while !left.is_empty() {
            match self.issue(&left, now).await {
                Ok((users, token)) => return Ok((users, Some(token))),
                Err(SignInError::SessionEnded) => {
                    left.remove(0);
                }
                Err(e) => return Err(e),
            }
        }
        Ok((left, None))
    }

    /// Signs every user of this token out of every device.
    pub async fn sign_out_everywhere(&self, users: &[TokenUser]) -> Result<(), SignInError> {
        let ids: Vec<i64> = users.iter().map(|u| u.id.0).collect();
        let sessions: Vec<SessionId> = sqlx::query_scalar(
            "UPDATE sessions SET revoked_at = now() WHERE user_id = ANY($1) AND revoked_at IS NULL RETURNING id",
        )
        .bind(&ids)
        .fetch_all(&self.pool)
        .await?;
        self.revocations.revoke(&sessions).await;
        Ok(())
    }

    /// Publishes sessions already revoked in the database (e.g. by a password reset) to the
    /// revocation list, so tokens inside their access window are refused at once.
    /// Who else hears of revocations (the WebSocket side); set once at start-up.
    pub fn on_revoked(&self, listener: std::sync::Arc<dyn super::revocation::RevocationListener>) {
        self.revocations.set_listener(listener);
    }

    pub async fn publish_revoked(&self, sessions: &[SessionId]) {
        self.revocations.revoke(sessions).await;
    }

    async fn revoke(&self, sessions: &[SessionId]) -> Result<(), sqlx::Error> {
        let ids: Vec<i64> = sessions.iter().map(|s| s.0).collect();
        sqlx::query(
            "UPDATE sessions SET revoked_at = now() WHERE id = ANY($1) AND revoked_at IS NULL",
        )
        .bind(&ids)
        .execute(&self.pool)
        .await?;
        self.revocations.revoke(sessions).await;
        Ok(())
    }
}

/// The sessions of `$1` that may still be signed: not revoked, not expired, user not locked or
/// deleted; with their expiry.
const LIVE_SESSIONS: &str =
    "SELECT s.id, s.expires_at FROM sessions s JOIN users u ON u.id = s.user_id
  WHERE s.id = ANY($1) AND s.revoked_at IS NULL AND s.expires_at > $2
    AND u.status NOT IN ('HardLocked', 'Deleted')";

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
    Account(super::accounts::AccountError),
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
