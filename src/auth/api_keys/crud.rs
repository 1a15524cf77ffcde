//! The keys' rows: creating one (its secret shown once, only its hash stored), listing,
//! changing and deleting them (each change drops the key from the cache), and `authenticate`,
//! which reads a presented key through the cache.

use sqlx::AssertSqlSafe;

use super::{
    ApiKeyAuth, ApiKeyRow, ApiKeys, CreateKeyError, KEY_PREFIX, KeyChanges, NewApiKey, Permission,
};
use crate::auth::accounts::sha256_hex;
use crate::ids::{ApiKeyId, PublicId, Snowflake, TeamId, UserId};

/// The columns of [`ApiKeyRow`]; the only text ever formatted into these queries (a constant, so
/// `AssertSqlSafe` holds).
const COLUMNS: &str = "id, name, key_prefix, permissions, credits_used, limit_soft, limit_hard, stop_at_limit, disabled_at, last_used_at, created_at, team_id, created_by";

/// Whether `$2` may manage key row `api_keys`: its owner, or an admin of its team.
const MANAGED_BY: &str = "(api_keys.user_id = $2
    OR EXISTS (SELECT 1 FROM members m WHERE m.team_id = api_keys.team_id AND m.user_id = $2
               AND m.is_admin))";

impl ApiKeys {
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
}
