//! Refresh tokens for API clients (`<session id>.<secret>`, stored hashed with the previous one):
//! rotation by one compare-and-swap, so of simultaneous exchanges at most one matches, and a
//! token presented after it was rotated is reuse, which revokes the session.

use crate::errors::{Code, ErrorCode, Told};
use chrono::Utc;

use super::{AuthService, SignInError};
use crate::auth::token::TokenUser;
use crate::ids::{SessionId, UserId};

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

impl ErrorCode for RefreshError {
    fn told(&self) -> Told {
        match self {
            RefreshError::Invalid => {
                Told::of(Code::InvalidRefreshToken, "The refresh token is not valid")
            }
            RefreshError::Reused => Told::of(
                Code::RefreshTokenReused,
                "This refresh token was already used; the session has been signed out",
            ),
            RefreshError::SignIn(e) => e.told(),
        }
    }
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
        // One compare-and-swap: of any number of simultaneous exchanges of the same token, only
        // the one whose UPDATE matched `refresh_hash = $old` gets a row back.
        let new_secret = crate::auth::accounts::new_code() + &crate::auth::accounts::new_code();
        let rotated: Option<UserId> = sqlx::query_scalar(
            "UPDATE sessions s
                SET previous_refresh_hash = s.refresh_hash, refresh_hash = $3, last_refresh_at = now()
               FROM users u
              WHERE s.id = $1 AND s.refresh_hash = $2 AND u.id = s.user_id
                AND s.revoked_at IS NULL AND s.expires_at > now()
                AND u.status NOT IN ('HardLocked', 'Deleted')
             RETURNING s.user_id",
        )
        .bind(session)
        .bind(&hash)
        .bind(crate::auth::accounts::sha256_hex(&new_secret))
        .fetch_optional(&self.pool)
        .await?;
        let Some(user) = rotated else {
            let previous: Option<Option<String>> =
                sqlx::query_scalar("SELECT previous_refresh_hash FROM sessions WHERE id = $1")
                    .bind(session)
                    .fetch_optional(&self.pool)
                    .await?;
            if previous.flatten().as_deref() == Some(hash.as_str()) {
                tracing::warn!(session = %session, "refresh token reused; revoking the session");
                self.revoke(&[session]).await?;
                return Err(RefreshError::Reused);
            }
            return Err(RefreshError::Invalid);
        };
        let refresh = format!("{}.{new_secret}", session.0);
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
        let (users, access) = self.issue(&users, Utc::now()).await?;
        Ok((users, access, refresh))
    }
}
