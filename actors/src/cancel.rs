//! Cancellation of work running for a chat (a bot's answer), on whichever node runs it.
//! `requestCancellation` broadcasts `CancelChat` to every node; each node cancels the tokens
//! registered here for that chat. Work registers with [`Cancellations::register`] and keeps the
//! guard while it runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;
use tokio_util::sync::CancellationToken;

use crate::ids::ChatId;

#[derive(Default)]
pub struct Cancellations {
    running: DashMap<ChatId, Vec<(u64, CancellationToken)>>,
    next: AtomicU64,
}

/// Held by running work; dropping it unregisters.
pub struct CancelGuard {
    owner: Arc<Cancellations>,
    chat_id: ChatId,
    id: u64,
    pub token: CancellationToken,
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        if let Some(mut entry) = self.owner.running.get_mut(&self.chat_id) {
            entry.retain(|(id, _)| *id != self.id);
            let empty = entry.is_empty();
            drop(entry);
            if empty {
                self.owner
                    .running
                    .remove_if(&self.chat_id, |_, v| v.is_empty());
            }
        }
    }
}

impl Cancellations {
    pub fn register(self: &Arc<Self>, chat_id: ChatId) -> CancelGuard {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let token = CancellationToken::new();
        self.running
            .entry(chat_id)
            .or_default()
            .push((id, token.clone()));
        CancelGuard {
            owner: self.clone(),
            chat_id,
            id,
            token,
        }
    }

    /// Cancels everything running for the chat on this node; returns how many.
    pub fn cancel(&self, chat_id: ChatId) -> usize {
        self.running
            .get(&chat_id)
            .map(|e| {
                e.iter().for_each(|(_, t)| t.cancel());
                e.len()
            })
            .unwrap_or(0)
    }
}
