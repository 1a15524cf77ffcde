//! `Hub`: the actor system of one node as the server sees it. Its API has no types of the actix
//! actor framework (`Addr`, messages, contexts); `connect` takes the upgraded TCP socket from the
//! HTTP layer.
//!
//! ```text
//! HTTP /ws ──admit + connect──▶ Hub ──▶ SessionActor (per connection)
//! REST / jobs ──publish──▶ Hub ──▶ Broker ──▶ every node's Inbox (HubInbox) ──▶ RoomRegistry
//! auth (revoked) ──close_session──▶ Hub ──▶ Broker (all nodes) ──▶ SessionRegistry ──▶ sockets
//! admin ──request(node, Stats)──▶ Hub ──▶ that node's mailbox ──▶ reply by correlation id
//! ```
//!
//! The hub owns the node's parts (`Node`). Each actor holds only what it uses: a room its
//! `RoomDeps` (broker, limits, counters, presence), a connection its `SessionDeps` (authorizer,
//! limits, rooms, registry). `node.rs` holds those parts (`Node`) and the requests waiting for a
//! reply; `inbox.rs` is the node mailbox (what the broker hands this node, request/reply between
//! nodes); the presence table and its renewal are `crate::presence`.

use std::sync::Arc;

use actix::prelude::*;
use tokio_util::sync::CancellationToken;

use crate::access::{Authorizer, Caller};
use crate::broker::{
    Broker, BrokerError, Inbox, NodeMessage, NodeReply, NodeRequest, NodeStats, NodeTarget,
    RoomHead,
};
use crate::cancel::Cancellations;
pub use crate::counters::Counters;
use crate::event::{EventIds, NewEvent};
use crate::ids::{RunId, SessionId, UserId};
use crate::inbound::Inbound;
use crate::key::RoomKey;
use crate::limits::WsLimits;
use crate::outbound;
use crate::presence::Presence;
use crate::protocol::close;
use crate::room::RoomDeps;
use crate::room::RoomRegistry;
use crate::run::{CommandOutcome, RunCommand, RunDriver, RunRegistry};
use crate::session::{Admission, Refusal, SessionActor, SessionDeps, SessionRegistry};

mod inbox;
mod node;

use inbox::HubInbox;
use node::{Node, Replies};

/// The node's actor system. Cheap to clone.
#[derive(Clone)]
pub struct Hub {
    pub(crate) node: Arc<Node>,
}

impl Hub {
    /// Starts the broker and the presence renewal.
    pub async fn start(
        broker: Arc<dyn Broker>,
        authorizer: Arc<dyn Authorizer>,
        limits: WsLimits,
    ) -> Result<Self, BrokerError> {
        let counters = Arc::new(Counters::default());
        let presence = Arc::new(Presence::new(broker.clone()));
        let rooms = Arc::new(RoomRegistry::new(RoomDeps {
            broker: broker.clone(),
            mailbox: limits.room_mailbox,
            typing_ttl: limits.typing_ttl,
            join_buffer: limits.outbound_queue,
            counters: counters.clone(),
            presence: presence.clone(),
            ids: Arc::new(EventIds::new(broker.node_id())),
        }));
        let sessions = SessionRegistry::default();
        let session_deps = Arc::new(SessionDeps {
            authorizer,
            limits: limits.clone(),
            rooms: rooms.clone(),
            sessions: sessions.clone(),
            broker: broker.clone(),
        });
        let shutting_down = CancellationToken::new();
        let node = Arc::new(Node {
            broker: broker.clone(),
            rooms,
            sessions,
            session_deps,
            cancellations: Arc::new(Cancellations::default()),
            counters,
            presence: presence.clone(),
            replies: Replies::default(),
            runs: RunRegistry::new(),
            shutting_down: shutting_down.clone(),
            limits,
        });
        broker
            .start(Arc::new(HubInbox {
                node: Arc::downgrade(&node),
            }))
            .await?;
        let every = node.limits.presence_interval;
        tokio::spawn(crate::presence::renew(
            Arc::downgrade(&presence),
            every,
            shutting_down,
        ));
        Ok(Self { node })
    }

    pub fn node_id(&self) -> u16 {
        self.node.broker.node_id()
    }

    pub fn limits(&self) -> &WsLimits {
        &self.node.limits
    }

    /// Reserves a connection for `user` within the node's and the user's limits.
    pub fn admit(&self, user: UserId) -> Result<Admission, Refusal> {
        if self.node.shutting_down.is_cancelled() {
            return Err(Refusal::ShuttingDown);
        }
        let limits = &self.node.limits;
        self.node.sessions.admit(
            user,
            limits.max_connections_per_node,
            limits.max_connections_per_user,
        )
    }

    /// Starts the actor of an accepted WebSocket connection: the socket after the handshake's
    /// response, and any bytes the HTTP layer read past the request. Call on the arbiter that
    /// accepted the socket (its reactor serves the socket).
    pub fn connect(
        &self,
        admission: Admission,
        caller: Caller,
        stream: tokio::net::TcpStream,
        leftover: bytes::BytesMut,
    ) {
        let limits = &self.node.limits;
        // Frames are written as they come (one write per event per member): Nagle's delay
        // would hold the second of two small frames for an ACK.
        let _ = stream.set_nodelay(true);
        let conn = outbound::Conn::new(
            stream,
            outbound::ConnLimits {
                max_frames: limits.outbound_queue,
                max_bytes: limits.outbound_queue_bytes,
                grace: limits.close_grace,
            },
        );
        let inbound = Inbound::new(
            conn.clone(),
            leftover,
            limits.max_frame_bytes,
            limits.max_message_bytes,
        );
        let out = outbound::Outbound::new(conn);
        let deps = self.node.session_deps.clone();
        SessionActor::create(move |ctx| {
            ctx.add_stream(inbound);
            SessionActor::new(deps, admission, caller, out)
        });
    }

    /// Publishes an event to a room on every node; returns the room's new head.
    pub async fn publish(&self, event: &NewEvent) -> Result<RoomHead, BrokerError> {
        self.node.broker.publish(event).await
    }

    /// Publishes events in order (each as [`Hub::publish`] would) in as few broker round trips
    /// as it can; on an error, some may be published already (publishing again is safe).
    pub async fn publish_all(&self, events: &[NewEvent]) -> Result<Vec<RoomHead>, BrokerError> {
        self.node.broker.publish_all(events).await
    }

    /// Sends an event to a room's members on every node without an offset or a place in the
    /// history (streamed chunks, typing): lost, not recovered, when a member misses it.
    pub async fn publish_volatile(&self, event: &NewEvent) -> Result<(), BrokerError> {
        self.node.broker.publish_volatile(event).await
    }

    /// Gives up on one event of `room`: its offset is consumed, so members get a gap notice
    /// instead of silence.
    pub async fn skip(&self, room: &RoomKey) -> Result<RoomHead, BrokerError> {
        self.node.broker.skip(room).await
    }

    /// Closes every socket of a session on every node.
    pub async fn close_session(
        &self,
        session_id: SessionId,
        reason: &str,
    ) -> Result<(), BrokerError> {
        let message = NodeMessage::CloseSession {
            session_id,
            code: close::REVOKED,
            reason: reason.to_owned(),
        };
        self.broadcast(message).await
    }

    /// Closes every socket of a user on every node.
    pub async fn close_user(&self, user_id: UserId, reason: &str) -> Result<(), BrokerError> {
        let message = NodeMessage::CloseUser {
            user_id,
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

    /// Every connection of `user`, on every node, asks the authorizer again for each room it is
    /// in and leaves (told by `room/removed`) those it may no longer join: call after a write
    /// that lowers what the user may read without naming rooms (removed from a team, whose
    /// chats and runs they read through their membership).
    pub async fn recheck_user(&self, user: UserId) -> Result<(), BrokerError> {
        self.broadcast(NodeMessage::RecheckUser { user_id: user })
            .await
    }

    /// Sends to every node; this node handles its own copy at once even when the broker fails,
    /// so local sockets close regardless.
    async fn broadcast(&self, message: NodeMessage) -> Result<(), BrokerError> {
        let inbox = HubInbox {
            node: Arc::downgrade(&self.node),
        };
        let result = self.node.broker.send(NodeTarget::All, &message).await;
        if result.is_err() {
            inbox.node_message(message);
        }
        result
    }

    /// Asks a node (this one or another) and waits for its answer.
    pub async fn request(&self, node: u16, request: NodeRequest) -> Result<NodeReply, BrokerError> {
        if node == self.node_id() {
            return Ok(self.node.answer(request));
        }
        let (corr, rx) = self.node.replies.open();
        let message = NodeMessage::Request {
            corr,
            from: self.node_id(),
            body: request,
        };
        let timeout = self.node.limits.node_request_timeout;
        let result = match self
            .node
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
        self.node.replies.close(corr);
        result
    }

    /// Starts the actor of a run whose lease this node has just claimed; false when one is
    /// already running here. `renew_every` is how often it renews the lease.
    pub fn start_run(
        &self,
        run: RunId,
        driver: Arc<dyn RunDriver>,
        renew_every: std::time::Duration,
    ) -> bool {
        !self.is_shutting_down() && self.node.runs.start(run, driver, renew_every)
    }

    /// True once [`Hub::shutdown`] began: take no new runs or connections.
    pub fn is_shutting_down(&self) -> bool {
        self.node.shutting_down.is_cancelled()
    }

    /// Sends a command to a run's actor on the node that owns it (this one or another): the
    /// same path either way, the answer is the owner's.
    pub async fn command_run(
        &self,
        owner: u16,
        run: RunId,
        command: RunCommand,
    ) -> Result<CommandOutcome, BrokerError> {
        match self
            .request(owner, NodeRequest::RunCommand { run, command })
            .await?
        {
            NodeReply::RunCommand { outcome } => Ok(outcome),
            NodeReply::Stats(_) => Ok(CommandOutcome::NotRunning),
        }
    }

    /// Whether a run's actor is on this node.
    pub fn runs_here(&self) -> usize {
        self.node.runs.len()
    }

    /// Users in a room on any live node.
    pub async fn presence(&self, room: &RoomKey) -> Result<Vec<UserId>, BrokerError> {
        self.node.broker.presence(room).await
    }

    pub fn cancellations(&self) -> &Arc<Cancellations> {
        &self.node.cancellations
    }

    pub fn stats(&self) -> NodeStats {
        self.node.stats()
    }

    /// Whether the broker can deliver to this node right now.
    pub fn broker_connected(&self) -> bool {
        self.node.broker.is_connected()
    }

    pub fn counters(&self) -> &Counters {
        &self.node.counters
    }

    /// Tells every client of this node to reconnect elsewhere (close code 1012), waits up to
    /// `within` for the connections to end, withdraws this node's presence and stops the broker.
    pub async fn shutdown(&self, within: std::time::Duration) {
        let node = &self.node;
        node.shutting_down.cancel();
        // Runs stop without writing; their leases expire and another node continues them.
        node.runs.stop_all();
        node.sessions
            .close_where(|_, _| true, close::RESTART, "server restarting");
        let deadline = tokio::time::Instant::now() + within;
        // Connections end on their own writer tasks; nothing signals "all gone", so poll the
        // count (cheap: one atomic load) until it reaches zero or the grace runs out.
        while node.sessions.admitted() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        node.presence.withdraw().await;
        node.broker.stop().await;
    }
}
