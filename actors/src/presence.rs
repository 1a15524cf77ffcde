//! Presence of this node: which users are in which rooms here. Joins and leaves change the table
//! and the broker's copy; a renewal loop rewrites the broker's copy every `presence_interval`, so
//! the entries of a node that died expire there on their own.

use std::collections::HashSet;
use std::sync::{Arc, Weak};
use std::time::Duration;

use dashmap::DashMap;
use tokio_util::sync::CancellationToken;

use crate::broker::Broker;
use crate::ids::UserId;
use crate::key::RoomKey;

pub(crate) struct Presence {
    broker: Arc<dyn Broker>,
    table: DashMap<RoomKey, HashSet<UserId>>,
}

impl Presence {
    pub(crate) fn new(broker: Arc<dyn Broker>) -> Self {
        Self {
            broker,
            table: DashMap::new(),
        }
    }

    /// Records a user's arrival in the node's table; the caller writes it to the broker (the
    /// join awaits it, so the join's `online` list includes the user).
    pub(crate) fn joined(&self, room: &RoomKey, user: UserId) {
        self.table.entry(room.clone()).or_default().insert(user);
    }

    /// Records a user's departure here and in the broker (in the background).
    pub(crate) fn left(&self, room: &RoomKey, user: UserId) {
        if let Some(mut users) = self.table.get_mut(room) {
            users.remove(&user);
            let empty = users.is_empty();
            drop(users);
            if empty {
                self.table.remove_if(room, |_, u| u.is_empty());
            }
        }
        let broker = self.broker.clone();
        let room = room.clone();
        tokio::spawn(async move {
            if let Err(error) = broker.set_presence(&room, user, false).await {
                tracing::debug!(%error, "presence not updated");
            }
        });
    }

    pub(crate) fn entries(&self) -> Vec<(RoomKey, UserId)> {
        self.table
            .iter()
            .flat_map(|e| {
                let room = e.key().clone();
                e.value()
                    .iter()
                    .map(move |u| (room.clone(), *u))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Withdraws every entry of this node from the broker (shutdown).
    pub(crate) async fn withdraw(&self) {
        for (room, user) in self.entries() {
            let _ = self.broker.set_presence(&room, user, false).await;
        }
    }
}

/// Rewrites the node's entries in the broker until the presence is dropped or the node stops.
pub(crate) async fn renew(presence: Weak<Presence>, every: Duration, stop: CancellationToken) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.cancelled() => return,
        }
        let Some(presence) = presence.upgrade() else {
            return;
        };
        let entries = presence.entries();
        if let Err(error) = presence.broker.refresh_presence(entries).await {
            tracing::warn!(%error, "could not renew presence");
        }
    }
}
