//! A signed-in user's own credentials (the original's `profileEmailUpdate`): with the current
//! password, change it (every other session of the user ends, on every node), add addresses
//! (each gets a verification mail), remove addresses, pick the primary one. One transaction:
//! all of it or nothing. And deleting the account (the original's `user/deleteOne`): with the
//! password, it is marked Deleted and every session ends; the `purge-deleted-accounts` job
//! removes it `auth.deleted_account_days` later (its messages stay, without an author; chats it
//! made stay for the others; its runs, routines, memberships and credits go).
//!
//! ```text
//! PUT /profile/email ─▶ current password checked (argon2, before the tx) ─▶ new hash
//!   ─▶ tx: password · other sessions revoked · addresses added (+ email-send jobs) · removed
//!      · primary (verified, one per user) · at least one address left ─▶ commit
//!   ─▶ revocations published (tokens inside their access window refused at once)
//! ```

use crate::errors::{Code, ErrorCode, Told};
use secrecy::SecretString;
use sqlx::PgPool;

use super::password;
use crate::domain::EmailAddress;
use crate::email::templates::Template;
use crate::email::{CodeFor, SendEmail, SendEmailHandler};
use crate::ids::{EmailId, SessionId, Snowflake, UserId};
use crate::jobs::{JobHandler, JobStore};

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("the current password is wrong")]
    WrongPassword,
    #[error("no such email address of yours")]
    EmailNotFound,
    #[error("only a verified address can be primary")]
    EmailNotVerified,
    #[error("an account keeps at least one email address")]
    LastEmail,
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
    #[error(transparent)]
    Password(#[from] password::PasswordError),
}

impl ErrorCode for CredentialsError {
    fn told(&self) -> Told {
        match self {
            CredentialsError::WrongPassword => {
                Told::of(Code::WrongPassword, "The current password is wrong")
            }
            CredentialsError::EmailNotFound => {
                Told::of(Code::EmailNotFound, "No such email address of yours")
            }
            CredentialsError::EmailNotVerified => Told::of(
                Code::EmailNotVerified,
                "Only a verified address can be primary",
            ),
            CredentialsError::LastEmail => Told::of(
                Code::LastEmail,
                "An account keeps at least one email address",
            ),
            CredentialsError::Sql(e) => e.told(),
            CredentialsError::Password(_) => Told::internal(),
        }
    }
}

/// What to change, parsed at the edge (addresses checked, the new password within the rules).
pub struct CredentialsChange {
    pub current_password: SecretString,
    pub new_password: Option<SecretString>,
    pub add: Vec<EmailAddress>,
    pub remove: Vec<EmailId>,
    pub primary: Option<EmailId>,
}

/// Applies `change` for `user`, keeping `keep` (the session asking) signed in. Returns the
/// sessions revoked, for the caller to publish.
pub async fn change(
    pool: &PgPool,
    ids: &Snowflake,
    jobs: &JobStore,
    user: UserId,
    keep: SessionId,
    change: CredentialsChange,
) -> Result<Vec<SessionId>, CredentialsError> {
    let name = check_current(pool, user, change.current_password).await?;
    let new_hash = match change.new_password {
        Some(p) => Some(password::hash(p).await?),
        None => None,
    };
    let mut tx = pool.begin().await?;
    let mut revoked = Vec::new();
    if let Some(hash) = new_hash {
        sqlx::query(
            "UPDATE user_auth SET hashed_password = $2, reset_code_hash = NULL, reset_code_at = NULL
              WHERE user_id = $1 AND provider = 'Password'",
        )
        .bind(user)
        .bind(hash)
        .execute(&mut *tx)
        .await?;
        revoked = sqlx::query_scalar(
            "UPDATE sessions SET revoked_at = now()
              WHERE user_id = $1 AND id <> $2 AND revoked_at IS NULL RETURNING id",
        )
        .bind(user)
        .bind(keep)
        .fetch_all(&mut *tx)
        .await?;
    }
    for address in &change.add {
        let id = EmailId(ids.next_id());
        // A taken address fails the statement (emails_address_key): the edge says EmailInUse.
        sqlx::query("INSERT INTO emails (id, user_id, email_address) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(user)
            .bind(address.as_str())
            .execute(&mut *tx)
            .await?;
        let mail = SendEmailHandler::job(&SendEmail {
            to: address.as_str().to_owned(),
            template: Template::Verification {
                name: name.clone(),
                code: String::new(),
            },
            code_for: Some(CodeFor::EmailVerification(id.0)),
        })
        .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        jobs.enqueue_in(&mut tx, mail).await?;
    }
    if !change.remove.is_empty() {
        let removed = sqlx::query("DELETE FROM emails WHERE user_id = $1 AND id = ANY($2)")
            .bind(user)
            .bind(change.remove.iter().map(|e| e.0).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if removed as usize != change.remove.len() {
            return Err(CredentialsError::EmailNotFound);
        }
    }
    if let Some(primary) = change.primary {
        let verified: Option<bool> = sqlx::query_scalar(
            "SELECT verified_at IS NOT NULL FROM emails WHERE id = $1 AND user_id = $2",
        )
        .bind(primary)
        .bind(user)
        .fetch_optional(&mut *tx)
        .await?;
        match verified {
            None => return Err(CredentialsError::EmailNotFound),
            Some(false) => return Err(CredentialsError::EmailNotVerified),
            Some(true) => {}
        }
        sqlx::query("UPDATE emails SET is_primary = (id = $2) WHERE user_id = $1")
            .bind(user)
            .bind(primary)
            .execute(&mut *tx)
            .await?;
    }
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM emails WHERE user_id = $1")
        .bind(user)
        .fetch_one(&mut *tx)
        .await?;
    if left == 0 {
        return Err(CredentialsError::LastEmail);
    }
    tx.commit().await?;
    Ok(revoked)
}

/// Marks `user`'s account deleted, with their password; the sessions ended, to publish.
pub async fn delete_account(
    pool: &PgPool,
    user: UserId,
    password: SecretString,
) -> Result<Vec<SessionId>, CredentialsError> {
    check_current(pool, user, password).await?;
    let mut tx = pool.begin().await?;
    sqlx::query("UPDATE users SET status = 'Deleted', deleted_at = now() WHERE id = $1")
        .bind(user)
        .execute(&mut *tx)
        .await?;
    let revoked = sqlx::query_scalar(
        "UPDATE sessions SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL RETURNING id",
    )
    .bind(user)
    .fetch_all(&mut *tx)
    .await?;
    // API keys stop with their owner at once, not only at the purge.
    sqlx::query(
        "UPDATE api_keys SET disabled_at = now() WHERE user_id = $1 AND disabled_at IS NULL",
    )
    .bind(user)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(revoked)
}

/// Checks `user`'s current password; their name.
async fn check_current(
    pool: &PgPool,
    user: UserId,
    candidate: SecretString,
) -> Result<String, CredentialsError> {
    let stored: Option<(String, String)> = sqlx::query_as(
        "SELECT a.hashed_password, u.name FROM user_auth a JOIN users u ON u.id = a.user_id
          WHERE a.user_id = $1 AND a.provider = 'Password' AND a.hashed_password IS NOT NULL
            AND u.status <> 'Deleted'",
    )
    .bind(user)
    .fetch_optional(pool)
    .await?;
    let Some((hash, name)) = stored else {
        return Err(CredentialsError::WrongPassword);
    };
    if !password::verify(candidate, hash).await? {
        return Err(CredentialsError::WrongPassword);
    }
    Ok(name)
}
