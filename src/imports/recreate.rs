//! An archive written: one parsed archive recreated under its importer inside the job's
//! transaction (profile settings, routines with their versions, chats, messages, runs), with the
//! counts of what was made. Nothing here decides when: `ImportUserData` (mod.rs) calls it.

use std::collections::HashMap;

use chrono::Utc;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;

use super::archive::{Archive, InvalidArchive, invalid};
use crate::domain::ChatName;
use crate::ids::{PublicId, Snowflake, UserId};
use crate::routines::RoutineService;

/// What an import recreated.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImportCounts {
    pub routines: usize,
    pub versions: usize,
    pub chats: usize,
    pub messages: usize,
    pub runs: usize,
}

/// Writes one parsed archive for `user` inside `tx`.
pub(super) async fn recreate(
    tx: &mut PgConnection,
    ids: &Snowflake,
    routines: &RoutineService,
    user: UserId,
    archive: Archive,
) -> Result<Result<ImportCounts, InvalidArchive>, sqlx::Error> {
    let mut counts = ImportCounts::default();
    let author = archive.profile.first().map(|p| p.id.clone());
    if let Some(profile) = archive.profile.into_iter().next() {
        sqlx::query(
            "UPDATE users SET bio = COALESCE($2, bio), theme = COALESCE($3, theme),
                    languages = CASE WHEN cardinality($4::TEXT[]) > 0 THEN $4 ELSE languages END,
                    notification_settings = COALESCE($5, notification_settings)
              WHERE id = $1",
        )
        .bind(user)
        .bind(profile.bio.filter(|b| !b.trim().is_empty()))
        .bind(profile.theme.filter(|t| !t.is_empty()))
        .bind(&profile.languages)
        .bind(
            profile
                .notification_settings
                .map(|s| serde_json::to_value(s).unwrap_or_default()),
        )
        .execute(&mut *tx)
        .await?;
    }
    // Routines first: runs name their versions.
    let mut versions: HashMap<String, i64> = HashMap::new();
    if !archive.routines.is_empty() {
        counts.routines = archive.routines.len();
        match routines.import_in(tx, user, archive.routines).await {
            Ok(outcome) => {
                counts.versions = outcome.versions.len();
                versions = outcome
                    .versions
                    .into_iter()
                    .map(|(old, new)| (old, new.0))
                    .collect();
            }
            Err(crate::routines::RoutineError::Sql(e)) => return Err(e),
            Err(e) => return Ok(Err(invalid(format!("routines: {e}")))),
        }
    }
    let mut chats: HashMap<String, i64> = HashMap::new();
    for chat in archive.chats {
        let id = ids.next_id();
        let name = ChatName::parse(&chat.name).unwrap_or_default();
        sqlx::query(
            "INSERT INTO chats (id, public_id, creator_id, name, is_private, created_at)
             VALUES ($1, $2, $3, $4, $5, COALESCE($6, now()))",
        )
        .bind(id)
        .bind(PublicId::generate().as_str())
        .bind(user)
        .bind(name.as_str())
        .bind(chat.is_private)
        .bind(chat.created_at)
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO chat_participants (id, chat_id, user_id) VALUES ($1, $2, $3)")
            .bind(ids.next_id())
            .bind(id)
            .bind(user)
            .execute(&mut *tx)
            .await?;
        chats.insert(chat.id, id);
        counts.chats += 1;
    }
    // In the order they were written, so a parent is always written before its replies and
    // the new ids keep the old order.
    let mut messages = archive.messages;
    messages.sort_by_key(|m| (m.id.parse::<i64>().unwrap_or(i64::MAX), m.id.clone()));
    let mut written: HashMap<String, i64> = HashMap::new();
    for message in messages {
        let id = ids.next_id();
        let mine = message.user_id.is_some() && message.user_id == author;
        sqlx::query(
            "INSERT INTO chat_messages
                (id, chat_id, user_id, parent_id, version_index, text, status, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, COALESCE($8, now()))",
        )
        .bind(id)
        .bind(chats[&message.chat_id])
        .bind(mine.then_some(user))
        .bind(message.parent_id.and_then(|p| written.get(&p).copied()))
        .bind(message.version_index.max(0))
        .bind(&message.text)
        .bind(&message.status)
        .bind(message.created_at)
        .execute(&mut *tx)
        .await?;
        written.insert(message.id, id);
        counts.messages += 1;
    }
    for run in archive.runs {
        let ended = matches!(run.status.as_str(), "Completed" | "Failed" | "Cancelled");
        sqlx::query(
            "INSERT INTO runs (id, public_id, user_id, name, status, status_reason,
                               resource_version_id, inputs, outputs, created_at, completed_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, COALESCE($10, now()), $11)",
        )
        .bind(ids.next_id())
        .bind(PublicId::generate().as_str())
        .bind(user)
        .bind(ChatName::parse(&run.name).unwrap_or_default().as_str())
        .bind(if ended {
            run.status.as_str()
        } else {
            "Cancelled"
        })
        .bind((!ended).then(|| format!("Imported while {}", run.status)))
        .bind(
            run.routine_version_id
                .and_then(|v| versions.get(&v).copied()),
        )
        .bind(&run.inputs)
        .bind(&run.outputs)
        .bind(run.created_at)
        .bind(if ended {
            run.completed_at
        } else {
            Some(Utc::now())
        })
        .execute(&mut *tx)
        .await?;
        counts.runs += 1;
    }
    Ok(Ok(counts))
}
