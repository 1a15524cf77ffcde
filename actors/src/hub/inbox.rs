//! What arrives from the broker for this node: room events (to the room registry), resyncs after
//! a reconnect, and node messages — closing sessions, cancelling a chat's work, re-checking a
//! room's members, and request/reply between nodes (answered here, or matched to its waiter).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, Weak};

use tokio::sync::oneshot;

use super::Node;
use crate::broker::{Inbox, NodeMessage, NodeReply, NodeTarget};
use crate::event::Delivery;
use crate::key::RoomKey;

/// Where the broker hands what arrives. Holds the hub weakly: the broker must not keep it alive.
pub(super) struct HubInbox {
    pub(super) node: Weak<Node>,
}

impl Inbox for HubInbox {
    fn deliver(&self, delivery: Delivery) {
        if let Some(shared) = self.node.upgrade()
            && !shared.rooms.deliver(delivery)
        {
            shared
                .counters
                .mailbox_drops
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    fn resync(&self) {
        if let Some(shared) = self.node.upgrade() {
            shared.rooms.resync_all();
        }
    }

    fn node_message(&self, message: NodeMessage) {
        let Some(shared) = self.node.upgrade() else {
            return;
        };
        match message {
            NodeMessage::CloseSession {
                session_id,
                code,
                reason,
            } => {
                shared
                    .sessions
                    .close_where(|_, session| session == session_id, code, &reason);
            }
            NodeMessage::CloseUser {
                user_id,
                code,
                reason,
            } => {
                shared
                    .sessions
                    .close_where(|user, _| user == user_id, code, &reason);
            }
            NodeMessage::CancelChat { chat_id } => {
                shared.cancellations.cancel(chat_id);
            }
            NodeMessage::RecheckRoom { room } => {
                if let Some(room) = RoomKey::parse(&room) {
                    shared.sessions.recheck(&room);
                }
            }
            NodeMessage::Request { corr, from, body } => {
                let reply = NodeMessage::Reply {
                    corr,
                    body: shared.answer(body),
                };
                tokio::spawn(async move {
                    if let Err(error) = shared.broker.send(NodeTarget::Node(from), &reply).await {
                        tracing::debug!(%error, "node reply not sent");
                    }
                });
            }
            NodeMessage::Reply { corr, body } => {
                shared.replies.resolve(corr, body);
            }
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

    fn resolve(&self, corr: u64, reply: NodeReply) {
        if let Some(waiter) = self.lock().remove(&corr) {
            let _ = waiter.send(reply);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<NodeReply>>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }
}
