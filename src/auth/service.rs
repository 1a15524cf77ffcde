//! `AuthService`: sessions and tokens. Signs users in (a `sessions` row per device sign-in, a
//! token listing every signed-in user of the browser), authenticates requests (signature, then
//! the revocation list, then — once the access window has passed — the session rows, with a
//! fresh token: silent refresh), switches the current account, and signs out (revoking rows and
//! publishing the revocation so the next request with the old token is refused).

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
        let token = self.issue_on(conn, &users, now).await?;
        Ok((users, token))
    }

    /// Signs a token for `users`; the token's `exp` is the latest session expiry among them.
    async fn issue(&self, users: &[TokenUser], now: DateTime<Utc>) -> Result<String, SignInError> {
        let mut conn = self.pool.acquire().await?;
        self.issue_on(&mut conn, users, now).await
    }

    async fn issue_on(
        &self,
        conn: &mut PgConnection,
        users: &[TokenUser],
        now: DateTime<Utc>,
    ) -> Result<String, SignInError> {
        let sessions: Vec<i64> = users.iter().map(|u| u.session_id.0).collect();
        let exp: Option<DateTime<Utc>> =
            sqlx::query_scalar("SELECT max(expires_at) FROM sessions WHERE id = ANY($1)")
                .bind(&sessions)
                .fetch_one(&mut *conn)
                .await?;
        let exp = exp.unwrap_or(now);
        token::issue(
            &self.keys,
            users.to_vec(),
            now,
            now + self.access_window(),
            exp,
            self.settings.max_token_bytes,
        )
        .map_err(SignInError::Token)
    }

    /// Authenticates a presented token; see the module header for the steps.
    pub async fn authenticate(&self, presented: &str) -> Result<Authenticated, AuthFailure> {
        let claims = token::verify(&self.keys, presented).map_err(|e| match e {
            TokenError::Expired => AuthFailure::Expired,
            _ => AuthFailure::InvalidToken,
        })?;
        let now = Utc::now();
        let current = claims.users[0].session_id;
        let within_window = claims.access_exp > now.timestamp();
        if within_window {
            match self.revocations.check(current).await {
                Revoked::No => {
                    return Ok(Authenticated {
                        users: claims.users,
                        refreshed: None,
                    });
                }
                Revoked::Yes => return Err(AuthFailure::Revoked),
                Revoked::Unknown => {} // fall through to the session rows
            }
        }
        self.refresh(claims, now, within_window).await
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
            "UPDATE sessions SET last_refresh_at = $2
              WHERE id = ANY($1) AND revoked_at IS NULL AND expires_at > $2
             RETURNING id",
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
        let token = self
            .issue(&users, now)
            .await
            .map_err(|_| AuthFailure::InvalidToken)?;
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
        let token = self.issue(&users, Utc::now()).await?;
        Ok(Some((users, token)))
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
        if left.is_empty() {
            return Ok((left, None));
        }
        let token = self.issue(&left, Utc::now()).await?;
        Ok((left, Some(token)))
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

#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
    #[error(transparent)]
    Token(TokenError),
}

/// Why a refresh token was refused.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    #[error("the refresh token is not valid")]
    Invalid,
    #[error("the refresh token was already used; the session is revoked")]
    Reused,
    #[error(transparent)]
    SignIn(#[from] SignInError),
}

impl From<sqlx::Error> for RefreshError {
    fn from(error: sqlx::Error) -> Self {
        RefreshError::SignIn(SignInError::Sql(error))
    }
}

impl AuthService {
    /// Gives `session` a fresh refresh token (`<session id>.<secret>`), replacing the current one.
    pub async fn rotate_refresh_token(&self, session: SessionId) -> Result<String, sqlx::Error> {
        let secret = crate::auth::accounts::new_code() + &crate::auth::accounts::new_code();
        sqlx::query(
            "UPDATE sessions SET previous_refresh_hash = refresh_hash, refresh_hash = $2 WHERE id = $1",
        )
        .bind(session)
        .bind(crate::auth::accounts::sha256_hex(&secret))
        .execute(&self.pool)
        .await?;
        Ok(format!("{}.{secret}", session.0))
    }

    /// Exchanges a refresh token for a new access token and a new refresh token. Presenting the
    /// token that was already exchanged revokes the session.
    pub async fn refresh_with(
        &self,
        presented: &str,
    ) -> Result<(Vec<TokenUser>, String, String), RefreshError> {
        let (session, secret) = presented.split_once('.').ok_or(RefreshError::Invalid)?;
        let session = SessionId(session.parse().map_err(|_| RefreshError::Invalid)?);
        let hash = crate::auth::accounts::sha256_hex(secret);
        let row: Option<(UserId, Option<String>, Option<String>, bool)> = sqlx::query_as(
            "SELECT user_id, refresh_hash, previous_refresh_hash,
                    revoked_at IS NULL AND expires_at > now()
               FROM sessions WHERE id = $1",
        )
        .bind(session)
        .fetch_optional(&self.pool)
        .await?;
        let Some((user, current, previous, live)) = row else {
            return Err(RefreshError::Invalid);
        };
        if previous.as_deref() == Some(hash.as_str()) {
            tracing::warn!(session = %session, "refresh token reused; revoking the session");
            self.revoke(&[session]).await?;
            return Err(RefreshError::Reused);
        }
        if !live || current.as_deref() != Some(hash.as_str()) {
            return Err(RefreshError::Invalid);
        }
        let refresh = self.rotate_refresh_token(session).await?;
        let (handle, name): (Option<String>, String) =
            sqlx::query_as("SELECT handle, name FROM users WHERE id = $1")
                .bind(user)
                .fetch_one(&self.pool)
                .await?;
        let users = vec![TokenUser {
            id: user,
            session_id: session,
            handle,
            name: Some(name),
        }];
        sqlx::query("UPDATE sessions SET last_refresh_at = now() WHERE id = $1")
            .bind(session)
            .execute(&self.pool)
            .await?;
        let access = self.issue(&users, Utc::now()).await?;
        Ok((users, access, refresh))
    }
}
