//! `RoomActor`: one per room with members on this node.
//!
//! ```text
//! broker ─▶ RoomRegistry ─try_send─▶ RoomActor ─▶ Order (order.rs) ─▶ Steps ─▶ members' Outbound
//!                                      │ missing? ─▶ broker.history(after head) ─▶ Order again
//! join ─▶ member added at once, "joining": live events buffered for it
//!         └─ spawn: presence + missed events ─▶ ack, missed, buffered ─▶ member live
//! ```
//!
//! What to send and when to give up on a missing event is decided by the pure [`Order`]; this
//! actor does the I/O and carries out its steps. What the history no longer holds reaches the
//! members as a `room/gap` notice (refetch over REST). Each member records the last offset it
//! was sent, so a member that joined with a recovery (and got events from the history) is not
//! sent them twice.
//!
//! A join does not hold up the room: the member is added at once and the events that arrive
//! while its presence and missed events are fetched are buffered for it (at most
//! `RoomDeps::join_buffer`, else it is dropped as slow), then sent after its ack and missed
//! events. Only the subscription at start (`ctx.wait`, before any member) holds up the mailbox.
//!
//! Supervision: the actor runs under `actix::Supervisor`. A panic while handling an event is
//! caught, the actor stops and the supervisor restarts it with the same mailbox; `restarting`
//! keeps the members and the subscription and drops only transient state, then the room resyncs
//! from the history.
//!
//! Stays whole (just over 400 lines): one actor's handlers; its decisions are already `order.rs`.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Instant;

use actix::prelude::*;
use dashmap::DashMap;
use serde_json::json;

use super::deps::RoomDeps;
use super::member::{Held, Member};
use super::order::{Order, Step};
use super::typing::Typists;
use crate::broker::now_ms;
use crate::event::{Delivery, NewEvent};
use crate::ids::UserId;
use crate::key::RoomKey;
use crate::outbound::ConnId;
use crate::protocol;

#[derive(Message)]
#[rtype(result = "()")]
pub struct LeaveRoom {
    pub conn: ConnId,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct Deliver(pub Delivery);

/// Look for missed events (after a broker reconnect, or events dropped at a full mailbox).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Resync;

#[derive(Message)]
#[rtype(result = "()")]
pub struct Typing {
    pub user: UserId,
    pub typing: bool,
}

/// Test hook: makes the next delivery panic.
#[cfg(test)]
#[derive(Message)]
#[rtype(result = "()")]
pub struct PanicOnNextDelivery;

/// The registry's entry for a room's actor (`registry.rs` keeps them, by room, in [`Rooms`]).
pub(crate) struct RoomHandle {
    pub addr: Addr<RoomActor>,
    /// Set while a `Resync` is on its way, so a burst of drops queues one.
    pub resync_queued: Arc<AtomicBool>,
}

/// The node's room actors, by room: owned by the registry, left by each room as it stops.
pub(crate) type Rooms = DashMap<RoomKey, RoomHandle>;

/// A room's way to take itself out of the registry (held weakly: the registry owns the rooms).
/// Defined here, beside the actor that uses it, so the actor needs nothing of the registry.
#[derive(Clone)]
pub(crate) struct Directory(Weak<Rooms>);

impl Directory {
    pub(crate) fn new(rooms: &Arc<Rooms>) -> Self {
        Self(Arc::downgrade(rooms))
    }

    pub(crate) fn remove_if_same(&self, room: &RoomKey, addr: &Addr<RoomActor>) {
        if let Some(rooms) = self.0.upgrade() {
            rooms.remove_if(room, |_, handle| handle.addr == *addr);
        }
    }
}

pub struct RoomActor {
    pub(super) key: RoomKey,
    pub(super) deps: Arc<RoomDeps>,
    directory: Directory,
    resync_queued: Arc<AtomicBool>,
    /// `None` until subscribed.
    pub(super) order: Option<Order>,
    pub(super) members: HashMap<ConnId, Member>,
    pub(super) users: HashMap<UserId, usize>,
    typing: Typists,
    pub(super) next_join: u64,
    pub(super) closing: bool,
    filling: bool,
    unsubscribed: bool,
    resync_after_restart: bool,
    #[cfg(test)]
    panic_next: bool,
}

impl RoomActor {
    pub(crate) fn new(
        key: RoomKey,
        deps: Arc<RoomDeps>,
        directory: Directory,
        resync_queued: Arc<AtomicBool>,
    ) -> Self {
        let typing = Typists::new(deps.typing_ttl);
        Self {
            key,
            deps,
            directory,
            resync_queued,
            order: None,
            members: HashMap::new(),
            users: HashMap::new(),
            typing,
            next_join: 0,
            filling: false,
            closing: false,
            unsubscribed: false,
            resync_after_restart: false,
            #[cfg(test)]
            panic_next: false,
        }
    }

    /// Carries out the ordering's steps.
    fn apply(&mut self, steps: Vec<Step>) {
        for step in steps {
            match step {
                Step::Send(delivery) => self.fan_out(&delivery),
                Step::Gap { epoch, from, to } => self.notify_gap(&epoch, from, to),
                Step::NewEpoch => {
                    for member in self.members.values_mut() {
                        match &mut member.joining {
                            Some(joining) => joining.held.push(Held::NewEpoch),
                            None => member.last_sent = 0,
                        }
                    }
                }
            }
        }
    }

    /// Writes an event to every member that has not had it; drops members whose queue is full.
    fn fan_out(&mut self, delivery: &Delivery) {
        let mut slow = Vec::new();
        let mut sent = 0u64;
        let hold = self.deps.join_buffer;
        for (conn, member) in self.members.iter_mut() {
            if let Some(offset) = delivery.offset
                && member.joining.is_none()
            {
                if offset <= member.last_sent {
                    continue;
                }
                member.last_sent = offset;
            }
            match member.push(delivery.offset, &delivery.frame, hold) {
                Ok(()) => sent += 1,
                Err(()) => slow.push(*conn),
            }
        }
        let counters = self.deps.counters.clone();
        counters.delivered.fetch_add(sent, Ordering::Relaxed);
        for conn in slow {
            counters.slow_disconnects.fetch_add(1, Ordering::Relaxed);
            self.remove_member(conn);
        }
    }

    fn notify_gap(&mut self, epoch: &str, from: u64, to: Option<u64>) {
        self.deps.counters.gaps.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(room = %self.key, from, ?to, "room events could not be recovered");
        let frame = protocol::gap_notice(&self.key, epoch, from, to, now_ms());
        let hold = self.deps.join_buffer;
        for member in self.members.values_mut() {
            let _ = member.push(None, &frame, hold);
        }
    }

    fn on_delivery(&mut self, delivery: Delivery, ctx: &mut Context<Self>) {
        let Some(order) = self.order.as_mut() else {
            return;
        };
        let mut steps = Vec::new();
        let missing = order.offer(delivery, &mut steps);
        self.apply(steps);
        if missing && !self.filling {
            self.fill(ctx);
        }
    }

    /// Fetches the events after the last delivered one from the history.
    fn fill(&mut self, ctx: &mut Context<Self>) {
        let Some(order) = &self.order else { return };
        self.filling = true;
        let broker = self.deps.broker.clone();
        let key = self.key.clone();
        let after = order.head().offset;
        let fut = async move { broker.history(&key, after).await };
        ctx.spawn(fut.into_actor(self).map(|result, act, _| {
            act.filling = false;
            let Some(order) = act.order.as_mut() else {
                return;
            };
            let mut steps = Vec::new();
            match result {
                Ok(history) => order.apply_history(history, &mut steps),
                Err(error) => {
                    tracing::warn!(room = %act.key, %error, "could not read room history");
                    order.give_up(&mut steps);
                }
            }
            act.apply(steps);
        }));
    }

    pub(super) fn remove_member(&mut self, conn: ConnId) {
        let Some(member) = self.members.remove(&conn) else {
            return;
        };
        let user = member.user;
        let gone = match self.users.get_mut(&user) {
            Some(count) => {
                *count -= 1;
                *count == 0
            }
            None => false,
        };
        if gone {
            self.users.remove(&user);
            self.deps.presence.left(&self.key, user);
            if self.typing.set(user, false, Instant::now()) {
                self.publish_typing(user, false);
            }
        }
    }

    fn publish_typing(&self, user: UserId, typing: bool) {
        // `ttlMs` lets clients drop a "starting" whose "stopping" never comes (its node died).
        let ttl_ms = self.typing.ttl().as_millis() as u64;
        let data = if typing {
            json!({"starting": [user], "ttlMs": ttl_ms})
        } else {
            json!({"stopping": [user]})
        };
        let event = NewEvent {
            id: self.deps.ids.next(),
            event_type: "chat/typing/updated".into(),
            timestamp_ms: now_ms(),
            room: self.key.clone(),
            data,
        };
        let broker = self.deps.broker.clone();
        tokio::spawn(async move {
            if let Err(error) = broker.publish_volatile(&event).await {
                tracing::debug!(%error, "typing event not published");
            }
        });
    }

    fn stop_if_empty(&mut self, ctx: &mut Context<Self>) {
        if self.members.is_empty() && !self.closing {
            self.closing = true;
            self.directory.remove_if_same(&self.key, &ctx.address());
            ctx.stop();
        }
    }
}

impl Actor for RoomActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(self.deps.mailbox);
        if self.closing {
            // Restarted by the supervisor while a caller still held our address (a join in
            // flight): stay up answering `Closing` until the last address is dropped, then actix
            // stops us for good. Stopping here would only be restarted again.
            return;
        }
        // Typing that was not renewed within the TTL stops by itself.
        ctx.run_interval(self.typing.ttl() / 2, |act, _| {
            for user in act.typing.expire(Instant::now()) {
                act.publish_typing(user, false);
            }
        });
        if self.order.is_none() {
            let broker = self.deps.broker.clone();
            let key = self.key.clone();
            let fut = async move { broker.subscribe(&key).await };
            // `wait`: no join or event is handled before the subscription is in place (there
            // are no members yet, so nobody waits but the first join).
            ctx.wait(fut.into_actor(self).map(|result, act, ctx| match result {
                Ok(head) => act.order = Some(Order::new(head, act.deps.mailbox)),
                Err(error) => {
                    tracing::warn!(room = %act.key, %error, "could not subscribe to room");
                    act.closing = true;
                    act.unsubscribed = true;
                    act.directory.remove_if_same(&act.key, &ctx.address());
                    ctx.stop();
                }
            }));
        } else if self.resync_after_restart {
            self.resync_after_restart = false;
            self.fill(ctx);
            // Joins whose fetch the restart cancelled start it again.
            let joining: Vec<ConnId> = self
                .members
                .iter()
                .filter(|(_, m)| m.joining.is_some())
                .map(|(conn, _)| *conn)
                .collect();
            for conn in joining {
                self.fetch_for_join(conn, false, ctx);
            }
        }
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        if self.closing && !self.unsubscribed {
            self.unsubscribed = true;
            let broker = self.deps.broker.clone();
            let key = self.key.clone();
            tokio::spawn(async move {
                if let Err(error) = broker.unsubscribe(&key).await {
                    tracing::warn!(room = %key, %error, "could not unsubscribe from room");
                }
            });
        }
    }
}

impl Supervised for RoomActor {
    fn restarting(&mut self, _: &mut Self::Context) {
        if !self.closing {
            tracing::warn!(room = %self.key, "room actor restarted; resyncing from history");
            self.deps
                .counters
                .room_restarts
                .fetch_add(1, Ordering::Relaxed);
            if let Some(order) = self.order.as_mut() {
                order.clear_pending();
            }
            self.filling = false;
            self.resync_after_restart = true;
        }
    }
}

impl Handler<LeaveRoom> for RoomActor {
    type Result = ();
    fn handle(&mut self, leave: LeaveRoom, ctx: &mut Self::Context) {
        self.remove_member(leave.conn);
        self.stop_if_empty(ctx);
    }
}

impl Handler<Deliver> for RoomActor {
    type Result = ();
    fn handle(&mut self, Deliver(delivery): Deliver, ctx: &mut Self::Context) {
        #[cfg(test)]
        if std::mem::take(&mut self.panic_next) {
            let result = std::panic::catch_unwind(AssertUnwindSafe(|| panic!("injected")));
            if result.is_err() {
                tracing::error!(room = %self.key, "room actor panicked; restarting");
                ctx.stop();
                return;
            }
        }
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| self.on_delivery(delivery, ctx)));
        if result.is_err() {
            tracing::error!(room = %self.key, "room actor panicked; restarting");
            ctx.stop();
            return;
        }
        // Slow members may have been dropped.
        self.stop_if_empty(ctx);
    }
}

impl Handler<Resync> for RoomActor {
    type Result = ();
    fn handle(&mut self, _: Resync, ctx: &mut Self::Context) {
        self.resync_queued.store(false, Ordering::Release);
        if !self.filling && self.order.is_some() {
            self.fill(ctx);
        }
    }
}

impl Handler<Typing> for RoomActor {
    type Result = ();
    fn handle(&mut self, msg: Typing, _: &mut Self::Context) {
        if self.typing.set(msg.user, msg.typing, Instant::now()) {
            self.publish_typing(msg.user, msg.typing);
        }
    }
}

#[cfg(test)]
impl Handler<PanicOnNextDelivery> for RoomActor {
    type Result = ();
    fn handle(&mut self, _: PanicOnNextDelivery, _: &mut Self::Context) {
        self.panic_next = true;
    }
}
