//! `files.delete-orphans`, hourly: deletes the objects, then the rows, of
//! - uploads left `Uploading` for an hour (their node died, or storing failed and so did the
//!   clean-up);
//! - profile and banner images no profile names, `storage.orphan_after_hours` after upload
//!   (replaced, or never used);
//! - attachments whose chat is gone.
//!
//! Every node may run it at once: deleting an object or a row twice is harmless.

use std::time::Duration;

use super::FileService;
use crate::ids::FileId;
use crate::jobs::scheduler::Schedule;
use crate::jobs::{JobContext, JobError, JobHandler, NewJob, Queue};

/// A file to delete: its id, extension and variant sizes (its objects' keys).
type Orphan = (FileId, String, sqlx::types::Json<Vec<(u32, u32)>>);

/// Files one pass looks at.
const BATCH: i64 = 500;

impl FileService {
    /// Deletes one batch of orphans; how many.
    pub async fn delete_orphans(&self) -> Result<u64, sqlx::Error> {
        let orphans: Vec<Orphan> = sqlx::query_as(
            "SELECT f.id, f.extension, f.variants FROM files f
              WHERE (f.status = 'Uploading' AND f.created_at < now() - interval '1 hour')
                 OR (f.status = 'Ready' AND f.purpose IN ('profile', 'banner')
                     AND f.created_at < now() - make_interval(hours => $1)
                     AND NOT EXISTS (SELECT 1 FROM users u
                                      WHERE u.profile_image_id = f.id OR u.banner_image_id = f.id))
                 OR (f.purpose = 'attachment' AND f.chat_id IS NULL)
              ORDER BY f.id LIMIT $2",
        )
        .bind(self.orphan_after_hours() as i32)
        .bind(BATCH)
        .fetch_all(self.pool())
        .await?;
        let mut deleted = 0;
        for (id, extension, sizes) in orphans {
            if self.remove(id, &extension, &sizes.0).await {
                deleted += 1;
            }
        }
        Ok(deleted)
    }
}

pub struct DeleteOrphans {
    pub files: FileService,
}

impl JobHandler for DeleteOrphans {
    const KIND: &'static str = "files.delete-orphans";
    const QUEUE: Queue = Queue::Maintenance;
    type Payload = serde_json::Value;

    async fn handle(&self, _: serde_json::Value, ctx: JobContext) -> Result<(), JobError> {
        let deleted = self
            .files
            .delete_orphans()
            .await
            .map_err(JobError::retryable)?;
        if deleted > 0 {
            tracing::info!(job_id = %ctx.id, deleted, "orphaned files deleted");
        }
        Ok(())
    }
}

fn orphans_job() -> NewJob {
    NewJob::new(
        Queue::Maintenance,
        DeleteOrphans::KIND,
        serde_json::json!({}),
    )
}

pub fn schedule() -> Schedule {
    Schedule {
        name: "delete-orphan-files",
        every: Duration::from_secs(3600),
        make: orphans_job,
    }
}
