//! Sessions: signing in (a `sessions` row, then a token), signing up and in at once, switching
//! the current account and signing out. Every token is signed by `issue_on`, which reads the
//! session rows first, so no re-signing can extend a session that ended.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::{AuthService, Device, SignInError, SignUpError};
use crate::auth::token::{self, TokenUser};
use crate::ids::{SessionId, UserAuthId, UserId};

impl AuthService {
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
        account: crate::auth::accounts::NewAccount,
        device: &Device,
        others: Vec<TokenUser>,
    ) -> Result<(Vec<TokenUser>, String), SignUpError> {
        let mut tx = self.pool.begin().await.map_err(SignInError::Sql)?;
        let (user, auth) = crate::auth::accounts::sign_up(&mut tx, &self.ids, jobs, account)
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
    pub(super) async fn issue(
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
    pub fn on_revoked(
        &self,
        listener: std::sync::Arc<dyn crate::auth::revocation::RevocationListener>,
    ) {
        self.revocations.set_listener(listener);
    }

    pub async fn publish_revoked(&self, sessions: &[SessionId]) {
        self.revocations.revoke(sessions).await;
    }

    pub(super) async fn revoke(&self, sessions: &[SessionId]) -> Result<(), sqlx::Error> {
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
