//! `RoomRegistry`: the room actors of this node, by room. Creates a room's actor (supervised) on
//! its first join, routes the broker's deliveries to it with a bounded send, and forgets it when
//! it stops. A room that is stopping refuses joins with `Closing`; the registry then starts a
//! fresh actor, so a join never lands in a room that is going away.
//!
//! Each room actor gets [`RoomDeps`] (what a room uses: the broker, its limits, the counters,
//! presence, event ids; `deps.rs`) and a [`Directory`] handle to take itself out of the registry
//! when it stops — not the hub. The actor defines the directory (`actor.rs`), so the arrows point
//! one way: registry → actor → member, deps.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actix::prelude::*;
use dashmap::DashMap;
use serde_json::Value;

use super::actor::{Deliver, Directory, LeaveRoom, Resync, RoomActor, RoomHandle, Rooms, Typing};
use super::deps::RoomDeps;
use super::member::{JoinError, JoinRoom};
use crate::event::Delivery;
use crate::ids::UserId;
use crate::key::RoomKey;
use crate::outbound::{ConnId, Outbound};
use crate::protocol::Resume;

pub struct RoomRegistry {
    rooms: Arc<Rooms>,
    deps: Arc<RoomDeps>,
}

impl RoomRegistry {
    pub(crate) fn new(deps: RoomDeps) -> Self {
        Self {
            rooms: Arc::new(DashMap::new()),
            deps: Arc::new(deps),
        }
    }

    fn addr_or_start(&self, room: &RoomKey) -> Addr<RoomActor> {
        self.rooms
            .entry(room.clone())
            .or_insert_with(|| {
                let resync_queued = Arc::new(AtomicBool::new(false));
                let (key, deps, flag) = (room.clone(), self.deps.clone(), resync_queued.clone());
                let directory = Directory::new(&self.rooms);
                let addr = Supervisor::start(move |_| RoomActor::new(key, deps, directory, flag));
                RoomHandle {
                    addr,
                    resync_queued,
                }
            })
            .addr
            .clone()
    }

    /// Adds a connection to a room, starting the room's actor if needed. Must run on an actix
    /// arbiter (a connection's context). Returns once the room holds the member; the room then
    /// writes the join's ack, the missed events and the live ones, in that order.
    pub(crate) async fn join(
        &self,
        room: &RoomKey,
        conn: ConnId,
        user: UserId,
        out: Outbound,
        ack: Value,
        resume: Option<Resume>,
    ) -> Result<(), JoinError> {
        let join = JoinRoom {
            conn,
            user,
            out,
            ack,
            resume,
        };
        for _ in 0..3 {
            let addr = self.addr_or_start(room);
            // A room answers at once unless it is subscribing; the timeout only guards a
            // caller against a room that can no longer answer.
            match addr
                .send(join.clone())
                .timeout(Duration::from_secs(10))
                .await
            {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(JoinError::Unavailable)) => return Err(JoinError::Unavailable),
                Ok(Err(JoinError::Closing)) | Err(_) => {
                    self.rooms.remove_if(room, |_, h| h.addr == addr);
                }
            }
        }
        Err(JoinError::Unavailable)
    }

    pub(crate) fn leave(&self, room: &RoomKey, conn: ConnId) {
        if let Some(handle) = self.rooms.get(room) {
            handle.addr.do_send(LeaveRoom { conn });
        }
    }

    /// A typing indicator: dropped when the room's mailbox is full (it is renewed within
    /// `typing_ttl` anyway), so a flood of typing cannot grow the mailbox past its bound.
    pub(crate) fn typing(&self, room: &RoomKey, user: UserId, typing: bool) {
        if let Some(handle) = self.rooms.get(room) {
            let _ = handle.addr.try_send(Typing { user, typing });
        }
    }

    /// Hands an event to its room's actor without waiting. A full mailbox drops the event and
    /// queues one `Resync`, which refetches it from the history in order.
    pub(crate) fn deliver(&self, delivery: Delivery) -> bool {
        let Some(handle) = self.rooms.get(&delivery.room) else {
            return true;
        };
        match handle.addr.try_send(Deliver(delivery)) {
            Ok(()) => true,
            Err(SendError::Full(_)) => {
                if !handle.resync_queued.swap(true, Ordering::AcqRel) {
                    handle.addr.do_send(Resync);
                }
                false
            }
            Err(SendError::Closed(_)) => true,
        }
    }

    pub(crate) fn resync_all(&self) {
        for handle in self.rooms.iter() {
            if !handle.resync_queued.swap(true, Ordering::AcqRel) {
                handle.addr.do_send(Resync);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.rooms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rooms.is_empty()
    }

    #[cfg(test)]
    pub(crate) fn addr(&self, room: &RoomKey) -> Option<Addr<RoomActor>> {
        self.rooms.get(room).map(|h| h.addr.clone())
    }
}
