//! Every frame the server sends, as strict types (`deny_unknown_fields`): the API tests parse
//! each frame they receive with [`ServerFrame::parse`], so a frame that drifts from
//! `docs/PROTOCOL.md` fails a test. Only the tests use them (the server writes its frames in
//! `vrooli_actors::protocol`), so they live here rather than in the actor crate.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An answer to a command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ack {
    /// The command's `id` (`null` when the frame had none or was not JSON).
    pub ack: Value,
    pub success: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<AckError>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AckError {
    pub code: String,
    pub message: String,
}

/// The `data` of a successful join.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Joined {
    pub room: String,
    pub epoch: String,
    pub offset: u64,
    pub online: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovered: Option<bool>,
}

/// A room event (`{"id","type","room","offset","data"}`) or one of the server's notices
/// (`room/gap`, `room/removed`, which also carry a `timestamp` and `offset: null`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    /// Notices only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
    pub room: String,
    /// Absent on volatile events (typing, streamed chunks), `null` on notices.
    #[serde(default)]
    pub offset: Option<u64>,
    /// Never sent on events since the envelope was cut (the join ack and gap notices carry it);
    /// accepted so older recordings still parse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<String>,
    pub data: Value,
}

/// Anything the server sends.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerFrame {
    Ack(Ack),
    Event(Event),
}

impl ServerFrame {
    /// Parses a text frame; an error names what did not fit.
    pub fn parse(text: &str) -> Result<Self, serde_json::Error> {
        let value: Value = serde_json::from_str(text)?;
        if value.get("ack").is_some() {
            let ack: Ack = serde_json::from_value(value)?;
            if ack.success == ack.error.is_some() {
                return Err(serde::de::Error::custom(
                    "an ack has an error exactly when it failed",
                ));
            }
            Ok(ServerFrame::Ack(ack))
        } else {
            Ok(ServerFrame::Event(serde_json::from_value(value)?))
        }
    }
}
