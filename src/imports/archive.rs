//! The archive an import reads: the shape `crate::exports` writes, read back into typed rows
//! and checked whole (format and version, profile rules, every message's chat in the archive,
//! statuses, lengths) before anything is written.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use crate::domain::{ChatName, MAX_MESSAGE_CHARS};
use crate::notifications::NotificationSettings;
use crate::profile::rules;
use crate::routines::ExportedResource;

/// The `format` an export writes, and the versions of it this server reads.
const FORMAT: &str = "vrooli-user-export";
const VERSIONS: [u32; 1] = [1];
const RUN_STATUSES: [&str; 6] = [
    "Scheduled",
    "InProgress",
    "Paused",
    "Completed",
    "Failed",
    "Cancelled",
];
const MESSAGE_STATUSES: [&str; 3] = ["Sent", "Cancelled", "Failed"];

/// An archive as `crate::exports` writes it (unknown keys are ignored: a newer export may say
/// more than this version reads).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Archive {
    pub(super) format: String,
    pub(super) version: u32,
    #[serde(default)]
    pub(super) profile: Vec<ArchivedProfile>,
    #[serde(default)]
    pub(super) chats: Vec<ArchivedChat>,
    #[serde(default)]
    pub(super) messages: Vec<ArchivedMessage>,
    #[serde(default)]
    pub(super) routines: Vec<ExportedResource>,
    #[serde(default)]
    pub(super) runs: Vec<ArchivedRun>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ArchivedProfile {
    pub(super) id: String,
    pub(super) bio: Option<String>,
    pub(super) theme: Option<String>,
    #[serde(default)]
    pub(super) languages: Vec<String>,
    pub(super) notification_settings: Option<NotificationSettings>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ArchivedChat {
    pub(super) id: String,
    #[serde(default)]
    pub(super) name: String,
    #[serde(default = "yes")]
    pub(super) is_private: bool,
    pub(super) created_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ArchivedMessage {
    pub(super) id: String,
    pub(super) chat_id: String,
    pub(super) user_id: Option<String>,
    pub(super) parent_id: Option<String>,
    #[serde(default)]
    pub(super) version_index: i32,
    pub(super) text: String,
    #[serde(default = "sent")]
    pub(super) status: String,
    pub(super) created_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ArchivedRun {
    #[serde(default)]
    pub(super) name: String,
    pub(super) status: String,
    pub(super) routine_version_id: Option<String>,
    #[serde(default = "empty_object")]
    pub(super) inputs: Value,
    pub(super) outputs: Option<Value>,
    pub(super) created_at: Option<DateTime<Utc>>,
    pub(super) completed_at: Option<DateTime<Utc>>,
}

fn yes() -> bool {
    true
}

fn sent() -> String {
    "Sent".into()
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

/// Why an archive is refused, naming what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InvalidArchive(pub String);

pub(super) fn invalid(message: impl Into<String>) -> InvalidArchive {
    InvalidArchive(message.into())
}

impl Archive {
    /// Reads and checks a whole archive: nothing is written from one that fails here.
    pub fn parse(bytes: &[u8]) -> Result<Self, InvalidArchive> {
        let archive: Archive = serde_json::from_slice(bytes)
            .map_err(|e| invalid(format!("not an archive of this server: {e}")))?;
        if archive.format != FORMAT || !VERSIONS.contains(&archive.version) {
            return Err(invalid(format!(
                "format {:?} version {} is not one this server reads ({FORMAT:?} version 1)",
                archive.format, archive.version
            )));
        }
        if archive.profile.len() > 1 {
            return Err(invalid("an archive holds one profile"));
        }
        if let Some(profile) = archive.profile.first() {
            if let Some(bio) = &profile.bio {
                rules::check_bio(bio).map_err(invalid)?;
            }
            if let Some(theme) = &profile.theme {
                rules::check_theme(theme).map_err(invalid)?;
            }
            rules::check_languages(&profile.languages).map_err(invalid)?;
        }
        let mut chats = std::collections::HashSet::new();
        for chat in &archive.chats {
            ChatName::parse(&chat.name).map_err(|e| invalid(format!("chat {}: {e}", chat.id)))?;
            if !chats.insert(chat.id.as_str()) {
                return Err(invalid(format!("chat {} appears twice", chat.id)));
            }
        }
        let mut messages = std::collections::HashSet::new();
        for message in &archive.messages {
            let id = &message.id;
            if !chats.contains(message.chat_id.as_str()) {
                return Err(invalid(format!(
                    "message {id} is in chat {}, which the archive does not hold",
                    message.chat_id
                )));
            }
            if message.text.chars().count() > MAX_MESSAGE_CHARS {
                return Err(invalid(format!(
                    "message {id}: a message is at most {MAX_MESSAGE_CHARS} characters"
                )));
            }
            if !MESSAGE_STATUSES.contains(&message.status.as_str()) {
                return Err(invalid(format!(
                    "message {id}: no status {:?}",
                    message.status
                )));
            }
            if !messages.insert(id.as_str()) {
                return Err(invalid(format!("message {id} appears twice")));
            }
        }
        for run in &archive.runs {
            if !RUN_STATUSES.contains(&run.status.as_str()) {
                return Err(invalid(format!("a run has no status {:?}", run.status)));
            }
            if ChatName::parse(&run.name).is_err() {
                return Err(invalid("a run's name is at most 128 characters"));
            }
        }
        Ok(archive)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_archive_is_checked_whole_before_anything_is_written() {
        let good = br#"{"format":"vrooli-user-export","version":1,"profile":[{"id":"1"}],
            "chats":[{"id":"5","name":"a"}],
            "messages":[{"id":"7","chatId":"5","userId":"1","text":"hi"}],"runs":[]}"#;
        assert!(Archive::parse(good).is_ok());
        let cases: [(&[u8], &str); 5] = [
            (b"[]", "not an archive"),
            (br#"{"format":"other","version":1}"#, "is not one this server reads"),
            (
                br#"{"format":"vrooli-user-export","version":1,"messages":[{"id":"7","chatId":"9","text":"x"}]}"#,
                "which the archive does not hold",
            ),
            (
                br#"{"format":"vrooli-user-export","version":1,"runs":[{"status":"Flying"}]}"#,
                "no status",
            ),
            (
                br#"{"format":"vrooli-user-export","version":1,"profile":[{"id":"1","theme":"a b"}]}"#,
                "theme",
            ),
        ];
        for (bytes, says) in cases {
            let error = Archive::parse(bytes).unwrap_err().to_string();
            assert!(error.contains(says), "{error:?} should say {says:?}");
        }
    }
}
