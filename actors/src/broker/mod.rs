//! The broker: how room events and actor messages travel between nodes.
//!
//! ```text
//! publish ──▶ Broker ──(offset + history + fan-out, one atomic step)──▶ every node's Inbox
//!                                                                          └▶ RoomRegistry ▶ RoomActor ▶ sockets
//! send(node, msg) ──▶ Broker ──▶ that node's Inbox ──▶ SessionRegistry / replies / cancellations
//! ```
//!
//! Two implementations with the same semantics: [`redis::RedisBroker`] (many nodes; events go
//! through a Lua script that assigns the offset, appends to the capped history and publishes)
//! and [`local::LocalBroker`] (one node; the same in process). Room subscriptions are reference
//! counted: the first local member subscribes, the last one's leaving unsubscribes.

pub mod local;
pub mod redis;
mod scripts;

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::event::{Delivery, NewEvent};
use crate::ids::{ChatId, RunId, SessionId, UserId};
use crate::key::RoomKey;

pub use crate::fut::BoxFut;

#[derive(Debug, Clone, thiserror::Error)]
pub enum BrokerError {
    #[error("the broker is unavailable: {0}")]
    Unavailable(String),
    #[error("no such node: {0}")]
    NoSuchNode(u16),
    #[error("no reply within {0:?}")]
    Timeout(Duration),
}

/// A room's position: its epoch (changes when its history is lost, e.g. Redis restarted without
/// persistence) and the offset of its latest event (0 before the first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomHead {
    pub epoch: Arc<str>,
    pub offset: u64,
}

/// Events after an offset, oldest first. `complete` is false when the history no longer holds
/// the first of them (trimmed by count or age).
#[derive(Debug, Clone)]
pub struct History {
    pub head: RoomHead,
    pub events: Vec<Delivery>,
    pub complete: bool,
}

/// Limits of the broker (from `[ws]` in config.toml).
#[derive(Debug, Clone)]
pub struct BrokerSettings {
    pub history_max_events: usize,
    /// Bytes of event text a room's history keeps, at most (the oldest go first).
    pub history_max_bytes: usize,
    pub history_max_age: Duration,
    /// How long a quiet room keeps its offset, epoch and history.
    pub room_state_ttl: Duration,
    /// A presence entry not refreshed for this long is gone (its node died).
    pub presence_ttl: Duration,
}

/// Where a node message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeTarget {
    Node(u16),
    All,
}

/// A message between nodes' actors; JSON on the node channels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum NodeMessage {
    /// Close every socket of a session (revoked).
    #[serde(rename_all = "camelCase")]
    CloseSession {
        session_id: SessionId,
        code: u16,
        reason: String,
    },
    /// Close every socket of a user.
    #[serde(rename_all = "camelCase")]
    CloseUser {
        user_id: UserId,
        code: u16,
        reason: String,
    },
    /// Stop work running for a chat (a bot's answer), wherever it runs.
    #[serde(rename_all = "camelCase")]
    CancelChat {
        chat_id: ChatId,
    },
    /// Who may be in this room changed (a participant removed, the chat made private or
    /// deleted): every connection in it asks again and leaves if it may no longer join.
    /// `room` as `RoomKey`'s text (`chat:123`).
    RecheckRoom {
        room: String,
    },
    /// This user's standing changed (removed from a team, a role lowered): each of their
    /// connections asks again for every room it is in and leaves those it may no longer join.
    #[serde(rename_all = "camelCase")]
    RecheckUser {
        user_id: UserId,
    },
    Request {
        corr: u64,
        from: u16,
        body: NodeRequest,
    },
    Reply {
        corr: u64,
        body: NodeReply,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum NodeRequest {
    /// The node's connection and room counts.
    Stats,
    /// A command for a run this node owns.
    RunCommand {
        run: RunId,
        command: crate::run::RunCommand,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum NodeReply {
    Stats(NodeStats),
    RunCommand { outcome: crate::run::CommandOutcome },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeStats {
    pub node: u16,
    pub connections: usize,
    pub users: usize,
    pub rooms: usize,
}

/// What a node does with what arrives from the broker. Called from the broker's task: must not
/// block (implementations hand off to actors with bounded sends).
pub trait Inbox: Send + Sync + 'static {
    fn deliver(&self, delivery: Delivery);
    /// The broker lost and regained its subscriptions: rooms must look for missed events.
    fn resync(&self);
    fn node_message(&self, message: NodeMessage);
}

pub trait Broker: Send + Sync + 'static {
    fn node_id(&self) -> u16;
    /// Connects and starts handing arrivals to `inbox`. Called once.
    fn start(&self, inbox: Arc<dyn Inbox>) -> BoxFut<'_, Result<(), BrokerError>>;
    /// Gives the event the room's next offset, stores it in the history, and delivers it to every
    /// subscribed node: one atomic step. Returns the room's new head.
    fn publish<'a>(&'a self, event: &'a NewEvent) -> BoxFut<'a, Result<RoomHead, BrokerError>>;
    /// Publishes `events` in order, each as [`Broker::publish`] would (its own atomic step), in
    /// as few round trips as the broker can (Redis: one pipeline). On an error some of them may
    /// already be published; publishing them all again is safe (repeats are dropped by id).
    fn publish_all<'a>(
        &'a self,
        events: &'a [NewEvent],
    ) -> BoxFut<'a, Result<Vec<RoomHead>, BrokerError>> {
        Box::pin(async move {
            let mut heads = Vec::with_capacity(events.len());
            for event in events {
                heads.push(self.publish(event).await?);
            }
            Ok(heads)
        })
    }
    /// Delivers without offset or history (typing).
    fn publish_volatile<'a>(&'a self, event: &'a NewEvent) -> BoxFut<'a, Result<(), BrokerError>>;
    /// Consumes the room's next offset without an event: for an event that could not be
    /// published while it was still within the history window. Members notice the missing
    /// offset (at the next event or when they resume) and are sent a gap notice.
    fn skip<'a>(&'a self, room: &'a RoomKey) -> BoxFut<'a, Result<RoomHead, BrokerError>>;
    /// Reference-counted: the first call for a room subscribes this node. Returns the room's head
    /// as of after the subscription took effect.
    fn subscribe<'a>(&'a self, room: &'a RoomKey) -> BoxFut<'a, Result<RoomHead, BrokerError>>;
    fn unsubscribe<'a>(&'a self, room: &'a RoomKey) -> BoxFut<'a, Result<(), BrokerError>>;
    /// Events after `after`, oldest first.
    fn history<'a>(
        &'a self,
        room: &'a RoomKey,
        after: u64,
    ) -> BoxFut<'a, Result<History, BrokerError>>;
    fn send<'a>(
        &'a self,
        to: NodeTarget,
        message: &'a NodeMessage,
    ) -> BoxFut<'a, Result<(), BrokerError>>;
    /// `user` is (`true`) or is no longer (`false`) in `room` on this node.
    fn set_presence<'a>(
        &'a self,
        room: &'a RoomKey,
        user: UserId,
        present: bool,
    ) -> BoxFut<'a, Result<(), BrokerError>>;
    /// Renews this node's presence entries (called every few seconds).
    fn refresh_presence(
        &self,
        entries: Vec<(RoomKey, UserId)>,
    ) -> BoxFut<'_, Result<(), BrokerError>>;
    /// Users in `room` on any live node.
    fn presence<'a>(&'a self, room: &'a RoomKey) -> BoxFut<'a, Result<Vec<UserId>, BrokerError>>;
    /// Stops background work (reconnect loop).
    fn stop(&self) -> BoxFut<'_, ()>;
    /// Whether room events and node messages can reach this node right now (the pub/sub
    /// connection is up).
    fn is_connected(&self) -> bool;
}

/// A random epoch: 12 base-36 characters.
pub(crate) fn new_epoch() -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::rng();
    (0..12)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
