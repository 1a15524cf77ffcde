//! Data export (the original's `export-user-data` queue): a JSON archive of one user's profile,
//! the chats they made with their messages, their routines with every version, their runs, their
//! teams, their API keys (names, permissions and spending, never the keys) and their files
//! (described, with where to fetch each).
//!
//! ```text
//! POST /user/exportData ─▶ one tx: the caller's overdue Ready one expired ─▶ user_exports row
//!     (Pending) + the job; one outstanding per person (a unique index): while one is Pending,
//!     409 ExportInProgress; while one is Ready, that one is answered (no second copy)
//! export-user-data job (archive.rs, any node) ─▶ each section streamed from PostgreSQL row by row
//!     (json_build_object) ─▶ chunks of exports.chunk_bytes into user_export_chunks
//!     ─▶ Ready (or Failed: over exports.max_bytes, nothing kept)
//! GET /user/exportData/{id} (its owner, any node) ─▶ Downloaded (claimed in one UPDATE, so
//!     twice at once serves one) ─▶ the chunks streamed in order, deleted after
//! exports.expire-ready job (every exports.expire_every_secs) ─▶ Ready ones older than
//!     exports.ready_ttl_secs: Expired, chunks deleted (and those a broken-off download left)
//! ```

mod archive;

pub use archive::{ExportPayload, ExportUserData};

use crate::errors::{Code, ErrorCode, Told};
use serde::Serialize;
use sqlx::PgPool;

use crate::ids::UserId;
use crate::jobs::{JobContext, JobError, JobHandler, Queue};

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
