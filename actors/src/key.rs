//! Room names. A room is a chat, a run or a user; on the wire and in Redis keys it is written
//! `chat:<id>`, `run:<id>` or `user:<id>`. Ids are checked here once (ASCII letters, digits, `-`
//! and `_`, at most 64 bytes) so nothing downstream can be handed a key that escapes its place in
//! a Redis key or channel name.

use std::fmt;
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RoomKind {
    Chat,
    Run,
    User,
}

impl RoomKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RoomKind::Chat => "chat",
            RoomKind::Run => "run",
            RoomKind::User => "user",
        }
    }
}

/// A room: its kind and id. Cheap to clone (the text is shared).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomKey {
    kind: RoomKind,
    id: Arc<str>,
}

pub const MAX_ID_BYTES: usize = 64;

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_BYTES
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl RoomKey {
    /// A room of `kind` with `id`, or `None` when the id is not a valid room id.
    pub fn new(kind: RoomKind, id: &str) -> Option<Self> {
        valid_id(id).then(|| Self {
            kind,
            id: id.into(),
        })
    }

    pub fn chat(id: &str) -> Option<Self> {
        Self::new(RoomKind::Chat, id)
    }
    pub fn run(id: &str) -> Option<Self> {
        Self::new(RoomKind::Run, id)
    }
    pub fn user(id: &str) -> Option<Self> {
        Self::new(RoomKind::User, id)
    }

    /// Parses `chat:<id>`, `run:<id>` or `user:<id>`.
    pub fn parse(text: &str) -> Option<Self> {
        let (kind, id) = text.split_once(':')?;
        let kind = match kind {
            "chat" => RoomKind::Chat,
            "run" => RoomKind::Run,
            "user" => RoomKind::User,
            _ => return None,
        };
        Self::new(kind, id)
    }

    pub fn kind(&self) -> RoomKind {
        self.kind
    }

    pub fn id(&self) -> &str {
        &self.id
    }
}

impl fmt::Display for RoomKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind.as_str(), self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_the_wire_form() {
        let key = RoomKey::parse("chat:123").unwrap();
        assert_eq!(key.kind(), RoomKind::Chat);
        assert_eq!(key.to_string(), "chat:123");
        for bad in ["chat:", "team:1", "chat:a b", "chat:x:y", "user:*", "run"] {
            assert!(RoomKey::parse(bad).is_none(), "{bad}");
        }
        assert!(RoomKey::chat(&"1".repeat(65)).is_none());
    }
}
