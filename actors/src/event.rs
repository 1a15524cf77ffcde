//! Room events on the wire: `{"id","type","timestamp","room","offset","epoch","data"}`.
//!
//! A publisher builds a [`NewEvent`]; the broker gives it the room's next offset and the room's
//! epoch and turns it into one JSON text, once. That text is what Redis stores in the room's
//! history, what pub/sub carries between nodes and what every WebSocket receives: no node
//! re-serialises an event, and a fan-out to 1,000 sockets shares one buffer.
//!
//! The offset is written into the middle of the text, so the JSON is built in two halves
//! ([`EncodedParts`]) around it; the Redis publish script joins them the same way as
//! [`EncodedParts::assemble`].

use std::sync::Arc;

use bytestring::ByteString;
use serde::Deserialize;

use crate::key::RoomKey;

/// An event to publish to a room.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// Unique id (the server's snowflake, as a string).
    pub id: String,
    /// The original's type name, e.g. `chat/message/added`.
    pub event_type: String,
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    pub room: RoomKey,
    pub data: serde_json::Value,
}

/// The JSON of an event in two halves around its offset and epoch.
#[derive(Debug, Clone)]
pub struct EncodedParts {
    /// `{"id":…,"type":…,"timestamp":…,"room":…,"offset":`
    pub head: String,
    /// `"data":…}`
    pub tail: String,
}

impl EncodedParts {
    /// The whole event; the Redis script concatenates exactly like this.
    pub fn assemble(&self, offset: u64, epoch: &str) -> String {
        format!("{}{offset},\"epoch\":\"{epoch}\",{}", self.head, self.tail)
    }
}

impl NewEvent {
    pub fn encode(&self) -> EncodedParts {
        let string = |s: &str| serde_json::Value::from(s).to_string();
        EncodedParts {
            head: format!(
                "{{\"id\":{},\"type\":{},\"timestamp\":{},\"room\":{},\"offset\":",
                string(&self.id),
                string(&self.event_type),
                self.timestamp_ms,
                string(&self.room.to_string()),
            ),
            tail: format!("\"data\":{}}}", self.data),
        }
    }

    /// A volatile event (typing): no offset, no history, never recovered.
    pub fn encode_volatile(&self) -> String {
        let parts = self.encode();
        format!("{}null,{}", parts.head, parts.tail)
    }
}

/// An event as it reaches a node: the text every socket receives, plus what the room needs to
/// keep order.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub room: RoomKey,
    /// `None` for volatile events.
    pub offset: Option<u64>,
    pub epoch: Option<Arc<str>>,
    pub timestamp_ms: i64,
    pub frame: ByteString,
}

#[derive(Deserialize)]
struct Head<'a> {
    room: &'a str,
    timestamp: i64,
    offset: Option<u64>,
    epoch: Option<&'a str>,
}

impl Delivery {
    /// Reads the routing fields of an event text (the data is skipped, not built).
    pub fn parse(text: String) -> Result<Self, serde_json::Error> {
        let head: Head<'_> = serde_json::from_str(&text)?;
        let room =
            RoomKey::parse(head.room).ok_or_else(|| serde::de::Error::custom("invalid room"))?;
        let offset = head.offset;
        let epoch = head.epoch.map(Arc::from);
        let timestamp_ms = head.timestamp;
        Ok(Self {
            room,
            offset,
            epoch,
            timestamp_ms,
            frame: ByteString::from(text),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assembled_events_are_valid_json_and_parse_back() {
        let event = NewEvent {
            id: "42".into(),
            event_type: "chat/message/added".into(),
            timestamp_ms: 1_700_000_000_000,
            room: RoomKey::chat("7").unwrap(),
            data: serde_json::json!({"text": "hi \"there\"", "n": 12345678901234567_i64}),
        };
        let text = event.encode().assemble(9, "ep1");
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["offset"], 9);
        assert_eq!(value["epoch"], "ep1");
        assert_eq!(value["room"], "chat:7");
        assert_eq!(value["data"]["n"], 12345678901234567_i64);
        let delivery = Delivery::parse(text).unwrap();
        assert_eq!(delivery.offset, Some(9));
        assert_eq!(delivery.epoch.as_deref(), Some("ep1"));

        let volatile: serde_json::Value = serde_json::from_str(&event.encode_volatile()).unwrap();
        assert!(volatile["offset"].is_null());
    }
}

/// Ids for events this node makes itself (typing): `<node>-<counter>`, unique per node run.
#[derive(Debug)]
pub(crate) struct EventIds {
    node: u16,
    next: std::sync::atomic::AtomicU64,
}

impl EventIds {
    pub(crate) fn new(node: u16) -> Self {
        Self {
            node,
            next: std::sync::atomic::AtomicU64::new(1),
        }
    }

    pub(crate) fn next(&self) -> String {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("{}-{n}", self.node)
    }
}
