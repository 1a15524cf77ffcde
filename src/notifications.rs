//! Notifications: a row per notice, written in the transaction of whatever caused it, and
//! `user/notification/received` to the user's room after the commit.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};

use crate::ids::{Snowflake, UserId};

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    #[serde(serialize_with = "as_string")]
    pub id: i64,
    pub user_id: UserId,
    pub category: String,
    pub title: String,
    pub description: Option<String>,
    pub link: Option<String>,
    pub is_read: bool,
    pub created_at: DateTime<Utc>,
}

fn as_string<S: serde::Serializer>(id: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(id)
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

/// The user's notifications, newest first; `take + 1` rows.
pub async fn list(
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
pub async fn mark_read(pool: &PgPool, user: UserId, id: Option<i64>) -> Result<u64, sqlx::Error> {
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
