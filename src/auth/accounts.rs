//! Accounts: sign-up (user, email, password, verification mail — one transaction) and the
//! password check with the original's lockout: 5 failures soft-lock the account for 15 minutes
//! (even the right password is refused meanwhile), 15 hard-lock it until an admin unlocks it.
//! Unknown emails cost one password verification too, so timing does not reveal who has an account.

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use sqlx::{PgConnection, PgPool};

use super::password;
use crate::config::AuthSettings;
use crate::domain::EmailAddress;
use crate::email::templates::Template;
use crate::email::{SendEmail, SendEmailHandler};
use crate::ids::{PublicId, Snowflake, UserAuthId, UserId};
use crate::jobs::{JobHandler, JobStore};

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("an account with this email address exists")]
    EmailInUse,
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
    let code = PublicId::generate().as_str().to_owned() + PublicId::generate().as_str();
    let user = UserId(ids.next_id());
    let auth = UserAuthId(ids.next_id());
    sqlx::query("INSERT INTO users (id, public_id, name) VALUES ($1, $2, $3)")
        .bind(user)
        .bind(PublicId::generate())
        .bind(&account.name)
        .execute(&mut *tx)
        .await?;
    let email = sqlx::query(
        "INSERT INTO emails (id, user_id, email_address, verification_code_hash, verification_code_at)
         VALUES ($1, $2, $3, $4, now())",
    )
    .bind(ids.next_id())
    .bind(user)
    .bind(account.email.as_str())
    .bind(sha256_hex(&code))
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
            code,
        },
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
    log_in_attempts: i32,
    last_login_attempt: Option<DateTime<Utc>>,
}

/// A hash of a random password: verifying against it costs what a real check costs.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$2yH7Nk0GOAaX1qAcEpO4bqiwHSsMGiHwRXwQaGuIFK8";

/// Checks an email and password, applying and updating the lockout counters.
pub async fn check_password(
    pool: &PgPool,
    settings: &AuthSettings,
    email: &EmailAddress,
    candidate: SecretString,
    now: DateTime<Utc>,
) -> Result<(UserId, UserAuthId), AccountError> {
    let found: Option<Credentials> = sqlx::query_as(
        "SELECT u.id AS user_id, a.id AS auth_id, a.hashed_password, u.status, u.log_in_attempts, u.last_login_attempt
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
    if account.status == "SoftLocked"
        && let Some(last) = account.last_login_attempt
    {
        let until = last + chrono::Duration::minutes(settings.soft_lock_minutes);
        if until > now {
            return Err(AccountError::SoftLocked {
                minutes: (until - now).num_minutes() + 1,
            });
        }
    }
    let ok = match account.hashed_password {
        Some(hash) => password::verify(candidate, hash).await?,
        None => {
            password::verify(candidate, DUMMY_HASH.into()).await?;
            false
        }
    };
    if ok {
        sqlx::query("UPDATE users SET log_in_attempts = 0, status = 'Unlocked', last_login_attempt = $2 WHERE id = $1")
            .bind(account.user_id)
            .bind(now)
            .execute(pool)
            .await?;
        return Ok((account.user_id, account.auth_id));
    }
    let attempts = account.log_in_attempts + 1;
    let status = if attempts >= settings.hard_lock_attempts {
        "HardLocked"
    } else if attempts >= settings.soft_lock_attempts {
        "SoftLocked"
    } else {
        "Unlocked"
    };
    sqlx::query(
        "UPDATE users SET log_in_attempts = $2, status = $3, last_login_attempt = $4 WHERE id = $1",
    )
    .bind(account.user_id)
    .bind(attempts)
    .bind(status)
    .bind(now)
    .execute(pool)
    .await?;
    match status {
        "HardLocked" => Err(AccountError::HardLocked),
        "SoftLocked" => Err(AccountError::SoftLocked {
            minutes: settings.soft_lock_minutes,
        }),
        _ => Err(AccountError::InvalidCredentials),
    }
}

pub fn sha256_hex(text: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}
