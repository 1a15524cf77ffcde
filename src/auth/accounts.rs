//! Accounts: sign-up (user, email, password, verification mail — one transaction) and the
//! password check with the original's lockout: 5 failures soft-lock the account for 15 minutes
//! (even the right password is refused meanwhile), 15 hard-lock it until an admin unlocks it.
//! Unknown emails cost one password verification too, so timing does not reveal who has an account.

use crate::errors::{Code, ErrorCode, Told};
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use sqlx::{PgConnection, PgPool};

use super::password;
use crate::config::AuthSettings;
use crate::domain::EmailAddress;
pub use crate::domain::secret::{new_code, sha256_hex};
use crate::email::templates::Template;
use crate::email::{CodeFor, SendEmail, SendEmailHandler};
use crate::ids::{PublicId, Snowflake, UserAuthId, UserId};
use crate::jobs::{JobHandler, JobStore};

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("an account with this email address exists")]
    EmailInUse,
    #[error("the code is not valid (wrong, used or expired)")]
    InvalidCode,
    #[error("wrong email or password")]
    InvalidCredentials,
    #[error("the account is locked for {minutes} more minutes after too many failed sign-ins")]
    SoftLocked { minutes: i64 },
    #[error("the account is locked after too many failed sign-ins; ask an administrator")]
    HardLocked,
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
    #[error(transparent)]
    Password(#[from] password::PasswordError),
    #[error("enqueueing the verification email failed: {0}")]
    Job(serde_json::Error),
}

impl ErrorCode for AccountError {
    fn told(&self) -> Told {
        match self {
            AccountError::EmailInUse => Told::of(
                Code::EmailInUse,
                "An account with this email address exists",
            ),
            AccountError::InvalidCode => Told::of(
                Code::InvalidCode,
                "This code is wrong, already used or expired",
            ),
            AccountError::InvalidCredentials => {
                Told::of(Code::InvalidCredentials, "Wrong email or password")
            }
            AccountError::SoftLocked { .. } => Told::says(Code::AccountSoftLocked, self),
            AccountError::HardLocked => Told::says(Code::AccountHardLocked, self),
            AccountError::Sql(_) | AccountError::Password(_) | AccountError::Job(_) => {
                Told::internal()
            }
        }
    }
}

/// Sign-up input, already parsed at the edge; the password already hashed (hash it before
/// opening the transaction: argon2 takes tens of milliseconds).
pub struct NewAccount {
    pub name: String,
    pub email: EmailAddress,
    pub password_hash: String,
}

/// Creates the user, its email (unverified) and password, and enqueues the verification mail,
/// on `tx`: the caller commits (with the first session) or nothing is written.
pub async fn sign_up(
    tx: &mut PgConnection,
    ids: &Snowflake,
    jobs: &JobStore,
    account: NewAccount,
) -> Result<(UserId, UserAuthId), AccountError> {
    let hash = account.password_hash;
    let user = UserId(ids.next_id());
    let auth = UserAuthId(ids.next_id());
    sqlx::query("INSERT INTO users (id, public_id, name) VALUES ($1, $2, $3)")
        .bind(user)
        .bind(PublicId::generate())
        .bind(&account.name)
        .execute(&mut *tx)
        .await?;
    // The verification code is made when the mail is sent (see email::CodeFor).
    let email_id = ids.next_id();
    let email = sqlx::query("INSERT INTO emails (id, user_id, email_address) VALUES ($1, $2, $3)")
        .bind(email_id)
        .bind(user)
        .bind(account.email.as_str())
        .execute(&mut *tx)
        .await;
    if let Err(sqlx::Error::Database(db)) = &email
        && db.is_unique_violation()
    {
        return Err(AccountError::EmailInUse);
    }
    email?;
    sqlx::query("INSERT INTO user_auth (id, user_id, provider, hashed_password) VALUES ($1, $2, 'Password', $3)")
        .bind(auth)
        .bind(user)
        .bind(hash)
        .execute(&mut *tx)
        .await?;
    let mail = SendEmailHandler::job(&SendEmail {
        to: account.email.as_str().to_owned(),
        template: Template::Verification {
            name: account.name.clone(),
            code: String::new(),
        },
        code_for: Some(CodeFor::EmailVerification(email_id)),
    })
    .map_err(AccountError::Job)?;
    jobs.enqueue_in(tx, mail).await?;
    Ok((user, auth))
}

#[derive(sqlx::FromRow)]
struct Credentials {
    user_id: UserId,
    auth_id: UserAuthId,
    hashed_password: Option<String>,
    status: String,
}

/// A hash of a random password: verifying against it costs what a real check costs.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$2yH7Nk0GOAaX1qAcEpO4bqiwHSsMGiHwRXwQaGuIFK8";

/// Checks an email and password, applying and updating the lockout of this (account, client
/// address): after `auth.soft_lock_attempts` failures from one address, that address waits
/// `soft_lock_minutes`, doubling with each further failure up to `lockout_max_minutes`. Other
/// addresses — the owner's — are not affected, and failures never hard-lock an account (only
/// an administrator does). A password reset clears every address's count.
pub async fn check_password(
    pool: &PgPool,
    settings: &AuthSettings,
    email: &EmailAddress,
    candidate: SecretString,
    client: &str,
    now: DateTime<Utc>,
) -> Result<(UserId, UserAuthId), AccountError> {
    let found: Option<Credentials> = sqlx::query_as(
        "SELECT u.id AS user_id, a.id AS auth_id, a.hashed_password, u.status
           FROM emails e
           JOIN users u ON u.id = e.user_id
           JOIN user_auth a ON a.user_id = u.id AND a.provider = 'Password'
          WHERE lower(e.email_address) = lower($1) AND u.status <> 'Deleted'",
    )
    .bind(email.as_str())
    .fetch_optional(pool)
    .await?;
    let Some(account) = found else {
        password::verify(candidate, DUMMY_HASH.into()).await?;
        return Err(AccountError::InvalidCredentials);
    };
    if account.status == "HardLocked" {
        return Err(AccountError::HardLocked);
    }
    let locked_until: Option<DateTime<Utc>> = sqlx::query_scalar(
        "SELECT locked_until FROM login_failures WHERE user_id = $1 AND client = $2",
    )
    .bind(account.user_id)
    .bind(client)
    .fetch_optional(pool)
    .await?
    .flatten();
    if let Some(until) = locked_until.filter(|until| *until > now) {
        return Err(AccountError::SoftLocked {
            minutes: (until - now).num_minutes() + 1,
        });
    }
    let ok = match account.hashed_password {
        Some(hash) => password::verify(candidate, hash).await?,
        None => {
            password::verify(candidate, DUMMY_HASH.into()).await?;
            false
        }
    };
    if ok {
        sqlx::query("UPDATE users SET last_login_attempt = $2 WHERE id = $1")
            .bind(account.user_id)
            .bind(now)
            .execute(pool)
            .await?;
        sqlx::query("DELETE FROM login_failures WHERE user_id = $1 AND client = $2")
            .bind(account.user_id)
            .bind(client)
            .execute(pool)
            .await?;
        return Ok((account.user_id, account.auth_id));
    }
    // Counted in SQL, not from the value read above, so parallel guesses cannot overwrite each
    // other's increments and slip past the lock. The wait doubles from the soft-lock threshold.
    let locked_until: Option<DateTime<Utc>> = sqlx::query_scalar(
        "INSERT INTO login_failures AS f (user_id, client, failures, last_failure_at)
         VALUES ($1, $2, 1, $3)
         ON CONFLICT (user_id, client) DO UPDATE
            SET failures = f.failures + 1, last_failure_at = $3
         RETURNING CASE WHEN failures >= $4 THEN
             $3 + make_interval(mins => LEAST($6::FLOAT8,
                     $5::FLOAT8 * power(2, LEAST(failures - $4, 30)))::INT)
         END",
    )
    .bind(account.user_id)
    .bind(client)
    .bind(now)
    .bind(settings.soft_lock_attempts)
    .bind(settings.soft_lock_minutes as f64)
    .bind(settings.lockout_max_minutes as f64)
    .fetch_one(pool)
    .await?;
    match locked_until {
        Some(until) => {
            sqlx::query(
                "UPDATE login_failures SET locked_until = $3 WHERE user_id = $1 AND client = $2",
            )
            .bind(account.user_id)
            .bind(client)
            .bind(until)
            .execute(pool)
            .await?;
            Err(AccountError::SoftLocked {
                minutes: (until - now).num_minutes().max(1),
            })
        }
        None => Err(AccountError::InvalidCredentials),
    }
}

/// Starts a password reset: enqueues the mail, whose job makes the code and stores its hash
/// when it sends. Unknown addresses do nothing — the caller answers the same either way.
pub async fn request_password_reset(
    pool: &PgPool,
    jobs: &JobStore,
    email: &EmailAddress,
) -> Result<(), AccountError> {
    let mut tx = pool.begin().await?;
    let found: Option<(UserAuthId, String)> = sqlx::query_as(
        "SELECT a.id, u.name FROM emails e
           JOIN users u ON u.id = e.user_id
           JOIN user_auth a ON a.user_id = u.id AND a.provider = 'Password'
          WHERE lower(e.email_address) = lower($1) AND u.status <> 'Deleted'",
    )
    .bind(email.as_str())
    .fetch_optional(&mut *tx)
    .await?;
    let Some((auth, name)) = found else {
        return Ok(());
    };
    // The code is made (and its hash stored) when the mail is sent: the job holds none.
    let mail = SendEmailHandler::job(&SendEmail {
        to: email.as_str().to_owned(),
        template: Template::PasswordReset {
            name,
            code: String::new(),
        },
        code_for: Some(CodeFor::PasswordReset(auth.0)),
    })
    .map_err(AccountError::Job)?;
    jobs.enqueue_in(&mut tx, mail).await?;
    tx.commit().await?;
    Ok(())
}

/// Sets a new password with a reset code (single-use, valid for `valid_minutes`), ends every
/// client address's sign-in wait (not an administrator's hard lock) and revokes every session
/// of the user. Returns the user and its sessions revoked.
pub async fn reset_password(
    pool: &PgPool,
    code: &str,
    new_password_hash: String,
    valid_minutes: i64,
) -> Result<(UserId, UserAuthId, Vec<crate::ids::SessionId>), AccountError> {
    let mut tx = pool.begin().await?;
    let found: Option<(UserAuthId, UserId)> = sqlx::query_as(
        "UPDATE user_auth SET hashed_password = $2, reset_code_hash = NULL, reset_code_at = NULL
          WHERE reset_code_hash = $1 AND reset_code_at > now() - make_interval(mins => $3)
         RETURNING id, user_id",
    )
    .bind(sha256_hex(code))
    .bind(new_password_hash)
    .bind(i32::try_from(valid_minutes).unwrap_or(i32::MAX))
    .fetch_optional(&mut *tx)
    .await?;
    let Some((auth, user)) = found else {
        return Err(AccountError::InvalidCode);
    };
    // A reset ends every address's wait; an administrator's hard lock stays (only an
    // administrator lifts it). SoftLocked is the status of locks made before per-address counts.
    sqlx::query("UPDATE users SET status = 'Unlocked', log_in_attempts = 0 WHERE id = $1 AND status = 'SoftLocked'")
        .bind(user)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM login_failures WHERE user_id = $1")
        .bind(user)
        .execute(&mut *tx)
        .await?;
    let revoked: Vec<crate::ids::SessionId> =
        sqlx::query_scalar("UPDATE sessions SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL RETURNING id")
            .bind(user)
            .fetch_all(&mut *tx)
            .await?;
    tx.commit().await?;
    Ok((user, auth, revoked))
}

/// Marks an email address verified with the code from its verification mail (single-use,
/// valid for `valid_days`).
pub async fn verify_email(pool: &PgPool, code: &str, valid_days: i64) -> Result<(), AccountError> {
    let done = sqlx::query(
        "UPDATE emails SET verified_at = now(), verification_code_hash = NULL, verification_code_at = NULL
          WHERE verification_code_hash = $1 AND verification_code_at > now() - make_interval(days => $2)",
    )
    .bind(sha256_hex(code))
    .bind(i32::try_from(valid_days).unwrap_or(i32::MAX))
    .execute(pool)
    .await?;
    if done.rows_affected() == 1 {
        Ok(())
    } else {
        Err(AccountError::InvalidCode)
    }
}

/// An administrator's hard lock: the account can no longer sign in and every session of it is
/// revoked, in one transaction. The revoked sessions (for the caller to publish), or `None` when
/// there is no such (undeleted) user.
pub async fn hard_lock(
    pool: &PgPool,
    user: UserId,
) -> Result<Option<Vec<crate::ids::SessionId>>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let found =
        sqlx::query("UPDATE users SET status = 'HardLocked' WHERE id = $1 AND status <> 'Deleted'")
            .bind(user)
            .execute(&mut *tx)
            .await?
            .rows_affected();
    if found == 0 {
        return Ok(None);
    }
    let revoked = sqlx::query_scalar(
        "UPDATE sessions SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL RETURNING id",
    )
    .bind(user)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some(revoked))
}

/// Lifts any lock and forgets the failed sign-ins of every address; `false` when there is no
/// such (undeleted) user.
pub async fn unlock(pool: &PgPool, user: UserId) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let found = sqlx::query(
        "UPDATE users SET status = 'Unlocked', log_in_attempts = 0 WHERE id = $1 AND status <> 'Deleted'",
    )
    .bind(user)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    sqlx::query("DELETE FROM login_failures WHERE user_id = $1")
        .bind(user)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(found == 1)
}
