//! API keys: `vrk_<8-character prefix>_<24-character secret>` (0-9a-z), shown once at creation
//! and stored only as a SHA-256 hash (the secret has ~124 bits of entropy, so a fast hash is
//! enough; nothing is gained by argon2 here). A
//! lookup is cached for five minutes — in Redis when configured, so every node sees a disable at
//! once. A key authenticates only while its owner is not locked or deleted.
//!
//! A change (update, disable, delete, the owner locked) replaces the cache entry with a
//! tombstone for the cache's lifetime, and a lookup caches only where nothing is (`SET NX`): a
//! lookup that read the row just before a disable committed cannot put the enabled key back.
//! While a tombstone stands, lookups go to PostgreSQL.
//!
//! A **team's key** (`team_id`) is made by one of its admins (`created_by`) and acts as that
//! admin, within the team only (`http::auth::session::RequireTeam` names the few routes that
//! take one; every other route refuses it): it authenticates only while its maker is still an
//! admin of the team, and what it spends comes from the team's credits. A change of the maker's
//! standing drops the team's keys from the cache ([`ApiKeys::forget_team`]).

use crate::errors::{Code, ErrorCode, Told};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{AssertSqlSafe, PgPool};

use super::accounts::sha256_hex;
use crate::ids::{ApiKeyId, PublicId, Snowflake, TeamId, UserId};
use crate::redis_client::RedisClient;

const CACHE_TTL: Duration = Duration::from_secs(300);
pub const KEY_PREFIX: &str = "vrk_";

/// What an API key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Permission {
    ReadPublic,
    ReadPrivate,
    WritePrivate,
    ReadAuth,
    WriteAuth,
}

/// An API key asked for what its permissions do not cover (REST's extractors and the MCP tools
/// alike).
#[derive(Debug, thiserror::Error)]
#[error("This API key lacks the {} permission", .0.as_str())]
pub struct MissingPermission(pub Permission);

impl ErrorCode for MissingPermission {
    fn told(&self) -> Told {
        Told::says(Code::MissingPermission, self)
    }
}

impl Permission {
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::ReadPublic => "ReadPublic",
            Permission::ReadPrivate => "ReadPrivate",
            Permission::WritePrivate => "WritePrivate",
            Permission::ReadAuth => "ReadAuth",
            Permission::WriteAuth => "WriteAuth",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::ReadPublic,
            Self::ReadPrivate,
            Self::WritePrivate,
            Self::ReadAuth,
            Self::WriteAuth,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
    }
}

/// A request authenticated by an API key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyAuth {
    pub key_id: ApiKeyId,
    /// The key's owner; for a team's key, the admin who made it.
    pub user: UserId,
    pub permissions: Vec<Permission>,
    /// The team whose key this is.
    #[serde(default)]
    pub team: Option<TeamId>,
}

/// An API key as its owner sees it (never the secret).
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyRow {
    pub id: ApiKeyId,
    pub name: String,
    /// The key's public part (`vrk_<prefix>_…`), to tell keys apart.
    pub key_prefix: String,
    #[schema(value_type = Vec<Permission>)]
    pub permissions: Vec<String>,
    pub credits_used: i64,
    pub limit_soft: Option<i64>,
    pub limit_hard: i64,
    pub stop_at_limit: bool,
    pub disabled_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// A team's key: that team (it acts as `createdBy`, within the team).
    pub team_id: Option<TeamId>,
    /// Who made it.
    pub created_by: Option<UserId>,
}

/// What a new key may do and spend.
pub struct NewApiKey {
    pub name: String,
    pub permissions: Vec<Permission>,
    pub limit_hard: i64,
    pub limit_soft: Option<i64>,
    pub stop_at_limit: bool,
}

/// Changes to a key; `None` leaves a field as it is.
#[derive(Default)]
pub struct KeyChanges {
    pub name: Option<String>,
    pub permissions: Option<Vec<Permission>>,
    pub limit_hard: Option<i64>,
    pub limit_soft: Option<Option<i64>>,
    pub stop_at_limit: Option<bool>,
    pub disabled: Option<bool>,
}

pub struct ApiKeys {
    pool: PgPool,
    redis: Option<RedisClient>,
    /// Without Redis: the cache, `None` being a tombstone.
    local: Mutex<HashMap<String, (Instant, Option<ApiKeyAuth>)>>,
    max_per_user: i64,
}

/// Why a key could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateKeyError {
    #[error("a user (or team) may hold at most {0} API keys")]
    TooMany(i64),
    #[error("only an admin of the team makes its keys")]
    NotTeamAdmin,
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
}

impl ErrorCode for CreateKeyError {
    fn told(&self) -> Told {
        match self {
            CreateKeyError::TooMany(_) => Told::says(Code::TooManyApiKeys, self),
            CreateKeyError::NotTeamAdmin => Told::says(Code::NotAllowed, self),
            CreateKeyError::Sql(e) => e.told(),
        }
    }
}

/// What the cache holds for a changed key: not a lookup result, only "ask the database".
const TOMBSTONE: &str = "-";

/// The columns of [`ApiKeyRow`]; the only text ever formatted into these queries (a constant, so
/// `AssertSqlSafe` holds).
const COLUMNS: &str = "id, name, key_prefix, permissions, credits_used, limit_soft, limit_hard, stop_at_limit, disabled_at, last_used_at, created_at, team_id, created_by";

/// Whether `$2` may manage key row `api_keys`: its owner, or an admin of its team.
const MANAGED_BY: &str = "(api_keys.user_id = $2
    OR EXISTS (SELECT 1 FROM members m WHERE m.team_id = api_keys.team_id AND m.user_id = $2
               AND m.is_admin))";

impl ApiKeys {
    pub fn new(pool: PgPool, redis: Option<RedisClient>, max_per_user: i64) -> Self {
        Self {
            pool,
            redis,
            local: Mutex::new(HashMap::new()),
            max_per_user,
        }
    }

    /// Creates a key for `user` (or, with `team`, for that team, made by `user`, one of its
    /// admins); returns it with the secret, which is never shown again.
    pub async fn create(
        &self,
        ids: &Snowflake,
        user: UserId,
        team: Option<TeamId>,
        key: NewApiKey,
    ) -> Result<(ApiKeyRow, String), CreateKeyError> {
        let mut tx = self.pool.begin().await?;
        // One creation per owner at a time, so the count below cannot be passed by racing. A
        // team's row is also what every change of its members locks, so the maker is an admin
        // when the key is made.
        let held: i64 = match team {
            None => {
                sqlx::query("SELECT 1 FROM users WHERE id = $1 FOR UPDATE")
                    .bind(user)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query_scalar("SELECT count(*) FROM api_keys WHERE user_id = $1")
                    .bind(user)
                    .fetch_one(&mut *tx)
                    .await?
            }
            Some(team) => {
                let admin: Option<bool> = sqlx::query_scalar(
                    "SELECT m.is_admin FROM teams t JOIN members m ON m.team_id = t.id
                      WHERE t.id = $1 AND m.user_id = $2 FOR UPDATE OF t",
                )
                .bind(team)
                .bind(user)
                .fetch_optional(&mut *tx)
                .await?;
                if admin != Some(true) {
                    return Err(CreateKeyError::NotTeamAdmin);
                }
                sqlx::query_scalar("SELECT count(*) FROM api_keys WHERE team_id = $1")
                    .bind(team)
                    .fetch_one(&mut *tx)
                    .await?
            }
        };
        if held >= self.max_per_user {
            return Err(CreateKeyError::TooMany(self.max_per_user));
        }
        let prefix: String = PublicId::generate().as_str()[..8].to_owned();
        let secret = format!(
            "{KEY_PREFIX}{prefix}_{}{}",
            PublicId::generate().as_str(),
            PublicId::generate().as_str()
        );
        let permissions: Vec<&str> = key.permissions.iter().map(|p| p.as_str()).collect();
        let row = sqlx::query_as(AssertSqlSafe(format!(
            "INSERT INTO api_keys (id, key_hash, key_prefix, name, permissions, limit_hard, limit_soft, stop_at_limit, user_id, team_id, created_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING {COLUMNS}"
        )))
        .bind(ids.next_id())
        .bind(sha256_hex(&secret))
        .bind(&prefix)
        .bind(&key.name)
        .bind(&permissions)
        .bind(key.limit_hard)
        .bind(key.limit_soft)
        .bind(key.stop_at_limit)
        .bind(team.is_none().then_some(user))
        .bind(team)
        .bind(user)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((row, secret))
    }

    /// `user`'s keys, or (with `team`) that team's when `user` is one of its admins.
    pub async fn list(
        &self,
        user: UserId,
        team: Option<TeamId>,
    ) -> Result<Vec<ApiKeyRow>, sqlx::Error> {
        sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM api_keys
              WHERE CASE WHEN $1::BIGINT IS NULL THEN user_id = $2 ELSE team_id = $1 END
                AND {MANAGED_BY} ORDER BY id"
        )))
        .bind(team)
        .bind(user)
        .fetch_all(&self.pool)
        .await
    }

    /// Applies `changes` to `user`'s key `id`; `None` if there is no such key of theirs.
    pub async fn update(
        &self,
        user: UserId,
        id: ApiKeyId,
        changes: KeyChanges,
    ) -> Result<Option<ApiKeyRow>, sqlx::Error> {
        let permissions: Option<Vec<&str>> = changes
            .permissions
            .as_ref()
            .map(|p| p.iter().map(|p| p.as_str()).collect());
        let row: Option<(String,)> = sqlx::query_as(AssertSqlSafe(format!(
            "UPDATE api_keys SET
                name = COALESCE($3, name),
                permissions = COALESCE($4, permissions),
                limit_hard = COALESCE($5, limit_hard),
                limit_soft = CASE WHEN $6 THEN $7 ELSE limit_soft END,
                stop_at_limit = COALESCE($8, stop_at_limit),
                disabled_at = CASE WHEN $9 IS NULL THEN disabled_at WHEN $9 THEN COALESCE(disabled_at, now()) ELSE NULL END
              WHERE id = $1 AND {MANAGED_BY}
             RETURNING key_hash"
        )))
        .bind(id)
        .bind(user)
        .bind(changes.name)
        .bind(permissions)
        .bind(changes.limit_hard)
        .bind(changes.limit_soft.is_some())
        .bind(changes.limit_soft.flatten())
        .bind(changes.stop_at_limit)
        .bind(changes.disabled)
        .fetch_optional(&self.pool)
        .await?;
        let Some((hash,)) = row else { return Ok(None) };
        self.forget(&hash).await;
        let row = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM api_keys WHERE id = $1"
        )))
        .bind(id)
        .fetch_one(&self.pool)
        .await?;
        Ok(Some(row))
    }

    pub async fn delete(&self, user: UserId, id: ApiKeyId) -> Result<bool, sqlx::Error> {
        let hash: Option<String> = sqlx::query_scalar(AssertSqlSafe(format!(
            "DELETE FROM api_keys WHERE id = $1 AND {MANAGED_BY} RETURNING key_hash"
        )))
        .bind(id)
        .bind(user)
        .fetch_optional(&self.pool)
        .await?;
        match hash {
            Some(hash) => {
                self.forget(&hash).await;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// The key's owner and permissions, or `None` for an unknown or disabled key.
    pub async fn authenticate(&self, presented: &str) -> Result<Option<ApiKeyAuth>, sqlx::Error> {
        if !presented.starts_with(KEY_PREFIX) || presented.len() > 64 {
            return Ok(None);
        }
        let hash = sha256_hex(presented);
        if let Some(cached) = self.cached(&hash).await {
            return Ok(Some(cached));
        }
        // A team's key acts as its maker, while they are an admin of the team.
        let row: Option<(ApiKeyId, UserId, Option<TeamId>, Vec<String>)> = sqlx::query_as(
            "UPDATE api_keys k SET last_used_at = now()
               FROM users u
              WHERE k.key_hash = $1 AND k.disabled_at IS NULL
                AND u.id = COALESCE(k.user_id, k.created_by)
                AND u.status NOT IN ('HardLocked', 'Deleted')
                AND (k.team_id IS NULL
                     OR EXISTS (SELECT 1 FROM members m WHERE m.team_id = k.team_id
                                   AND m.user_id = k.created_by AND m.is_admin))
             RETURNING k.id, u.id, k.team_id, k.permissions",
        )
        .bind(&hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some((key_id, user, team, permissions)) = row else {
            return Ok(None);
        };
        let auth = ApiKeyAuth {
            key_id,
            user,
            permissions: permissions
                .iter()
                .filter_map(|p| Permission::parse(p))
                .collect(),
            team,
        };
        self.remember(&hash, &auth).await;
        Ok(Some(auth))
    }

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

    async fn cached(&self, hash: &str) -> Option<ApiKeyAuth> {
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
    async fn remember(&self, hash: &str, auth: &ApiKeyAuth) {
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
    async fn forget(&self, hash: &str) {
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
