//! The node's parts, owned by the hub (`Node`), and the requests this node sent to others that
//! wait for a reply (`Replies`). Below the hub's API (`mod.rs`) and its mailbox (`inbox.rs`),
//! which both read them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::broker::{Broker, NodeReply, NodeRequest, NodeStats};
use crate::cancel::Cancellations;
use crate::counters::Counters;
use crate::limits::WsLimits;
use crate::presence::Presence;
use crate::room::RoomRegistry;
use crate::run::RunRegistry;
use crate::session::{SessionDeps, SessionRegistry};

/// The node's parts, owned by the hub. Actors do not hold this: a room holds `RoomDeps`, a
/// connection `SessionDeps`, the broker's inbox a weak reference.
pub(crate) struct Node {
    pub broker: Arc<dyn Broker>,
    pub limits: WsLimits,
    pub rooms: Arc<RoomRegistry>,
    pub sessions: SessionRegistry,
    pub(super) session_deps: Arc<SessionDeps>,
    pub cancellations: Arc<Cancellations>,
    pub counters: Arc<Counters>,
    pub(super) presence: Arc<Presence>,
    pub replies: Replies,
    pub runs: RunRegistry,
    pub(super) shutting_down: CancellationToken,
}

impl Node {
    pub(super) fn stats(&self) -> NodeStats {
        NodeStats {
            node: self.broker.node_id(),
            connections: self.sessions.connections(),
            users: self.sessions.users(),
            rooms: self.rooms.len(),
        }
    }

    pub(crate) fn answer(&self, request: NodeRequest) -> NodeReply {
        match request {
            NodeRequest::Stats => NodeReply::Stats(self.stats()),
            NodeRequest::RunCommand { run, command } => NodeReply::RunCommand {
                outcome: self.runs.command(run, command),
            },
        }
    }
}

/// Requests this node sent to others, waiting for their reply, by correlation id.
pub(crate) struct Replies {
    pending: Mutex<HashMap<u64, oneshot::Sender<NodeReply>>>,
    next: AtomicU64,
}

impl Default for Replies {
    fn default() -> Self {
        Self {
            pending: Mutex::new(HashMap::new()),
            next: AtomicU64::new(1),
        }
    }
}

impl Replies {
    /// A new correlation id and the receiver its reply will arrive on.
    pub(crate) fn open(&self) -> (u64, oneshot::Receiver<NodeReply>) {
        let corr = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.lock().insert(corr, tx);
        (corr, rx)
    }

    /// Forgets a request (answered or timed out).
    pub(crate) fn close(&self, corr: u64) {
        self.lock().remove(&corr);
    }

    pub(super) fn resolve(&self, corr: u64, reply: NodeReply) {
        if let Some(waiter) = self.lock().remove(&corr) {
            let _ = waiter.send(reply);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<NodeReply>>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }
}
