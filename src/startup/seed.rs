//! The rows every install needs: the administrator, the bot "Valyxa" and the team "Vrooli"
//! (with both as members). Idempotent and safe to run from several nodes at once: each insert is
//! `ON CONFLICT DO NOTHING` on a natural key (handle, email, team+user), and ids are read back by
//! that key, all in one transaction. A second run changes nothing — not even an existing admin
//! password, which belongs to the admin once set.
//!
//! Part of start-up, not of `db`: it writes accounts, a bot and a team and hashes the admin's
//! password with `auth::password`, and the database floor imports none of the services.

use secrecy::{ExposeSecret, SecretString};
use sqlx::{PgPool, Postgres, Transaction};

use crate::config::SeedSettings;
use crate::ids::{PublicId, Snowflake, TeamId, UserId};

pub const VALYXA_HANDLE: &str = "valyxa";
pub const TEAM_HANDLE: &str = "vrooli";

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("seed query failed: {0}")]
    Sql(#[from] sqlx::Error),
    #[error(transparent)]
    Password(#[from] crate::auth::password::PasswordError),
}

/// What the seed found or made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedReport {
    pub admin: UserId,
    pub valyxa: UserId,
    pub team: TeamId,
    /// Rows inserted by this run (0 on every run after the first).
    pub inserted: u64,
}

pub async fn run(
    pool: &PgPool,
    ids: &Snowflake,
    settings: &SeedSettings,
) -> Result<SeedReport, SeedError> {
    // Hash before opening the transaction: argon2 takes tens of milliseconds.
    let password = settings.admin_password.expose_secret();
    let password_hash = if password.is_empty() {
        None
    } else {
        Some(crate::auth::password::hash(SecretString::from(password)).await?)
    };

    let mut tx = pool.begin().await?;
    let mut inserted = 0;

    let (admin, n) = user(
        &mut tx,
        ids,
        &settings.admin_handle,
        "Administrator",
        false,
        true,
    )
    .await?;
    inserted += n;
    inserted += sqlx::query(
        "INSERT INTO emails (id, user_id, email_address, verified_at) VALUES ($1, $2, $3, now())
         ON CONFLICT ((lower(email_address))) DO NOTHING",
    )
    .bind(ids.next_id())
    .bind(admin)
    .bind(&settings.admin_email)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    // The password row exists even without a password (no hash: no sign-in by password), so
    // the reset flow, which looks for it, can give the administrator one.
    if password_hash.is_none() {
        tracing::warn!(
            handle = %settings.admin_handle,
            email = %settings.admin_email,
            "seed.admin_password is empty: the administrator has no password until one is set \
             by a password reset (POST /api/v2/auth/email/requestPasswordChange)"
        );
    }
    inserted += sqlx::query(
        "INSERT INTO user_auth (id, user_id, provider, hashed_password) VALUES ($1, $2, 'Password', $3)
         ON CONFLICT (user_id, provider) DO NOTHING",
    )
    .bind(ids.next_id())
    .bind(admin)
    .bind(password_hash)
    .execute(&mut *tx)
    .await?
    .rows_affected();

    let (valyxa, n) = user(&mut tx, ids, VALYXA_HANDLE, "Valyxa", true, false).await?;
    inserted += n;

    let (team, n) = team(&mut tx, ids, admin).await?;
    inserted += n;
    for (member, is_admin) in [(admin, true), (valyxa, false)] {
        inserted += sqlx::query(
            "INSERT INTO members (id, public_id, team_id, user_id, is_admin) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (team_id, user_id) DO NOTHING",
        )
        .bind(ids.next_id())
        .bind(PublicId::generate())
        .bind(team)
        .bind(member)
        .bind(is_admin)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    }

    tx.commit().await?;
    Ok(SeedReport {
        admin,
        valyxa,
        team,
        inserted,
    })
}

/// Inserts the user unless its handle is taken; returns its id and the number of rows inserted.
async fn user(
    tx: &mut Transaction<'_, Postgres>,
    ids: &Snowflake,
    handle: &str,
    name: &str,
    is_bot: bool,
    is_admin: bool,
) -> Result<(UserId, u64), sqlx::Error> {
    let bot_settings = is_bot.then(|| {
        serde_json::json!({
            "model": "default",
            "persona": {
                "bio": "I'm Valyxa, Vrooli's assistant. I help you find, build and run routines.",
                "tone": "friendly and concise"
            }
        })
    });
    let inserted = sqlx::query(
        "INSERT INTO users (id, public_id, handle, name, is_bot, bot_settings, is_admin)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT ((lower(handle))) DO NOTHING",
    )
    .bind(ids.next_id())
    .bind(PublicId::generate())
    .bind(handle)
    .bind(name)
    .bind(is_bot)
    .bind(bot_settings)
    .bind(is_admin)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    let id = sqlx::query_scalar("SELECT id FROM users WHERE lower(handle) = lower($1)")
        .bind(handle)
        .fetch_one(&mut **tx)
        .await?;
    Ok((id, inserted))
}

async fn team(
    tx: &mut Transaction<'_, Postgres>,
    ids: &Snowflake,
    creator: UserId,
) -> Result<(TeamId, u64), sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO teams (id, public_id, handle, name, created_by) VALUES ($1, $2, $3, 'Vrooli', $4)
         ON CONFLICT ((lower(handle))) DO NOTHING",
    )
    .bind(ids.next_id())
    .bind(PublicId::generate())
    .bind(TEAM_HANDLE)
    .bind(creator)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    let id = sqlx::query_scalar("SELECT id FROM teams WHERE lower(handle) = lower($1)")
        .bind(TEAM_HANDLE)
        .fetch_one(&mut **tx)
        .await?;
    Ok((id, inserted))
}
