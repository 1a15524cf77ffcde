//! People as others see them: a user's public fields (id, handle, name, whether a bot, avatar,
//! when they joined), found by id, by handle (case-insensitive, as handles compare), or by a piece of
//! their name or handle. Read-only: accounts are written by `auth`. Deleted accounts are not
//! found. HTTP → `http::people` → here → PostgreSQL.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;

use crate::ids::{FileId, UserId};

/// What anyone may see of a user.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PublicUser {
    pub id: UserId,
    pub handle: Option<String>,
    pub name: String,
    pub is_bot: bool,
    /// The avatar, public: `GET /file/{id}` (or a variant, `/file/{id}/{W}x{H}`).
    pub profile_image_id: Option<FileId>,
    #[serde(serialize_with = "crate::domain::rfc3339::utc")]
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, handle, name, is_bot, profile_image_id, created_at";

/// A search: `text` within the name or handle (any case), bots only or people only.
#[derive(Debug, Default)]
pub struct Search<'a> {
    pub text: Option<&'a str>,
    pub is_bot: Option<bool>,
}

#[derive(Clone)]
pub struct Directory {
    pool: PgPool,
}

impl Directory {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    pub async fn by_id(&self, id: UserId) -> Result<Option<PublicUser>, sqlx::Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM users WHERE id = $1 AND status <> 'Deleted'"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
    }

    /// Uses the unique index on `lower(handle)`.
    pub async fn by_handle(&self, handle: &str) -> Result<Option<PublicUser>, sqlx::Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM users WHERE lower(handle) = lower($1) AND status <> 'Deleted'"
        )))
        .bind(handle)
        .fetch_optional(&self.pool)
        .await
    }

    /// Up to `take` users after the id `after`, in id order (oldest account first).
    pub async fn search(
        &self,
        search: &Search<'_>,
        take: i64,
        after: Option<i64>,
    ) -> Result<Vec<PublicUser>, sqlx::Error> {
        // The search text is matched literally: LIKE's wildcards in it are escaped.
        let pattern = search.text.map(|text| {
            let escaped = text
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            format!("%{escaped}%")
        });
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM users
              WHERE status <> 'Deleted'
                AND ($1::text IS NULL OR name ILIKE $1 OR handle ILIKE $1)
                AND ($2::boolean IS NULL OR is_bot = $2)
                AND ($3::bigint IS NULL OR id > $3)
              ORDER BY id
              LIMIT $4"
        )))
        .bind(pattern)
        .bind(search.is_bot)
        .bind(after)
        .bind(take + 1)
        .fetch_all(&self.pool)
        .await
    }

    /// The seeded admin (the oldest admin account): whom the system key acts as on `/mcp`.
    pub async fn first_admin(&self) -> Result<Option<UserId>, sqlx::Error> {
        sqlx::query_scalar(
            "SELECT id FROM users WHERE is_admin AND status <> 'Deleted' ORDER BY id LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await
    }
}
