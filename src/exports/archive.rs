//! The `export-user-data` job: one archive written section by section, each streamed from
//! PostgreSQL row by row (`json_build_object`) into `user_export_chunks` of
//! `exports.chunk_bytes`; over `exports.max_bytes` it fails as `TooLarge`, keeping nothing.

use futures_util::TryStreamExt;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

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
    (
        "teams",
        "SELECT json_build_object('teamId', t.id::text, 'handle', t.handle, 'name', t.name,
                'isAdmin', m.is_admin, 'permissions', m.permissions,
                'joinedAt', m.created_at)::text
           FROM members m JOIN teams t ON t.id = m.team_id
          WHERE m.user_id = $1 ORDER BY t.id",
    ),
    (
        // What each key may do and has spent; never the key (only its hash is stored).
        "apiKeys",
        "SELECT json_build_object('id', id::text, 'name', name, 'permissions', permissions,
                'teamId', team_id::text, 'creditsUsed', credits_used::text,
                'limitSoft', limit_soft::text, 'limitHard', limit_hard::text,
                'disabled', disabled_at IS NOT NULL, 'lastUsedAt', last_used_at,
                'createdAt', created_at)::text
           FROM api_keys WHERE user_id = $1 ORDER BY id",
    ),
    (
        // The files' descriptions and where to fetch each (the bytes stay in storage: an
        // archive of JSON would carry them base64, a third larger, within exports.max_bytes).
        "files",
        "SELECT json_build_object('id', id::text, 'purpose', purpose,
                'chatId', chat_id::text, 'contentType', content_type, 'size', size,
                'width', width, 'height', height, 'url', '/api/v2/file/' || id,
                'createdAt', created_at)::text
           FROM files WHERE owner_id = $1 AND status = 'Ready' ORDER BY id",
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
