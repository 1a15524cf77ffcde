//! `Hub`: the actor system of one node as the server sees it. Its API has no types of the actix
//! actor framework (`Addr`, messages, contexts); `connect` takes the `actix_ws` session and stream
//! that the HTTP layer (actix-web) already has.
//!
//! ```text
//! HTTP /ws ──admit + connect──▶ Hub ──▶ SessionActor (per connection)
//! REST / jobs ──publish──▶ Hub ──▶ Broker ──▶ every node's Inbox (HubInbox) ──▶ RoomRegistry
//! auth (revoked) ──close_session──▶ Hub ──▶ Broker (all nodes) ──▶ SessionRegistry ──▶ sockets
//! admin ──request(node, Stats)──▶ Hub ──▶ that node's mailbox ──▶ reply by correlation id
//! ```
//!
//! `Shared` is what every actor holds: the broker, the registries, the limits and the counters.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use actix::prelude::*;
use dashmap::DashMap;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::access::{Authorizer, Caller};
use crate::broker::{
    Broker, BrokerError, Inbox, NodeMessage, NodeReply, NodeRequest, NodeStats, NodeTarget,
    RoomHead,
};
use crate::cancel::Cancellations;
use crate::event::NewEvent;
use crate::key::RoomKey;
use crate::limits::WsLimits;
use crate::protocol::close;
use crate::room::RoomRegistry;
use crate::session::outbound;
use crate::session::{Admission, Refusal, SessionActor, SessionRegistry};

mod inbox;

use inbox::HubInbox;

/// Running totals for metrics.
#[derive(Default, Debug)]
pub struct Counters {
    /// Event frames queued to sockets.
    pub delivered: AtomicU64,
    /// Connections cut off because they did not read.
    pub slow_disconnects: AtomicU64,
    /// Gaps reported to clients.
    pub gaps: AtomicU64,
    /// Events dropped at a full room mailbox (then refetched from the history).
    pub mailbox_drops: AtomicU64,
    pub room_restarts: AtomicU64,
}

pub(crate) struct Shared {
    pub broker: Arc<dyn Broker>,
    pub authorizer: Arc<dyn Authorizer>,
    pub limits: WsLimits,
    pub rooms: RoomRegistry,
    pub sessions: SessionRegistry,
    pub cancellations: Arc<Cancellations>,
    pub counters: Counters,
    /// Users present in rooms on this node (renewed in the broker every `presence_interval`).
    presence: DashMap<RoomKey, HashSet<Arc<str>>>,
    pending: Mutex<HashMap<u64, oneshot::Sender<NodeReply>>>,
    next_corr: AtomicU64,
    next_event: AtomicU64,
    shutting_down: CancellationToken,
}

impl Shared {
    pub(crate) fn next_event_id(&self) -> String {
        format!(
            "{}-{}",
            self.broker.node_id(),
            self.next_event.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// Records a user's arrival in the node's table; the caller writes it to the broker (the
    /// join awaits it, so the join's `online` list includes the user).
    pub(crate) fn presence_joined(&self, room: &RoomKey, user: &Arc<str>) {
        self.presence
            .entry(room.clone())
            .or_default()
            .insert(user.clone());
    }

    pub(crate) fn presence_left(&self, room: &RoomKey, user: &Arc<str>) {
        if let Some(mut users) = self.presence.get_mut(room) {
            users.remove(user);
            let empty = users.is_empty();
            drop(users);
            if empty {
                self.presence.remove_if(room, |_, u| u.is_empty());
            }
        }
        let broker = self.broker.clone();
        let (room, user) = (room.clone(), user.to_string());
        tokio::spawn(async move {
            if let Err(error) = broker.set_presence(&room, &user, false).await {
                tracing::debug!(%error, "presence not updated");
            }
        });
    }

    pub(crate) async fn cancel_chat(&self, chat_id: &str) -> Result<(), BrokerError> {
        self.broker
            .send(
                NodeTarget::All,
                &NodeMessage::CancelChat {
                    chat_id: chat_id.to_owned(),
                },
            )
            .await
    }

    fn stats(&self) -> NodeStats {
        NodeStats {
            node: self.broker.node_id(),
            connections: self.sessions.connections(),
            users: self.sessions.users(),
            rooms: self.rooms.len(),
        }
    }

    fn answer(&self, request: NodeRequest) -> NodeReply {
        match request {
            NodeRequest::Stats => NodeReply::Stats(self.stats()),
        }
    }
}

/// The node's actor system. Cheap to clone.
#[derive(Clone)]
pub struct Hub {
    pub(crate) shared: Arc<Shared>,
}

impl Hub {
    /// Starts the broker and the presence renewal.
    pub async fn start(
        broker: Arc<dyn Broker>,
        authorizer: Arc<dyn Authorizer>,
        limits: WsLimits,
    ) -> Result<Self, BrokerError> {
        let shared = Arc::new(Shared {
            broker: broker.clone(),
            authorizer,
            limits,
            rooms: RoomRegistry::default(),
            sessions: SessionRegistry::default(),
            cancellations: Arc::new(Cancellations::default()),
            counters: Counters::default(),
            presence: DashMap::new(),
            pending: Mutex::new(HashMap::new()),
            next_corr: AtomicU64::new(1),
            next_event: AtomicU64::new(1),
            shutting_down: CancellationToken::new(),
        });
        broker
            .start(Arc::new(HubInbox {
                shared: Arc::downgrade(&shared),
            }))
            .await?;
        tokio::spawn(renew_presence(Arc::downgrade(&shared)));
        Ok(Self { shared })
    }

    pub fn node_id(&self) -> u16 {
        self.shared.broker.node_id()
    }

    pub fn limits(&self) -> &WsLimits {
        &self.shared.limits
    }

    /// Reserves a connection for `user` within the node's and the user's limits.
    pub fn admit(&self, user: &str) -> Result<Admission, Refusal> {
        if self.shared.shutting_down.is_cancelled() {
            return Err(Refusal::ShuttingDown);
        }
        let limits = &self.shared.limits;
        self.shared.sessions.admit(
            user,
            limits.max_connections_per_node,
            limits.max_connections_per_user,
        )
    }

    /// Starts the actor of an accepted WebSocket connection. Call from the request handler that
    /// accepted it (an actix arbiter).
    pub fn connect(
        &self,
        admission: Admission,
        caller: Caller,
        session: actix_ws::Session,
        stream: actix_ws::MessageStream,
    ) {
        let limits = &self.shared.limits;
        let stream = stream
            .max_frame_size(limits.max_frame_bytes)
            .aggregate_continuations()
            .max_continuation_size(limits.max_message_bytes);
        let (out, writer) = outbound::channel(limits.outbound_queue, limits.outbound_queue_bytes);
        let shared = self.shared.clone();
        SessionActor::create(move |ctx| {
            ctx.add_stream(stream);
            SessionActor::new(shared, admission, caller, session, out, writer)
        });
    }

    /// Publishes an event to a room on every node; returns the room's new head.
    pub async fn publish(&self, event: &NewEvent) -> Result<RoomHead, BrokerError> {
        self.shared.broker.publish(event).await
    }

    /// Sends an event to a room's members on every node without an offset or a place in the
    /// history (streamed chunks, typing): lost, not recovered, when a member misses it.
    pub async fn publish_volatile(&self, event: &NewEvent) -> Result<(), BrokerError> {
        self.shared.broker.publish_volatile(event).await
    }

    /// Gives up on one event of `room`: its offset is consumed, so members get a gap notice
    /// instead of silence.
    pub async fn skip(&self, room: &RoomKey) -> Result<RoomHead, BrokerError> {
        self.shared.broker.skip(room).await
    }

    /// Closes every socket of a session on every node.
    pub async fn close_session(&self, session_id: &str, reason: &str) -> Result<(), BrokerError> {
        let message = NodeMessage::CloseSession {
            session_id: session_id.to_owned(),
            code: close::REVOKED,
            reason: reason.to_owned(),
        };
        self.broadcast(message).await
    }

    /// Closes every socket of a user on every node.
    pub async fn close_user(&self, user_id: &str, reason: &str) -> Result<(), BrokerError> {
        let message = NodeMessage::CloseUser {
            user_id: user_id.to_owned(),
            code: close::REVOKED,
            reason: reason.to_owned(),
        };
        self.broadcast(message).await
    }

    /// Every connection in `room`, on every node, asks the authorizer again and leaves the room
    /// (told by a `room/removed` event) if it may no longer join: call after a write that takes
    /// access away (a participant removed, a chat made private or deleted).
    pub async fn recheck_room(&self, room: &RoomKey) -> Result<(), BrokerError> {
        self.broadcast(NodeMessage::RecheckRoom {
            room: room.to_string(),
        })
        .await
    }

    /// Sends to every node; this node handles its own copy at once even when the broker fails,
    /// so local sockets close regardless.
    async fn broadcast(&self, message: NodeMessage) -> Result<(), BrokerError> {
        let inbox = HubInbox {
            shared: Arc::downgrade(&self.shared),
        };
        let result = self.shared.broker.send(NodeTarget::All, &message).await;
        if result.is_err() {
            inbox.node_message(message);
        }
        result
    }

    /// Asks a node (this one or another) and waits for its answer.
    pub async fn request(&self, node: u16, request: NodeRequest) -> Result<NodeReply, BrokerError> {
        if node == self.node_id() {
            return Ok(self.shared.answer(request));
        }
        let corr = self.shared.next_corr.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.shared
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(corr, tx);
        let message = NodeMessage::Request {
            corr,
            from: self.node_id(),
            body: request,
        };
        let timeout = self.shared.limits.node_request_timeout;
        let result = match self
            .shared
            .broker
            .send(NodeTarget::Node(node), &message)
            .await
        {
            Ok(()) => match tokio::time::timeout(timeout, rx).await {
                Ok(Ok(reply)) => Ok(reply),
                _ => Err(BrokerError::Timeout(timeout)),
            },
            Err(error) => Err(error),
        };
        self.shared
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&corr);
        result
    }

    /// Users in a room on any live node.
    pub async fn presence(&self, room: &RoomKey) -> Result<Vec<String>, BrokerError> {
        self.shared.broker.presence(room).await
    }

    pub fn cancellations(&self) -> &Arc<Cancellations> {
        &self.shared.cancellations
    }

    pub fn stats(&self) -> NodeStats {
        self.shared.stats()
    }

    /// Whether the broker can deliver to this node right now.
    pub fn broker_connected(&self) -> bool {
        self.shared.broker.is_connected()
    }

    pub fn counters(&self) -> &Counters {
        &self.shared.counters
    }

    /// Tells every client of this node to reconnect elsewhere (close code 1012), waits up to
    /// `within` for the connections to end, withdraws this node's presence and stops the broker.
    pub async fn shutdown(&self, within: std::time::Duration) {
        let shared = &self.shared;
        shared.shutting_down.cancel();
        shared
            .sessions
            .close_where(|_, _| true, close::RESTART, "server restarting");
        let deadline = tokio::time::Instant::now() + within;
        // Connections end on their own writer tasks; nothing signals "all gone", so poll the
        // count (cheap: one atomic load) until it reaches zero or the grace runs out.
        while shared.sessions.admitted() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let entries: Vec<(RoomKey, String)> = presence_entries(shared);
        for (room, user) in entries {
            let _ = shared.broker.set_presence(&room, &user, false).await;
        }
        shared.broker.stop().await;
    }
}

fn presence_entries(shared: &Shared) -> Vec<(RoomKey, String)> {
    shared
        .presence
        .iter()
        .flat_map(|e| {
            let room = e.key().clone();
            e.value()
                .iter()
                .map(move |u| (room.clone(), u.to_string()))
                .collect::<Vec<_>>()
        })
        .collect()
}

async fn renew_presence(shared: Weak<Shared>) {
    let interval = match shared.upgrade() {
        Some(s) => s.limits.presence_interval,
        None => return,
    };
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        if shared.shutting_down.is_cancelled() {
            return;
        }
        let entries = presence_entries(&shared);
        if let Err(error) = shared.broker.refresh_presence(entries).await {
            tracing::warn!(%error, "could not renew presence");
        }
    }
}
