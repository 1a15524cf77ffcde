//! Data export (the original's `export-user-data` queue): a JSON archive of one user's profile,
//! the chats they made with their messages, their routines with every version, and their runs.
//!
//! ```text
//! POST /user/exportData ─▶ one tx: the caller's overdue Ready one expired ─▶ user_exports row
//!     (Pending) + the job; one outstanding per person (a unique index): while one is Pending,
//!     409 ExportInProgress; while one is Ready, that one is answered (no second copy)
//! export-user-data job (any node) ─▶ each section streamed from PostgreSQL row by row
//!     (json_build_object) ─▶ chunks of exports.chunk_bytes into user_export_chunks
//!     ─▶ Ready (or Failed: over exports.max_bytes, nothing kept)
//! GET /user/exportData/{id} (its owner, any node) ─▶ Downloaded (claimed in one UPDATE, so
//!     twice at once serves one) ─▶ the chunks streamed in order, deleted after
//! exports.expire-ready job (every exports.expire_every_secs) ─▶ Ready ones older than
//!     exports.ready_ttl_secs: Expired, chunks deleted (and those a broken-off download left)
//! ```

use crate::errors::{Code, ErrorCode, Told};
use futures_util::TryStreamExt;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use crate::ids::UserId;
use crate::jobs::{JobContext, JobError, JobHandler, Queue};

/// A chat `c` they made is theirs to export unless it is a team's they are no longer in: a team
/// chat belongs to the team, and a member who left takes nothing of it along (their team runs
/// likewise, below).
macro_rules! still_theirs {
    () => {
        "(c.team_id IS NULL
          OR EXISTS (SELECT 1 FROM members m WHERE m.team_id = c.team_id AND m.user_id = $1))"
    };
}

/// The archive's sections, in order: its name and the query of its rows (`$1` the user), each
/// row one JSON value as text.
const SECTIONS: &[(&str, &str)] = &[
    (
        "profile",
        "SELECT json_build_object('id', id::text, 'handle', handle, 'name', name, 'bio', bio,
                'theme', theme, 'languages', languages, 'notificationSettings',
                notification_settings, 'createdAt', created_at)::text
           FROM users WHERE id = $1",
    ),
    (
        "emails",
        "SELECT json_build_object('emailAddress', email_address,
                'verified', verified_at IS NOT NULL, 'isPrimary', is_primary)::text
           FROM emails WHERE user_id = $1 ORDER BY id",
    ),
    (
        "chats",
        concat!(
            "SELECT json_build_object('id', id::text, 'name', name, 'isPrivate', is_private,
                    'createdAt', created_at)::text
               FROM chats c WHERE c.creator_id = $1 AND ",
            still_theirs!(),
            " ORDER BY id"
        ),
    ),
    (
        "messages",
        concat!(
            "SELECT json_build_object('id', m.id::text, 'chatId', m.chat_id::text,
                    'userId', m.user_id::text, 'parentId', m.parent_id::text,
                    'versionIndex', m.version_index, 'text', m.text,
                    'status', m.status, 'createdAt', m.created_at)::text
               FROM chat_messages m JOIN chats c ON c.id = m.chat_id
              WHERE c.creator_id = $1 AND ",
            still_theirs!(),
            " ORDER BY m.id"
        ),
    ),
    (
        "routines",
        "SELECT json_build_object('id', r.id::text, 'resourceType', r.resource_type,
                'name', r.name, 'isPrivate', r.is_private,
                'createdAt', r.created_at, 'versions',
                (SELECT json_agg(json_build_object('id', v.id::text, 'versionLabel',
                        v.version_label, 'resourceSubType', v.resource_sub_type,
                        'config', v.config, 'isLatest', v.is_latest) ORDER BY v.id)
                   FROM resource_versions v WHERE v.resource_id = r.id))::text
           FROM resources r WHERE r.owner_id = $1 ORDER BY r.id",
    ),
    (
        "runs",
        "SELECT json_build_object('id', id::text, 'name', name, 'status', status,
                'routineVersionId', resource_version_id::text, 'inputs', inputs,
                'outputs', outputs, 'createdAt', created_at, 'completedAt', completed_at)::text
           FROM runs r WHERE r.user_id = $1
            AND (r.team_id IS NULL
                 OR EXISTS (SELECT 1 FROM members m WHERE m.team_id = r.team_id AND m.user_id = $1))
          ORDER BY id",
    ),
];

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportPayload {
    pub export_id: String,
}

/// `export-user-data`: writes one archive.
pub struct ExportUserData {
    pub pool: PgPool,
    pub chunk_bytes: usize,
    pub max_bytes: u64,
}

/// Chunks as they fill, and the bytes so far.
struct Chunks<'a> {
    pool: &'a PgPool,
    export: i64,
    buffer: Vec<u8>,
    seq: i32,
    total: u64,
    chunk_bytes: usize,
    max_bytes: u64,
}

#[derive(Debug, thiserror::Error)]
enum WriteError {
    #[error("the archive is over exports.max_bytes ({0} bytes)")]
    TooLarge(u64),
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
}

impl Chunks<'_> {
    async fn write(&mut self, bytes: &[u8]) -> Result<(), WriteError> {
        self.total += bytes.len() as u64;
        if self.total > self.max_bytes {
            return Err(WriteError::TooLarge(self.max_bytes));
        }
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= self.chunk_bytes {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), WriteError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        sqlx::query("INSERT INTO user_export_chunks (export_id, seq, data) VALUES ($1, $2, $3)")
            .bind(self.export)
            .bind(self.seq)
            .bind(&self.buffer)
            .execute(self.pool)
            .await?;
        self.seq += 1;
        self.buffer.clear();
        Ok(())
    }
}

impl ExportUserData {
    async fn archive(&self, export: i64, user: i64) -> Result<u64, WriteError> {
        // A retried attempt starts over.
        sqlx::query("DELETE FROM user_export_chunks WHERE export_id = $1")
            .bind(export)
            .execute(&self.pool)
            .await?;
        let mut out = Chunks {
            pool: &self.pool,
            export,
            buffer: Vec::with_capacity(self.chunk_bytes),
            seq: 0,
            total: 0,
            chunk_bytes: self.chunk_bytes,
            max_bytes: self.max_bytes,
        };
        let head = serde_json::json!({"format": "vrooli-user-export", "version": 1,
                                      "exportedAt": chrono::Utc::now()});
        let head = head.to_string();
        // `{"format":…,"version":1,"exportedAt":…` (its closing brace dropped) then
        // `,"<section>":[…]` for each section.
        let head = head.as_bytes();
        out.write(&head[..head.len() - 1]).await?;
        for (name, query) in SECTIONS {
            out.write(format!(",\"{name}\":[").as_bytes()).await?;
            let mut rows = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(*query))
                .bind(user)
                .fetch(&self.pool);
            let mut first = true;
            while let Some(row) = rows.try_next().await? {
                if !first {
                    out.write(b",").await?;
                }
                first = false;
                out.write(row.as_bytes()).await?;
            }
            out.write(b"]").await?;
        }
        out.write(b"}").await?;
        out.flush().await?;
        Ok(out.total)
    }
}

impl JobHandler for ExportUserData {
    const KIND: &'static str = "export-user-data";
    const QUEUE: Queue = Queue::ExportUserData;
    type Payload = ExportPayload;

    async fn handle(&self, p: ExportPayload, _: JobContext) -> Result<(), JobError> {
        let export: i64 = p.export_id.parse().map_err(JobError::permanent)?;
        let user: Option<i64> = sqlx::query_scalar(
            "SELECT user_id FROM user_exports WHERE id = $1 AND status = 'Pending'",
        )
        .bind(export)
        .fetch_optional(&self.pool)
        .await
        .map_err(JobError::retryable)?;
        let Some(user) = user else {
            return Ok(());
        };
        match self.archive(export, user).await {
            Ok(bytes) => {
                sqlx::query(
                    "UPDATE user_exports SET status = 'Ready', bytes = $2, ready_at = now()
                      WHERE id = $1 AND status = 'Pending'",
                )
                .bind(export)
                .bind(bytes as i64)
                .execute(&self.pool)
                .await
                .map_err(JobError::retryable)?;
                Ok(())
            }
            Err(WriteError::TooLarge(max)) => {
                let mut tx = self.pool.begin().await.map_err(JobError::retryable)?;
                sqlx::query("DELETE FROM user_export_chunks WHERE export_id = $1")
                    .bind(export)
                    .execute(&mut *tx)
                    .await
                    .map_err(JobError::retryable)?;
                sqlx::query("UPDATE user_exports SET status = 'Failed', error = $2 WHERE id = $1")
                    .bind(export)
                    .bind(format!("TooLarge: over {max} bytes"))
                    .execute(&mut *tx)
                    .await
                    .map_err(JobError::retryable)?;
                tx.commit().await.map_err(JobError::retryable)?;
                Ok(())
            }
            Err(WriteError::Sql(e)) => Err(JobError::retryable(e)),
        }
    }
}

/// An export as its owner sees it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserExport {
    pub id: crate::ids::UserExportId,
    /// `Pending`, `Ready`, `Failed`, `Downloaded` or `Expired` (not downloaded in time).
    pub status: String,
    pub bytes: i64,
    pub error: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("an export is already being made")]
    InProgress,
    #[error("no such export")]
    NotFound,
    #[error("the export is {0}")]
    NotReady(String),
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
}

impl ErrorCode for ExportError {
    fn told(&self) -> Told {
        match self {
            ExportError::InProgress => Told::of(
                Code::ExportInProgress,
                "An export of your data is already being made",
            ),
            ExportError::NotFound => Told::of(Code::ExportNotFound, "No such export of yours"),
            ExportError::NotReady(status) => Told::of(
                Code::ExportNotReady,
                format!("This export is {status}: only a Ready export is downloaded, once"),
            ),
            ExportError::Sql(e) => e.told(),
        }
    }
}

#[derive(Clone)]
pub struct Exports {
    pool: PgPool,
    ids: std::sync::Arc<crate::ids::Snowflake>,
    jobs: crate::jobs::JobStore,
    /// `exports.ready_ttl_secs`.
    ready_ttl: std::time::Duration,
}

/// Expires the Ready exports (of `$2`, or everyone's when NULL) older than `$1` seconds and
/// deletes their chunks, with the chunks a download broken off that long ago left behind; the
/// number expired.
const EXPIRE: &str = "WITH gone AS (
        UPDATE user_exports SET status = 'Expired'
         WHERE status = 'Ready' AND ready_at < now() - make_interval(secs => $1)
           AND ($2::BIGINT IS NULL OR user_id = $2)
        RETURNING id),
    dropped AS (
        DELETE FROM user_export_chunks
         WHERE export_id IN (SELECT id FROM gone)
            OR export_id IN (SELECT id FROM user_exports
                              WHERE status = 'Downloaded'
                                AND downloaded_at < now() - make_interval(secs => $1)
                                AND ($2::BIGINT IS NULL OR user_id = $2))
        RETURNING 1)
    SELECT count(*) FROM gone";

const EXPORT_COLUMNS: &str = "id, status, bytes, error, created_at";

impl Exports {
    pub fn new(
        pool: PgPool,
        ids: std::sync::Arc<crate::ids::Snowflake>,
        jobs: crate::jobs::JobStore,
        ready_ttl: std::time::Duration,
    ) -> Self {
        Self {
            pool,
            ids,
            jobs,
            ready_ttl,
        }
    }

    /// Expires overdue Ready exports (`user`'s, or everyone's); how many.
    async fn expire<'c>(
        &self,
        conn: impl sqlx::PgExecutor<'c>,
        user: Option<UserId>,
    ) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar(EXPIRE)
            .bind(self.ready_ttl.as_secs_f64())
            .bind(user)
            .fetch_one(conn)
            .await
    }

    /// Expires every overdue Ready export (the `exports.expire-ready` job); how many.
    pub async fn expire_overdue(&self) -> Result<i64, sqlx::Error> {
        self.expire(&self.pool, None).await
    }

    /// Starts an export of `user`'s data: one outstanding at a time. While one is being made,
    /// `InProgress`; while one is Ready and not downloaded, that one (nothing new is stored).
    /// Two asked at the same instant meet at the unique index: one row, one job.
    pub async fn start(&self, user: UserId) -> Result<UserExport, ExportError> {
        let mut tx = self.pool.begin().await?;
        // An overdue one no longer counts (the job may not have come by yet).
        self.expire(&mut *tx, Some(user)).await?;
        let id = self.ids.next_id();
        let created = sqlx::query_as::<_, UserExport>(sqlx::AssertSqlSafe(format!(
            "INSERT INTO user_exports (id, user_id) VALUES ($1, $2)
             ON CONFLICT (user_id) WHERE status IN ('Pending', 'Ready') DO NOTHING
             RETURNING {EXPORT_COLUMNS}"
        )))
        .bind(id)
        .bind(user)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(export) = created else {
            // Read after the other's commit (a new statement sees it).
            let outstanding = sqlx::query_as::<_, UserExport>(sqlx::AssertSqlSafe(format!(
                "SELECT {EXPORT_COLUMNS} FROM user_exports
                  WHERE user_id = $1 AND status = 'Ready'"
            )))
            .bind(user)
            .fetch_optional(&mut *tx)
            .await?;
            return outstanding.ok_or(ExportError::InProgress);
        };
        let job = ExportUserData::job(&ExportPayload {
            export_id: id.to_string(),
        })
        .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        self.jobs.enqueue_in(&mut tx, job).await?;
        tx.commit().await?;
        Ok(export)
    }

    /// Claims a ready export of `user` for its one download; its chunk count.
    pub async fn claim(&self, user: UserId, export: i64) -> Result<i32, ExportError> {
        // An overdue one is not served, even before the job came by.
        self.expire(&self.pool, Some(user)).await?;
        let claimed: Option<i32> = sqlx::query_scalar(
            "UPDATE user_exports SET status = 'Downloaded', downloaded_at = now()
              WHERE id = $1 AND user_id = $2 AND status = 'Ready'
             RETURNING (SELECT count(*)::int FROM user_export_chunks WHERE export_id = $1)",
        )
        .bind(export)
        .bind(user)
        .fetch_optional(&self.pool)
        .await?;
        if let Some(chunks) = claimed {
            return Ok(chunks);
        }
        let status: Option<String> =
            sqlx::query_scalar("SELECT status FROM user_exports WHERE id = $1 AND user_id = $2")
                .bind(export)
                .bind(user)
                .fetch_optional(&self.pool)
                .await?;
        Err(status.map_or(ExportError::NotFound, ExportError::NotReady))
    }

    /// Chunk `seq` of `export`; the last one read deletes them all.
    pub async fn chunk(&self, export: i64, seq: i32, last: bool) -> Result<Vec<u8>, sqlx::Error> {
        let data: Vec<u8> = sqlx::query_scalar(
            "SELECT data FROM user_export_chunks WHERE export_id = $1 AND seq = $2",
        )
        .bind(export)
        .bind(seq)
        .fetch_one(&self.pool)
        .await?;
        if last {
            sqlx::query("DELETE FROM user_export_chunks WHERE export_id = $1")
                .bind(export)
                .execute(&self.pool)
                .await?;
        }
        Ok(data)
    }
}

/// `exports.expire-ready`: expires Ready archives not downloaded within `exports.ready_ttl_secs`.
pub struct ExpireExports {
    pub exports: Exports,
}

impl JobHandler for ExpireExports {
    const KIND: &'static str = "exports.expire-ready";
    const QUEUE: Queue = Queue::Maintenance;
    type Payload = serde_json::Value;

    async fn handle(&self, _: serde_json::Value, ctx: JobContext) -> Result<(), JobError> {
        let expired = self
            .exports
            .expire_overdue()
            .await
            .map_err(JobError::retryable)?;
        if expired > 0 {
            tracing::info!(job_id = %ctx.id, expired, "undownloaded exports expired");
        }
        Ok(())
    }
}

fn expire_job() -> crate::jobs::NewJob {
    crate::jobs::NewJob::new(
        Queue::Maintenance,
        ExpireExports::KIND,
        serde_json::json!({}),
    )
}

/// The expiry's schedule: every `exports.expire_every_secs`.
pub fn schedule(every: std::time::Duration) -> crate::jobs::scheduler::Schedule {
    crate::jobs::scheduler::Schedule {
        name: "expire-ready-exports",
        every,
        make: expire_job,
    }
}
