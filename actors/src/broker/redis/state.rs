//! What every part of the Redis broker shares: the connection state (`Inner`, behind the
//! broker's `Arc`), the room subscriptions the pub/sub connection carries, and the names of
//! every key and channel. A leaf: the other files add methods to `Inner`.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use redis::aio::{ConnectionManager, PubSubSink};
use tokio_util::sync::CancellationToken;

use crate::broker::{BrokerError, BrokerSettings, Inbox};
use crate::key::RoomKey;

pub(super) struct Subscriptions {
    /// `None` while disconnected; the reconnect subscribes to everything in `rooms`.
    pub(super) sink: Option<PubSubSink>,
    pub(super) rooms: HashMap<RoomKey, usize>,
}

pub(super) struct Inner {
    pub(super) node: u16,
    pub(super) prefix: String,
    pub(super) client: redis::Client,
    pub(super) conn: ConnectionManager,
    pub(super) settings: BrokerSettings,
    pub(super) subs: tokio::sync::Mutex<Subscriptions>,
    pub(super) inbox: OnceLock<Arc<dyn Inbox>>,
    pub(super) stop: CancellationToken,
    pub(super) publish: redis::Script,
    pub(super) history: redis::Script,
    pub(super) skip: redis::Script,
    pub(super) connect_timeout: Duration,
    pub(super) connected: AtomicBool,
}

pub(super) fn unavailable(error: impl std::fmt::Display) -> BrokerError {
    BrokerError::Unavailable(error.to_string())
}

impl Inner {
    pub(super) fn room_keys(&self, room: &RoomKey) -> [String; 3] {
        let base = format!("{}room:{room}", self.prefix);
        [
            format!("{base}:offset"),
            format!("{base}:epoch"),
            format!("{base}:history"),
        ]
    }
    pub(super) fn ids_key(&self, room: &RoomKey) -> String {
        format!("{}room:{room}:ids", self.prefix)
    }
    pub(super) fn bytes_key(&self, room: &RoomKey) -> String {
        format!("{}room:{room}:bytes", self.prefix)
    }
    pub(super) fn room_channel(&self, room: &RoomKey) -> String {
        format!("{}room:{room}", self.prefix)
    }
    pub(super) fn node_channel(&self, node: u16) -> String {
        format!("{}node:{node}", self.prefix)
    }
    pub(super) fn all_channel(&self) -> String {
        format!("{}nodes", self.prefix)
    }
    pub(super) fn presence_key(&self, room: &RoomKey) -> String {
        format!("{}presence:{room}", self.prefix)
    }
    pub(super) fn ttl_ms(&self) -> u64 {
        self.settings.room_state_ttl.as_millis().max(1) as u64
    }
}
