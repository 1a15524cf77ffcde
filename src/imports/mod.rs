//! Data import (the original's `import-user-data` queue): an archive made by a data export
//! (`crate::exports`) recreated under the importer, with new ids.
//!
//! ```text
//! POST /user/importData (the archive as the JSON body, up to exports.import_max_bytes)
//!     ─▶ Archive::parse: the whole archive checked first (422 InvalidArchive naming what)
//!     ─▶ one tx: user_imports row (Pending; one at a time) holding the bytes + the job
//! import-user-data job (any node) ─▶ parsed again ─▶ one tx: profile settings, routines with
//!     their versions (references between them rewritten), chats with the importer as their
//!     creator and participant, messages (parents rewritten), runs as records ─▶ Done with the
//!     counts, the bytes dropped; or nothing at all: Failed with why (an archive refused, or
//!     the job dead: `on_dead`; a Pending import whose job is gone otherwise is failed when
//!     its owner starts the next), so no import stays Pending and blocks the next
//! GET /user/importData/{id} (its owner) ─▶ the status and counts
//! ```
//!
//! What is not recreated: the handle, name and email addresses (they identify an account, and
//! the importer has their own); who else wrote in a chat (their messages keep their text, with
//! no author, as after an account is purged); a run's steps and timeline (a run comes back as a
//! record of what it was given and gave, and one that had not ended comes back `Cancelled`).
//! An archive is held whole in memory while it is checked and written, so its size is bounded
//! by `exports.import_max_bytes`, not streamed as an export is.

use crate::errors::{Code, ErrorCode, Told};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::PgPool;

mod archive;
mod recreate;

use crate::ids::{Snowflake, UserId, UserImportId};
use crate::jobs::{JobContext, JobError, JobHandler, JobStore, Queue};
use crate::routines::RoutineService;
pub use archive::{Archive, InvalidArchive};
pub use recreate::ImportCounts;
use recreate::recreate;

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportPayload {
    pub import_id: String,
}

/// `import-user-data`: recreates one stored archive.
pub struct ImportUserData {
    pub pool: PgPool,
    pub ids: Arc<Snowflake>,
    pub routines: RoutineService,
}

impl JobHandler for ImportUserData {
    const KIND: &'static str = "import-user-data";
    const QUEUE: Queue = Queue::ImportUserData;
    type Payload = ImportPayload;

    async fn handle(&self, p: ImportPayload, _: JobContext) -> Result<(), JobError> {
        let import: i64 = p.import_id.parse().map_err(JobError::permanent)?;
        let mut tx = self.pool.begin().await.map_err(JobError::retryable)?;
        // Locked: a second attempt running at once waits, then finds it done.
        let row: Option<(UserId, Vec<u8>)> = sqlx::query_as(
            "SELECT user_id, archive FROM user_imports
              WHERE id = $1 AND status = 'Pending' AND archive IS NOT NULL FOR UPDATE",
        )
        .bind(import)
        .fetch_optional(&mut *tx)
        .await
        .map_err(JobError::retryable)?;
        let Some((user, bytes)) = row else {
            return Ok(());
        };
        let outcome = match Archive::parse(&bytes) {
            Ok(archive) => recreate(&mut tx, &self.ids, &self.routines, user, archive)
                .await
                .map_err(write_error)?,
            Err(e) => Err(e),
        };
        match outcome {
            Ok(counts) => {
                sqlx::query(
                    "UPDATE user_imports SET status = 'Done', archive = NULL, counts = $2,
                            finished_at = now() WHERE id = $1",
                )
                .bind(import)
                .bind(serde_json::to_value(&counts).map_err(JobError::permanent)?)
                .execute(&mut *tx)
                .await
                .map_err(JobError::retryable)?;
                tx.commit().await.map_err(JobError::retryable)?;
            }
            Err(InvalidArchive(why)) => {
                // Nothing of it is kept: the transaction that wrote part of it is dropped.
                drop(tx);
                sqlx::query(
                    "UPDATE user_imports SET status = 'Failed', archive = NULL, error = $2,
                            finished_at = now() WHERE id = $1 AND status = 'Pending'",
                )
                .bind(import)
                .bind(why)
                .execute(&self.pool)
                .await
                .map_err(JobError::retryable)?;
            }
        }
        Ok(())
    }

    /// Dead (the archive could not be written, or every attempt failed): `Failed`, so the
    /// importer sees why and may import again. The job's own error stays in the job's row and
    /// the log; it may name the server's internals.
    async fn on_dead(&self, p: ImportPayload, reason: &str) {
        let Ok(import) = p.import_id.parse::<i64>() else {
            return;
        };
        tracing::warn!(
            import,
            reason,
            "the import's job died; the import is Failed"
        );
        if let Err(error) = fail_stopped(&self.pool, "id = $1", import).await {
            tracing::error!(import, %error, "could not mark a dead import Failed");
        }
    }
}

/// What an importer reads when the job writing their archive stopped.
const STOPPED: &str = "The archive could not be written (nothing of it was kept); \
                       the server's log says why";

/// Fails the Pending imports matching `filter` (on `$1`) whose job stopped: their bytes dropped,
/// [`STOPPED`] as their error.
async fn fail_stopped(
    db: impl sqlx::PgExecutor<'_>,
    filter: &'static str,
    on: i64,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE user_imports i SET status = 'Failed', archive = NULL, error = $2,
                finished_at = now()
          WHERE {filter} AND status = 'Pending'"
    )))
    .bind(on)
    .bind(STOPPED)
    .execute(db)
    .await?
    .rows_affected())
}

/// A statement PostgreSQL refused for what the archive holds (a data exception, class 22, such
/// as a NUL in text; an integrity constraint, class 23) fails the same way on every attempt, so
/// the job dies at once and the import is `Failed`; anything else (a dropped connection, a
/// deadlock) may pass on the next attempt.
fn write_error(e: sqlx::Error) -> JobError {
    match &e {
        sqlx::Error::Database(db)
            if db
                .code()
                .is_some_and(|c| c.starts_with("22") || c.starts_with("23")) =>
        {
            JobError::permanent(e)
        }
        _ => JobError::retryable(e),
    }
}

/// An import as its owner sees it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserImport {
    pub id: UserImportId,
    /// `Pending`, `Done` or `Failed`.
    pub status: String,
    /// The archive's size.
    pub bytes: i64,
    /// Why it failed (nothing of it was kept).
    pub error: Option<String>,
    /// What was recreated, once `Done`.
    #[schema(value_type = Option<ImportCounts>)]
    pub counts: Option<Value>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("an import is already under way")]
    InProgress,
    #[error("no such import")]
    NotFound,
    #[error(transparent)]
    Invalid(#[from] InvalidArchive),
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
}

impl ErrorCode for ImportError {
    fn told(&self) -> Told {
        match self {
            ImportError::InProgress => Told::of(
                Code::ImportInProgress,
                "An import of yours is already under way",
            ),
            ImportError::NotFound => Told::of(Code::ImportNotFound, "No such import of yours"),
            ImportError::Invalid(why) => Told::of(Code::InvalidArchive, why.0.clone()),
            ImportError::Sql(e) => e.told(),
        }
    }
}

#[derive(Clone)]
pub struct Imports {
    pool: PgPool,
    ids: Arc<Snowflake>,
    jobs: JobStore,
}

const COLUMNS: &str = "id, status, bytes, error, counts, created_at";

impl Imports {
    pub fn new(pool: PgPool, ids: Arc<Snowflake>, jobs: JobStore) -> Self {
        Self { pool, ids, jobs }
    }

    /// Checks `archive` and queues its import for `user` (one at a time).
    pub async fn start(&self, user: UserId, archive: &[u8]) -> Result<UserImport, ImportError> {
        Archive::parse(archive)?;
        let mut tx = self.pool.begin().await?;
        // A Pending import whose job is gone (buried by the rescue sweep after its worker died,
        // cancelled or deleted by an operator: none of which tells the handler) would block
        // every later import: it is failed first. Its job was queued in the same transaction
        // as the import, so a Pending import without a live job has none to come.
        fail_stopped(
            &mut *tx,
            "user_id = $1 AND NOT EXISTS (
                 SELECT 1 FROM jobs j
                  WHERE j.queue = 'import-user-data' AND j.kind = 'import-user-data'
                    AND j.state IN ('available', 'running', 'retrying')
                    AND j.payload->>'importId' = i.id::text)",
            user.0,
        )
        .await?;
        let id = self.ids.next_id();
        let created = sqlx::query_as::<_, UserImport>(sqlx::AssertSqlSafe(format!(
            "INSERT INTO user_imports (id, user_id, bytes, archive) VALUES ($1, $2, $3, $4)
             RETURNING {COLUMNS}"
        )))
        .bind(id)
        .bind(user)
        .bind(archive.len() as i64)
        .bind(archive)
        .fetch_one(&mut *tx)
        .await;
        let import = match created {
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                return Err(ImportError::InProgress);
            }
            other => other?,
        };
        let job = ImportUserData::job(&ImportPayload {
            import_id: id.to_string(),
        })
        .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        self.jobs.enqueue_in(&mut tx, job).await?;
        tx.commit().await?;
        Ok(import)
    }

    /// One of `user`'s imports.
    pub async fn get(&self, user: UserId, import: i64) -> Result<UserImport, ImportError> {
        sqlx::query_as::<_, UserImport>(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM user_imports WHERE id = $1 AND user_id = $2"
        )))
        .bind(import)
        .bind(user)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(ImportError::NotFound)
    }
}
