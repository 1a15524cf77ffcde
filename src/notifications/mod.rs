//! Notifications: a row per notice, written in the transaction of whatever caused it, and
//! `user/notification/received` to the user's room after the commit; by email too (an
//! `email-send` job in the same transaction) and to their browsers (Web Push, `push.rs`) as the
//! user's settings say (`settings.rs`).

pub mod push;
pub mod settings;
pub mod vapid_key;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};

use crate::email::templates::Template;
use crate::email::{SendEmail, SendEmailHandler};
use crate::ids::{NotificationId, Snowflake, UserId};
use crate::jobs::{JobHandler, JobStore};
pub use settings::{Category, NotificationSettings};

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
    #[serde(serialize_with = "crate::domain::rfc3339::utc")]
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, user_id, category, title, description, link, is_read, created_at";

/// A notice to make.
pub struct Notice<'a> {
    pub user: UserId,
    pub category: Category,
    pub title: &'a str,
    pub description: Option<&'a str>,
    /// A path in the app (`/team/123`); the email makes it a link under `email.ui_url`.
    pub link: Option<&'a str>,
}

/// Makes `notice` as its user's settings say, in the caller's transaction: the in-app row
/// (returned, for the caller to publish after the commit) and, when they want email and have a
/// verified address, an `email-send` job. `None` when they turned this category off.
pub async fn create_in(
    conn: &mut PgConnection,
    ids: &Snowflake,
    jobs: &JobStore,
    notice: Notice<'_>,
) -> Result<Option<Notification>, sqlx::Error> {
    let Some((name, stored, email)): Option<(String, serde_json::Value, Option<String>)> =
        sqlx::query_as(
            "SELECT u.name, u.notification_settings,
                    (SELECT e.email_address FROM emails e
                      WHERE e.user_id = u.id AND e.verified_at IS NOT NULL
                      ORDER BY e.is_primary DESC, e.id LIMIT 1)
               FROM users u WHERE u.id = $1",
        )
        .bind(notice.user)
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(None);
    };
    let settings = NotificationSettings::from_stored(&stored);
    if !settings.allows(notice.category) {
        return Ok(None);
    }
    let notification: Notification = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO notifications (id, user_id, category, title, description, link)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING {COLUMNS}"
    )))
    .bind(ids.next_id())
    .bind(notice.user)
    .bind(notice.category.as_str())
    .bind(notice.title)
    .bind(notice.description)
    .bind(notice.link)
    .fetch_one(&mut *conn)
    .await?;
    if let Some(to) = email
        && settings.by_email(notice.category)
    {
        let mail = SendEmailHandler::job(&SendEmail {
            to,
            template: Template::Notification {
                name,
                title: notice.title.to_owned(),
                description: notice.description.map(str::to_owned),
                link: notice.link.unwrap_or("/").to_owned(),
            },
            code_for: None,
        })
        .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        jobs.enqueue_in(&mut *conn, mail).await?;
    }
    if settings.by_push(notice.category) {
        // One job per subscribed browser (none when push is off on the server: no devices
        // can be subscribed then).
        let devices: Vec<i64> =
            sqlx::query_scalar("SELECT id FROM push_devices WHERE user_id = $1")
                .bind(notice.user)
                .fetch_all(&mut *conn)
                .await?;
        let mut pushes = Vec::with_capacity(devices.len());
        for device in devices {
            let payload = push::PushPayload {
                device_id: device.to_string(),
                title: notice.title.to_owned(),
                body: notice.description.map(str::to_owned),
                link: notice.link.map(str::to_owned),
            };
            pushes
                .push(push::SendPush::job(&payload).map_err(|e| sqlx::Error::Encode(Box::new(e)))?);
        }
        jobs.enqueue_many_in(conn, pushes).await?;
    }
    Ok(Some(notification))
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

    /// The user's notifications, newest first; `take + 1` rows. The cursor is an index bound
    /// (`id < COALESCE(…)`), so a deep page reads only its own rows.
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

/// The user's notifications, newest first; `take + 1` rows. The cursor is an index bound
/// (`id < COALESCE(…)`), so a deep page reads only its own rows.
async fn list(
    pool: &PgPool,
    user: UserId,
    take: i64,
    before: Option<i64>,
) -> Result<Vec<Notification>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM notifications
         WHERE user_id = $1 AND id < COALESCE($2::BIGINT, 9223372036854775807) ORDER BY id DESC LIMIT $3"
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
