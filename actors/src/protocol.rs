//! The client side of the WebSocket protocol (see `docs/PROTOCOL.md`).
//!
//! Every text frame from a client is parsed here once into a typed [`Command`]; anything that is
//! not one becomes a [`ProtocolError`] that the session answers with an error ack. Nothing in
//! this module panics on input. Acks and the server's notices are built here too, so their shape
//! lives in one place.

use bytestring::ByteString;
use serde::Deserialize;
use serde_json::{Value, json};

use vrooli_codes::Code;

use crate::key::{RoomKey, RoomKind};

/// Where a reconnecting client left off in a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resume {
    pub offset: u64,
    pub epoch: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Join {
        room: RoomKey,
        resume: Option<Resume>,
    },
    Leave {
        room: RoomKey,
    },
    /// Stop a bot's answer in a chat.
    RequestCancellation {
        room: RoomKey,
    },
    Typing {
        room: RoomKey,
        typing: bool,
    },
}

/// Why a frame is not a command; `code` is the stable error code sent in the ack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError {
    pub code: Code,
    pub message: String,
}

impl ProtocolError {
    fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// A parsed frame: the client's id (echoed in the ack; `null` when there was none) and the
/// command or why it is not one.
#[derive(Debug)]
pub struct Envelope {
    pub id: Value,
    pub command: Result<Command, ProtocolError>,
}

#[derive(Deserialize)]
struct RawFrame {
    #[serde(default)]
    id: Value,
    cmd: Option<String>,
    #[serde(default)]
    data: Value,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawData {
    chat_id: Option<IdText>,
    run_id: Option<IdText>,
    user_id: Option<IdText>,
    offset: Option<u64>,
    epoch: Option<String>,
    is_typing: Option<bool>,
}

/// Ids arrive as strings (the API's convention for 64-bit ids); numbers are accepted too.
#[derive(Deserialize)]
#[serde(untagged)]
enum IdText {
    Text(String),
    Number(u64),
}

impl IdText {
    fn into_string(self) -> String {
        match self {
            IdText::Text(s) => s,
            IdText::Number(n) => n.to_string(),
        }
    }
}

/// Parses one text frame.
pub fn parse(text: &str) -> Envelope {
    let raw: RawFrame = match serde_json::from_str(text) {
        Ok(raw) => raw,
        Err(_) => {
            return Envelope {
                id: Value::Null,
                command: Err(ProtocolError::new(
                    Code::InvalidJson,
                    "A command is a JSON object {id, cmd, data}",
                )),
            };
        }
    };
    let id = match raw.id {
        Value::String(_) | Value::Number(_) => raw.id,
        _ => {
            return Envelope {
                id: Value::Null,
                command: Err(ProtocolError::new(
                    Code::MissingId,
                    "A command needs an id (string or number)",
                )),
            };
        }
    };
    let command = command(raw.cmd.as_deref().unwrap_or(""), raw.data);
    Envelope { id, command }
}

fn command(cmd: &str, data: Value) -> Result<Command, ProtocolError> {
    let data: RawData = match data {
        Value::Null => RawData::default(),
        data => serde_json::from_value(data)
            .map_err(|e| ProtocolError::new(Code::InvalidData, format!("Invalid data: {e}")))?,
    };
    let room = |kind: RoomKind, id: Option<IdText>, field: &str| {
        let id =
            id.ok_or_else(|| ProtocolError::new(Code::InvalidData, format!("{field} is missing")))?;
        RoomKey::new(kind, &id.into_string()).ok_or_else(|| {
            ProtocolError::new(Code::InvalidData, format!("{field} is not a valid id"))
        })
    };
    let resume = |data: &RawData| match (data.offset, &data.epoch) {
        (Some(offset), Some(epoch)) => Ok(Some(Resume {
            offset,
            epoch: epoch.clone(),
        })),
        (None, None) => Ok(None),
        _ => Err(ProtocolError::new(
            Code::InvalidData,
            "offset and epoch go together",
        )),
    };
    Ok(match cmd {
        "joinChatRoom" => Command::Join {
            resume: resume(&data)?,
            room: room(RoomKind::Chat, data.chat_id, "chatId")?,
        },
        "joinRunRoom" => Command::Join {
            resume: resume(&data)?,
            room: room(RoomKind::Run, data.run_id, "runId")?,
        },
        "joinUserRoom" => Command::Join {
            resume: resume(&data)?,
            room: room(RoomKind::User, data.user_id, "userId")?,
        },
        "leaveChatRoom" => Command::Leave {
            room: room(RoomKind::Chat, data.chat_id, "chatId")?,
        },
        "leaveRunRoom" => Command::Leave {
            room: room(RoomKind::Run, data.run_id, "runId")?,
        },
        "leaveUserRoom" => Command::Leave {
            room: room(RoomKind::User, data.user_id, "userId")?,
        },
        "requestCancellation" => Command::RequestCancellation {
            room: room(RoomKind::Chat, data.chat_id, "chatId")?,
        },
        "typing" => Command::Typing {
            typing: data.is_typing.unwrap_or(true),
            room: room(RoomKind::Chat, data.chat_id, "chatId")?,
        },
        "" => return Err(ProtocolError::new(Code::MissingCommand, "cmd is missing")),
        other => {
            return Err(ProtocolError::new(
                Code::UnknownCommand,
                format!("Unknown command {:?}", truncate(other, 64)),
            ));
        }
    })
}

fn truncate(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}

/// `{"ack": id, "success": true, "data"?: …}`
pub fn ack_ok(id: &Value, data: Option<Value>) -> ByteString {
    let mut ack = json!({"ack": id, "success": true});
    if let Some(data) = data {
        ack["data"] = data;
    }
    ack.to_string().into()
}

/// `{"ack": id, "success": false, "error": {"code", "message"}}`
pub fn ack_err(id: &Value, code: Code, message: &str) -> ByteString {
    json!({"ack": id, "success": false, "error": {"code": code.as_str(), "message": message}})
        .to_string()
        .into()
}

/// A server notice that a room's events from `from` to `to` (inclusive) cannot be delivered:
/// the client should refetch over REST.
pub fn gap_notice(
    room: &RoomKey,
    epoch: &str,
    from: u64,
    to: Option<u64>,
    now_ms: i64,
) -> ByteString {
    json!({
        "id": format!("gap-{room}-{from}"),
        "type": "room/gap",
        "timestamp": now_ms,
        "room": room.to_string(),
        "offset": null,
        "data": {"recovered": false, "epoch": epoch, "from": from, "to": to},
    })
    .to_string()
    .into()
}

/// The ack data of a successful join (built by the room).
pub fn join_ack_data(
    room: &RoomKey,
    epoch: &str,
    offset: u64,
    recovered: Option<bool>,
    online: &[crate::ids::UserId],
) -> Value {
    let mut data =
        json!({"room": room.to_string(), "epoch": epoch, "offset": offset, "online": online});
    if let Some(recovered) = recovered {
        data["recovered"] = recovered.into();
    }
    data
}

/// A server notice that this connection was taken out of a room: the caller may no longer be in
/// it (removed from the chat, the chat made private or deleted). No more of its events follow.
pub fn removed_notice(room: &RoomKey, now_ms: i64) -> ByteString {
    json!({
        "id": format!("removed-{room}-{now_ms}"),
        "type": "room/removed",
        "timestamp": now_ms,
        "room": room.to_string(),
        "offset": null,
        "data": {"reason": "AccessRevoked"},
    })
    .to_string()
    .into()
}

/// Close codes sent to clients (also in `docs/PROTOCOL.md`).
pub mod close {
    /// The node is restarting or shutting down: reconnect (to any node).
    pub const RESTART: u16 = 1012;
    /// A frame or message over the size limit.
    pub const TOO_BIG: u16 = 1009;
    /// Binary frames are not part of the protocol.
    pub const UNSUPPORTED: u16 = 1003;
    /// No pong within the heartbeat timeout.
    pub const TIMEOUT: u16 = 4000;
    /// The session was revoked (logout, password change, admin lock) or expired.
    pub const REVOKED: u16 = 4001;
    /// Commands far past the connection's rate limit.
    pub const POLICY: u16 = 1008;
    /// The client did not read its events fast enough; its queue filled up.
    pub const TOO_SLOW: u16 = 4008;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_to_typed_values() {
        let e = parse(r#"{"id":"1","cmd":"joinChatRoom","data":{"chatId":"12"}}"#);
        assert_eq!(e.id, json!("1"));
        assert_eq!(
            e.command.unwrap(),
            Command::Join {
                room: RoomKey::chat("12").unwrap(),
                resume: None
            }
        );
        let e =
            parse(r#"{"id":2,"cmd":"joinRunRoom","data":{"runId":"5","offset":3,"epoch":"x"}}"#);
        assert!(matches!(
            e.command,
            Ok(Command::Join {
                resume: Some(_),
                ..
            })
        ));
        let e = parse(r#"{"id":"t","cmd":"typing","data":{"chatId":"1","isTyping":false}}"#);
        assert!(matches!(
            e.command,
            Ok(Command::Typing { typing: false, .. })
        ));
    }

    #[test]
    fn bad_frames_become_error_codes() {
        let code = |text: &str| parse(text).command.unwrap_err().code.as_str();
        assert_eq!(code("not json"), "InvalidJson");
        assert_eq!(code(r#"{"cmd":"joinChatRoom"}"#), "MissingId");
        assert_eq!(code(r#"{"id":"1","cmd":"dance"}"#), "UnknownCommand");
        assert_eq!(code(r#"{"id":"1"}"#), "MissingCommand");
        assert_eq!(
            code(r#"{"id":"1","cmd":"joinChatRoom","data":{}}"#),
            "InvalidData"
        );
        assert_eq!(
            code(r#"{"id":"1","cmd":"joinChatRoom","data":{"chatId":"a:b"}}"#),
            "InvalidData"
        );
        assert_eq!(
            code(r#"{"id":"1","cmd":"joinChatRoom","data":{"chatId":"1","offset":1}}"#),
            "InvalidData"
        );
        assert_eq!(
            code(r#"{"id":"1","cmd":"typing","data":[1]}"#),
            "InvalidData"
        );
    }
}
