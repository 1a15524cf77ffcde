//! Room events: stored as `{"id","type","timestamp","room","offset","epoch","data"}`, sent to
//! clients as `{"id","type","room","offset","data"}`.
//!
//! A publisher builds a [`NewEvent`]; the broker gives it the room's next offset and the room's
//! epoch and turns it into one JSON text, once. That text is what Redis stores in the room's
//! history and what pub/sub carries between nodes (the id de-duplicates publishes, the timestamp
//! ages the history, the epoch tells a node when offsets restarted). Each node cuts it, once per
//! event, into the frame its sockets receive ([`Delivery::parse`]): only what a client needs to
//! place the event, recover after it and recognise it again (the id, the room and the offset;
//! the epoch comes in the join ack and in gap notices). A fan-out to 1,000 sockets shares that one buffer.
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
    #[serde(borrow)]
    id: std::borrow::Cow<'a, str>,
    #[serde(rename = "type", borrow)]
    event_type: std::borrow::Cow<'a, str>,
    room: &'a str,
    timestamp: i64,
    offset: Option<u64>,
    epoch: Option<&'a str>,
}

impl Delivery {
    /// Reads the routing fields of a stored event text (the data is skipped, not built) and
    /// cuts the client's frame from it.
    pub fn parse(text: String) -> Result<Self, serde_json::Error> {
        let head: Head<'_> = serde_json::from_str(&text)?;
        let room =
            RoomKey::parse(head.room).ok_or_else(|| serde::de::Error::custom("invalid room"))?;
        // `data` is the last field, and the fields before it are numbers or strings that cannot
        // hold an unescaped quote: the first `"data":` is the top-level one.
        let data_at = text
            .find("\"data\":")
            .ok_or_else(|| serde::de::Error::custom("no data"))?;
        let tail = &text[data_at..];
        let mut frame = String::with_capacity(tail.len() + head.room.len() + 64);
        frame.push_str("{\"id\":");
        frame.push_str(&serde_json::to_string(&head.id)?);
        frame.push_str(",\"type\":");
        frame.push_str(&serde_json::to_string(&head.event_type)?);
        frame.push_str(",\"room\":\"");
        frame.push_str(head.room);
        frame.push('"');
        if let Some(offset) = head.offset {
            use std::fmt::Write as _;
            let _ = write!(frame, ",\"offset\":{offset}");
        }
        frame.push(',');
        frame.push_str(tail);
        Ok(Self {
            room,
            offset: head.offset,
            epoch: head.epoch.map(Arc::from),
            timestamp_ms: head.timestamp,
            frame: ByteString::from(frame),
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
        // The client's frame: what placing and recovering the event needs, nothing more.
        let frame: serde_json::Value = serde_json::from_str(&delivery.frame).unwrap();
        assert_eq!(
            frame,
            serde_json::json!({"id": "42", "type": "chat/message/added", "room": "chat:7", "offset": 9,
                "data": {"text": "hi \"there\"", "n": 12345678901234567_i64}})
        );

        let volatile = Delivery::parse(event.encode_volatile()).unwrap();
        let frame: serde_json::Value = serde_json::from_str(&volatile.frame).unwrap();
        assert!(frame.get("offset").is_none());
        assert_eq!(volatile.offset, None);
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
