//! Notifications: a row per notice, written in the transaction of whatever caused it, and
//! `user/notification/received` to the user's room after the commit.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};

use crate::ids::{NotificationId, Snowflake, UserId};

/// A notice to one user.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    pub id: crate::ids::NotificationId,
    pub user_id: UserId,
    pub category: String,
    pub title: String,
    pub description: Option<String>,
    pub link: Option<String>,
    pub is_read: bool,
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, user_id, category, title, description, link, is_read, created_at";

pub async fn create_in(
    conn: &mut PgConnection,
    ids: &Snowflake,
    user: UserId,
    category: &str,
    title: &str,
    description: Option<&str>,
    link: Option<&str>,
) -> Result<Notification, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO notifications (id, user_id, category, title, description, link)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING {COLUMNS}"
    )))
    .bind(ids.next_id())
    .bind(user)
    .bind(category)
    .bind(title)
    .bind(description)
    .bind(link)
    .fetch_one(conn)
    .await
}

/// Reading and marking a user's notifications (what the REST handlers use).
#[derive(Clone)]
pub struct Notifications {
    pool: PgPool,
}

impl Notifications {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// The user's notifications, newest first; `take + 1` rows.
    pub async fn list(
        &self,
        user: UserId,
        take: i64,
        before: Option<i64>,
    ) -> Result<Vec<Notification>, sqlx::Error> {
        list(&self.pool, user, take, before).await
    }

    /// Marks one (`Some(id)`) or all of the user's notifications read; how many changed.
    pub async fn mark_read(
        &self,
        user: UserId,
        id: Option<NotificationId>,
    ) -> Result<u64, sqlx::Error> {
        mark_read(&self.pool, user, id).await
    }
}

/// The user's notifications, newest first; `take + 1` rows.
async fn list(
    pool: &PgPool,
    user: UserId,
    take: i64,
    before: Option<i64>,
) -> Result<Vec<Notification>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM notifications
         WHERE user_id = $1 AND ($2::BIGINT IS NULL OR id < $2) ORDER BY id DESC LIMIT $3"
    )))
    .bind(user)
    .bind(before)
    .bind(take + 1)
    .fetch_all(pool)
    .await
}

/// Marks one (`Some(id)`) or all of the user's notifications read; how many changed.
async fn mark_read(
    pool: &PgPool,
    user: UserId,
    id: Option<NotificationId>,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE notifications SET is_read = true
         WHERE user_id = $1 AND ($2::BIGINT IS NULL OR id = $2) AND NOT is_read",
    )
    .bind(user)
    .bind(id)
    .execute(pool)
    .await?
    .rows_affected())
}
