//! The Redis broker: rooms and node mailboxes shared by every node.
//!
//! - Publishing runs one Lua script (`scripts.rs`): next offset, history append, `PUBLISH` —
//!   once per event id, however often it is retried. A batch (the outbox relay's) is one
//!   pipeline of those scripts: one round trip, each event still its own atomic step.
//! - One pub/sub connection per node carries the room channels this node has members in
//!   (`<prefix>room:<room>`), its own mailbox (`<prefix>node:<id>`) and the broadcast channel
//!   (`<prefix>nodes`). A task reads it and hands each message to the inbox.
//! - Redis pub/sub does not reconnect by itself: when the stream ends (Redis restarted, or the
//!   connection killed), the task reconnects with backoff, subscribes again to every channel
//!   it had, then tells the inbox to resync, so each room fetches what it missed from the
//!   history or reports the gap.
//! - Presence is a sorted set per room of `<node>|<user>` scored by expiry; every node renews its
//!   own entries, so a dead node's entries fall out after `presence_ttl`.
//!
//! Files: `state.rs` (the shared connection state and key names), `subscriber.rs` (the pub/sub
//! connection: connect, read, reconnect, resubscribe, resync; room subscriptions), `publisher.rs`
//! (events through the scripts, one or a pipelined batch; history, skip, node messages),
//! `presence.rs`; the Lua lives in `../scripts.rs`. This file builds the broker and maps the
//! `Broker` trait onto those parts.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use redis::aio::ConnectionManager;
use tokio_util::sync::CancellationToken;

use super::{
    BoxFut, Broker, BrokerError, BrokerSettings, History, Inbox, NodeMessage, NodeTarget, RoomHead,
    scripts,
};
use crate::event::NewEvent;
use crate::ids::UserId;
use crate::key::RoomKey;
use state::{Inner, Subscriptions};

mod presence;
mod publisher;
mod state;
mod subscriber;

pub struct RedisBroker {
    inner: Arc<Inner>,
}

impl RedisBroker {
    /// `client` opens the pub/sub connection; `conn` carries every other command.
    pub fn new(
        node: u16,
        client: redis::Client,
        conn: ConnectionManager,
        prefix: String,
        settings: BrokerSettings,
        connect_timeout: Duration,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                node,
                prefix,
                client,
                conn,
                settings,
                subs: tokio::sync::Mutex::new(Subscriptions {
                    sink: None,
                    rooms: HashMap::new(),
                }),
                inbox: OnceLock::new(),
                stop: CancellationToken::new(),
                publish: scripts::publish(),
                history: scripts::history(),
                skip: scripts::skip(),
                connect_timeout,
                connected: AtomicBool::new(false),
            }),
        }
    }
}

impl Broker for RedisBroker {
    fn node_id(&self) -> u16 {
        self.inner.node
    }

    fn start(&self, inbox: Arc<dyn Inbox>) -> BoxFut<'_, Result<(), BrokerError>> {
        Box::pin(async move {
            let _ = self.inner.inbox.set(inbox);
            let stream = self.inner.connect().await?;
            tokio::spawn(self.inner.clone().run(stream));
            Ok(())
        })
    }

    fn publish<'a>(&'a self, event: &'a NewEvent) -> BoxFut<'a, Result<RoomHead, BrokerError>> {
        Box::pin(self.inner.publish_one(event))
    }

    fn publish_all<'a>(
        &'a self,
        events: &'a [NewEvent],
    ) -> BoxFut<'a, Result<Vec<RoomHead>, BrokerError>> {
        Box::pin(self.inner.publish_batch(events))
    }

    fn publish_volatile<'a>(&'a self, event: &'a NewEvent) -> BoxFut<'a, Result<(), BrokerError>> {
        Box::pin(self.inner.publish_volatile(event))
    }

    fn skip<'a>(&'a self, room: &'a RoomKey) -> BoxFut<'a, Result<RoomHead, BrokerError>> {
        Box::pin(self.inner.skip_room(room))
    }

    fn subscribe<'a>(&'a self, room: &'a RoomKey) -> BoxFut<'a, Result<RoomHead, BrokerError>> {
        Box::pin(self.inner.subscribe_room(room))
    }

    fn unsubscribe<'a>(&'a self, room: &'a RoomKey) -> BoxFut<'a, Result<(), BrokerError>> {
        Box::pin(self.inner.unsubscribe_room(room))
    }

    fn history<'a>(
        &'a self,
        room: &'a RoomKey,
        after: u64,
    ) -> BoxFut<'a, Result<History, BrokerError>> {
        Box::pin(self.inner.history(room, after))
    }

    fn send<'a>(
        &'a self,
        to: NodeTarget,
        message: &'a NodeMessage,
    ) -> BoxFut<'a, Result<(), BrokerError>> {
        Box::pin(self.inner.send_to(to, message))
    }

    fn set_presence<'a>(
        &'a self,
        room: &'a RoomKey,
        user: UserId,
        present: bool,
    ) -> BoxFut<'a, Result<(), BrokerError>> {
        Box::pin(self.inner.set_presence(room, user, present))
    }

    fn refresh_presence(
        &self,
        entries: Vec<(RoomKey, UserId)>,
    ) -> BoxFut<'_, Result<(), BrokerError>> {
        Box::pin(self.inner.refresh_presence(entries))
    }

    fn presence<'a>(&'a self, room: &'a RoomKey) -> BoxFut<'a, Result<Vec<UserId>, BrokerError>> {
        Box::pin(self.inner.presence(room))
    }

    fn stop(&self) -> BoxFut<'_, ()> {
        Box::pin(async move {
            self.inner.stop.cancel();
        })
    }

    fn is_connected(&self) -> bool {
        self.inner.connected.load(Ordering::Acquire)
    }
}
