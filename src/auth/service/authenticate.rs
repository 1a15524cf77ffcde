//! Authenticating a request: the token's signature and expiry (cached), then the revocation
//! list, then — past the access window, or when the list cannot answer — the session rows, with
//! a re-signed token (silent refresh, signed in `sign_in.rs`).

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{AuthFailure, AuthService, Authenticated, Authentication, SignInError};
use crate::auth::revocation::Revoked;
use crate::auth::token::{Claims, TokenError, TokenUser};

impl AuthService {
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
}
