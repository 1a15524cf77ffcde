//! PostgreSQL: the pool, start-up connection with retry, migrations.
//!
//! `connect` builds the pool from `[database]` and retries until PostgreSQL answers;
//! `migrate` applies `migrations/` (embedded at compile time; sqlx takes an advisory lock, so
//! several nodes starting together migrate once); `node_lease` claims this node's Snowflake worker
//! id. The rows every install needs (the seed) are made by `startup::seed`, which may use the
//! services above this floor (it hashes the admin's password with `auth::password`).

pub mod columns;
pub mod node_lease;
pub mod warm;

use std::str::FromStr;
use std::time::Duration;

use secrecy::ExposeSecret;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgPool};

use crate::config::DatabaseSettings;
use crate::retry::{Backoff, with_backoff};

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database.url is not a valid PostgreSQL URL: {0}")]
    Url(#[source] sqlx::Error),
    #[error("could not connect to PostgreSQL at {target} after {attempts} attempts: {source}")]
    Connect {
        target: String,
        attempts: u32,
        #[source]
        source: sqlx::Error,
    },
    #[error("migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// The connect options from `[database]`, with the statement timeout applied to every session.
///
/// A URL without `sslmode` that points at this machine (loopback or a Unix socket) connects
/// without TLS: libpq's default, `prefer`, would encrypt every pooled connection to a local
/// server (Debian's PostgreSQL has `ssl = on`) and spend CPU on every query for a wire nobody
/// else can read. An explicit `sslmode` in the URL is always kept.
pub fn connect_options(settings: &DatabaseSettings) -> Result<PgConnectOptions, DbError> {
    let url = settings.url.expose_secret();
    let options = PgConnectOptions::from_str(url).map_err(DbError::Url)?;
    let options = if !url.contains("sslmode=") && is_local(options.get_host()) {
        options.ssl_mode(sqlx::postgres::PgSslMode::Disable)
    } else {
        options
    };
    let options = if settings.statement_timeout_ms > 0 {
        options.options([(
            "statement_timeout",
            settings.statement_timeout_ms.to_string(),
        )])
    } else {
        options
    };
    Ok(options.application_name("vrooli"))
}

/// Loopback addresses, `localhost`, and Unix socket directories.
fn is_local(host: &str) -> bool {
    host.starts_with('/')
        || host.eq_ignore_ascii_case("localhost")
        || host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// "host:port/database" — where we connect, without the credentials, for logs and errors.
pub fn describe_target(options: &PgConnectOptions) -> String {
    format!(
        "{}:{}/{}",
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or("(default)")
    )
}

/// Builds the pool and waits (with backoff) until PostgreSQL accepts a connection.
pub async fn connect(settings: &DatabaseSettings) -> Result<PgPool, DbError> {
    let options = connect_options(settings)?;
    let target = describe_target(&options);
    let backoff = Backoff {
        attempts: settings.connect_attempts,
        initial: Duration::from_millis(settings.connect_backoff_initial_ms),
        max: Duration::from_millis(settings.connect_backoff_max_ms),
    };
    let ping_after_idle = Duration::from_millis(settings.ping_after_idle_ms);
    let pool_options = PgPoolOptions::new()
        .max_connections(settings.pool_size())
        .min_connections(settings.min_connections)
        .acquire_timeout(Duration::from_millis(settings.acquire_timeout_ms))
        .idle_timeout(Some(Duration::from_secs(settings.idle_timeout_secs)))
        // sqlx pings a connection when it comes back to the pool and, by default, again when it
        // is handed out: two extra round trips per query. A connection that came back less than
        // `ping_after_idle_ms` ago was just found alive; only one idle for longer is pinged
        // (PostgreSQL may have restarted, or an idle timeout cut it, meanwhile).
        .test_before_acquire(false)
        .before_acquire(move |conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= ping_after_idle {
                    conn.ping().await?;
                }
                Ok(true)
            })
        });
    with_backoff("postgres", backoff, || {
        pool_options.clone().connect_with(options.clone())
    })
    .await
    .map_err(|source| DbError::Connect {
        target,
        attempts: settings.connect_attempts,
        source,
    })
}

pub async fn migrate(pool: &PgPool) -> Result<(), DbError> {
    MIGRATOR.run(pool).await?;
    Ok(())
}

/// Whether PostgreSQL ended the statement's transaction to break a deadlock (or a serialization
/// failure): nothing of it was written, and the same work may simply be tried again.
pub fn is_deadlock(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "40P01" || code == "40001")
}
