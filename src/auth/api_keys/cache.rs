//! The lookup cache (Redis when configured, else this node's map): `authenticate` reads it and
//! caches only where nothing is (`SET NX`); a change puts a tombstone in its place, so a stale
//! lookup cannot bring a changed key back. Also the calls that drop a user's or team's keys.

use std::time::{Duration, Instant};

use super::{ApiKeyAuth, ApiKeys};
use crate::ids::{TeamId, UserId};

const CACHE_TTL: Duration = Duration::from_secs(300);

/// What the cache holds for a changed key: not a lookup result, only "ask the database".
const TOMBSTONE: &str = "-";

impl ApiKeys {
    /// Drops every key of `user` (and every team key they made) from the cache (its owner
    /// was locked): the next request with any of them reads the owner's status.
    pub async fn forget_user(&self, user: UserId) -> Result<(), sqlx::Error> {
        let hashes: Vec<String> = sqlx::query_scalar(
            "SELECT key_hash FROM api_keys WHERE user_id = $1 OR created_by = $1",
        )
        .bind(user)
        .fetch_all(&self.pool)
        .await?;
        for hash in hashes {
            self.forget(&hash).await;
        }
        Ok(())
    }

    /// The cache entries of `team`'s keys, to drop once a change of its members (or its
    /// deletion) has committed: read before a deletion takes the rows with it.
    pub async fn team_key_hashes(&self, team: TeamId) -> Result<Vec<String>, sqlx::Error> {
        sqlx::query_scalar("SELECT key_hash FROM api_keys WHERE team_id = $1")
            .bind(team)
            .fetch_all(&self.pool)
            .await
    }

    /// Drops these keys from the cache: the next request with one reads whether its maker is
    /// still an admin of its team.
    pub async fn forget_team(&self, hashes: &[String]) {
        for hash in hashes {
            self.forget(hash).await;
        }
    }

    pub(super) async fn cached(&self, hash: &str) -> Option<ApiKeyAuth> {
        match &self.redis {
            Some(redis) => {
                let json: Option<String> = redis::cmd("GET")
                    .arg(redis.key(&format!("apikey:{hash}")))
                    .query_async(&mut redis.connection())
                    .await
                    .ok()
                    .flatten();
                json.and_then(|j| serde_json::from_str(&j).ok())
            }
            None => {
                let local = self.local.lock().unwrap_or_else(|p| p.into_inner());
                local
                    .get(hash)
                    .filter(|(at, _)| at.elapsed() < CACHE_TTL)
                    .and_then(|(_, auth)| auth.clone())
            }
        }
    }

    /// Caches a lookup unless the entry is taken (by a tombstone, or another lookup).
    pub(super) async fn remember(&self, hash: &str, auth: &ApiKeyAuth) {
        match &self.redis {
            Some(redis) => {
                let Ok(json) = serde_json::to_string(auth) else {
                    return;
                };
                let _ = redis::cmd("SET")
                    .arg(redis.key(&format!("apikey:{hash}")))
                    .arg(json)
                    .arg("NX")
                    .arg("EX")
                    .arg(CACHE_TTL.as_secs())
                    .query_async::<()>(&mut redis.connection())
                    .await;
            }
            None => {
                let mut local = self.local.lock().unwrap_or_else(|p| p.into_inner());
                local.retain(|_, (at, _)| at.elapsed() < CACHE_TTL);
                local
                    .entry(hash.to_owned())
                    .or_insert_with(|| (Instant::now(), Some(auth.clone())));
            }
        }
    }

    /// Replaces the entry with a tombstone, after the change it stands for has committed.
    pub(super) async fn forget(&self, hash: &str) {
        match &self.redis {
            Some(redis) => {
                if let Err(error) = redis::cmd("SET")
                    .arg(redis.key(&format!("apikey:{hash}")))
                    .arg(TOMBSTONE)
                    .arg("EX")
                    .arg(CACHE_TTL.as_secs())
                    .query_async::<()>(&mut redis.connection())
                    .await
                {
                    tracing::error!(%error, "could not drop an API key from the cache; it stays usable until the entry expires");
                }
            }
            None => {
                self.local
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(hash.to_owned(), (Instant::now(), None));
            }
        }
    }
}
