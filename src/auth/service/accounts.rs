//! The account operations handlers call, on the service that holds the pool: password check,
//! reset, email verification and an administrator's lock. SQL stays in `auth::accounts`; this
//! adds what follows each write (revoked sessions published to every node).

use chrono::{DateTime, Utc};
use secrecy::SecretString;

use super::AuthService;
use crate::auth::accounts::{self, AccountError};
use crate::domain::EmailAddress;
use crate::ids::{UserAuthId, UserId};
use crate::jobs::JobStore;

impl AuthService {
    /// Checks a password for `email`, counting a failure against the (account, client) pair.
    pub async fn check_password(
        &self,
        email: &EmailAddress,
        candidate: SecretString,
        client: &str,
        now: DateTime<Utc>,
    ) -> Result<(UserId, UserAuthId), AccountError> {
        accounts::check_password(&self.pool, &self.settings, email, candidate, client, now).await
    }

    /// Mails a reset code if the address has an account (silently nothing otherwise).
    pub async fn request_password_reset(
        &self,
        jobs: &JobStore,
        email: &EmailAddress,
    ) -> Result<(), AccountError> {
        accounts::request_password_reset(&self.pool, jobs, email).await
    }

    /// Sets the password for a valid reset code and ends every session of the user (on every
    /// node). Returns the user to sign in.
    pub async fn reset_password(
        &self,
        code: &str,
        new_password_hash: String,
    ) -> Result<(UserId, UserAuthId), AccountError> {
        let minutes = self.settings.reset_code_minutes;
        let (user, auth, revoked) =
            accounts::reset_password(&self.pool, code, new_password_hash, minutes).await?;
        self.publish_revoked(&revoked).await;
        Ok((user, auth))
    }

    /// Changes `user`'s password and addresses (`auth::credentials`); the other sessions a new
    /// password ends are refused on every node at once.
    pub async fn change_credentials(
        &self,
        ids: &crate::ids::Snowflake,
        jobs: &JobStore,
        user: UserId,
        keep: crate::ids::SessionId,
        change: crate::auth::credentials::CredentialsChange,
    ) -> Result<(), crate::auth::credentials::CredentialsError> {
        let revoked =
            crate::auth::credentials::change(&self.pool, ids, jobs, user, keep, change).await?;
        self.publish_revoked(&revoked).await;
        Ok(())
    }

    /// Deletes `user`'s account (soft; purged later) and ends its sessions everywhere.
    pub async fn delete_account(
        &self,
        user: UserId,
        password: SecretString,
    ) -> Result<(), crate::auth::credentials::CredentialsError> {
        let revoked = crate::auth::credentials::delete_account(&self.pool, user, password).await?;
        self.publish_revoked(&revoked).await;
        Ok(())
    }

    pub async fn verify_email(&self, code: &str) -> Result<(), AccountError> {
        let days = self.settings.verification_code_days;
        accounts::verify_email(&self.pool, code, days).await
    }

    /// Hard-locks an account and ends its sessions everywhere; how many, or `None` when there is
    /// no such user.
    pub async fn hard_lock(&self, user: UserId) -> Result<Option<usize>, sqlx::Error> {
        let Some(revoked) = accounts::hard_lock(&self.pool, user).await? else {
            return Ok(None);
        };
        self.publish_revoked(&revoked).await;
        Ok(Some(revoked.len()))
    }

    /// Clears a soft or hard lock; false when there is no such user.
    pub async fn unlock(&self, user: UserId) -> Result<bool, sqlx::Error> {
        accounts::unlock(&self.pool, user).await
    }
}
