//! Redis, when configured. An empty `redis.url` means single-node mode and no client at all;
//! a configured Redis that cannot be reached at start-up is retried with backoff, then start-up
//! fails — a node that silently ran without its cluster bus would split the cluster.
//!
//! `RedisClient` wraps a `ConnectionManager` (multiplexed, reconnects by itself; cheap to clone)
//! and the deployment's key prefix, so every key and channel the server makes goes through
//! [`RedisClient::key`] and tests can share one Redis.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use secrecy::ExposeSecret;

use crate::config::RedisSettings;
use crate::retry::{Backoff, with_backoff};

#[derive(Debug, thiserror::Error)]
pub enum RedisConnectError {
    #[error("redis.url is not a valid Redis URL: {0}")]
    Url(#[source] redis::RedisError),
    #[error("could not connect to Redis at {target} after {attempts} attempts: {source}")]
    Connect {
        target: String,
        attempts: u32,
        #[source]
        source: redis::RedisError,
    },
}

#[derive(Clone)]
pub struct RedisClient {
    client: redis::Client,
    connection: ConnectionManager,
    prefix: String,
    target: String,
}

impl std::fmt::Debug for RedisClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisClient")
            .field("target", &self.target)
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl RedisClient {
    /// Connects (with retry) when Redis is configured; `Ok(None)` in single-node mode.
    pub async fn connect(settings: &RedisSettings) -> Result<Option<Self>, RedisConnectError> {
        if !settings.is_configured() {
            return Ok(None);
        }
        let client = redis::Client::open(settings.url.expose_secret().trim())
            .map_err(RedisConnectError::Url)?;
        let info = client.get_connection_info();
        let target = format!("{}/{}", info.addr(), info.redis_settings().db());
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(settings.connection_timeout_ms)))
            .set_response_timeout(Some(Duration::from_millis(settings.response_timeout_ms)))
            // Commands wait for a reconnection in progress; redis-rs's default of 6 retries
            // held every request needing Redis for ~6 s while it was down, instead of letting
            // the caller fall back at once.
            .set_number_of_retries(settings.reconnect_retries);
        let backoff = Backoff {
            attempts: settings.connect_attempts,
            initial: Duration::from_millis(settings.connect_backoff_initial_ms),
            max: Duration::from_millis(settings.connect_backoff_max_ms),
        };
        let connection = with_backoff("redis", backoff, || async {
            let mut connection =
                ConnectionManager::new_with_config(client.clone(), config.clone()).await?;
            // The manager connects lazily on some errors; a PING proves the server answers.
            redis::cmd("PING")
                .query_async::<String>(&mut connection)
                .await?;
            Ok::<_, redis::RedisError>(connection)
        })
        .await
        .map_err(|source| RedisConnectError::Connect {
            target: target.clone(),
            attempts: settings.connect_attempts,
            source,
        })?;
        Ok(Some(Self {
            client,
            connection,
            prefix: settings.key_prefix.clone(),
            target,
        }))
    }

    /// The client, for dedicated connections (the broker's pub/sub).
    pub fn client(&self) -> &redis::Client {
        &self.client
    }

    /// A connection handle (clones share one multiplexed connection).
    pub fn connection(&self) -> ConnectionManager {
        self.connection.clone()
    }

    /// `prefix + name`: the only way keys and channels are named.
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// host:port/db, without credentials.
    pub fn target(&self) -> &str {
        &self.target
    }

    pub async fn ping(&self) -> redis::RedisResult<()> {
        let mut connection = self.connection();
        redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await
            .map(drop)
    }
}
