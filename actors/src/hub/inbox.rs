//! What arrives from the broker for this node: room events (to the room registry), resyncs after
//! a reconnect, and node messages — closing sessions, cancelling a chat's work, re-checking a
//! room's members or a user's rooms, and request/reply between nodes (answered here, or matched to its waiter).

use std::sync::Weak;
use std::sync::atomic::Ordering;

use super::node::Node;
use crate::broker::{Inbox, NodeMessage, NodeTarget};
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
            NodeMessage::RecheckUser { user_id } => {
                shared.sessions.recheck_user(user_id);
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
