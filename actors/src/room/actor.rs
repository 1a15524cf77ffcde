//! `RoomActor`: one per room with members on this node.
//!
//! ```text
//! broker ─▶ RoomRegistry ─try_send─▶ RoomActor ─▶ in offset order ─▶ each member's Outbound
//!                                      │ gap? ─▶ broker.history(after last) ─▶ fill, or notice
//! ```
//!
//! The room keeps its epoch and the last offset it delivered. An event with the next offset goes
//! out at once; a later one waits in `pending` while the missing ones are fetched from the
//! history; an earlier one is a duplicate. What the history no longer holds is reported to the
//! members as a `room/gap` notice (refetch over REST). A new epoch (Redis lost its state) is a
//! gap too. Each member also records the last offset it was sent, so a member that joined with a
//! recovery (and already got events from the history) is not sent them twice.
//!
//! Supervision: the actor runs under `actix::Supervisor`. A panic while handling an event is
//! caught, the actor stops and the supervisor restarts it with the same mailbox; `restarting`
//! keeps the members and the subscription and drops only transient state, then the room resyncs
//! from the history.

use std::collections::{BTreeMap, HashMap};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use actix::prelude::*;
use serde_json::{Value, json};

use crate::broker::{History, RoomHead, now_ms};
use crate::event::{Delivery, NewEvent};
use crate::hub::Shared;
use crate::key::RoomKey;
use crate::protocol::{self, Resume};
use crate::session::{ConnId, Outbound};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinError {
    /// The room is stopping (its last member just left): ask the registry again.
    Closing,
    /// The broker could not subscribe.
    Unavailable,
}

#[derive(Message, Clone)]
#[rtype(result = "Result<(), JoinError>")]
pub struct JoinRoom {
    pub conn: ConnId,
    pub user: String,
    pub out: Outbound,
    /// The id of the client's join command: the room writes the success ack.
    pub ack: Value,
    pub resume: Option<Resume>,
}

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
    pub user: String,
    pub typing: bool,
}

/// Test hook: makes the next delivery panic.
#[cfg(test)]
#[derive(Message)]
#[rtype(result = "()")]
pub struct PanicOnNextDelivery;

struct Member {
    user: Arc<str>,
    out: Outbound,
    last_sent: u64,
}

pub struct RoomActor {
    key: RoomKey,
    shared: Arc<Shared>,
    resync_queued: Arc<AtomicBool>,
    head: Option<RoomHead>,
    members: HashMap<ConnId, Member>,
    users: HashMap<Arc<str>, usize>,
    /// Local members typing, and when they last said so (expires after `typing_ttl`).
    typing: HashMap<String, Instant>,
    pending: BTreeMap<u64, Delivery>,
    filling: bool,
    closing: bool,
    unsubscribed: bool,
    resync_after_restart: bool,
    #[cfg(test)]
    panic_next: bool,
}

impl RoomActor {
    pub(crate) fn new(key: RoomKey, shared: Arc<Shared>, resync_queued: Arc<AtomicBool>) -> Self {
        Self {
            key,
            shared,
            resync_queued,
            head: None,
            members: HashMap::new(),
            users: HashMap::new(),
            typing: HashMap::new(),
            pending: BTreeMap::new(),
            filling: false,
            closing: false,
            unsubscribed: false,
            resync_after_restart: false,
            #[cfg(test)]
            panic_next: false,
        }
    }

    fn head_offset(&self) -> u64 {
        self.head.as_ref().map_or(0, |h| h.offset)
    }

    fn epoch(&self) -> Arc<str> {
        self.head
            .as_ref()
            .map_or_else(|| Arc::from(""), |h| h.epoch.clone())
    }

    /// Writes an event to every member that has not had it; drops members whose queue is full.
    fn fan_out(&mut self, delivery: &Delivery) {
        let mut slow = Vec::new();
        let mut sent = 0u64;
        for (conn, member) in self.members.iter_mut() {
            if let Some(offset) = delivery.offset {
                if offset <= member.last_sent {
                    continue;
                }
                member.last_sent = offset;
            }
            match member.out.push_text(delivery.frame.clone()) {
                Ok(()) => sent += 1,
                Err(_) => slow.push(*conn),
            }
        }
        self.shared
            .counters
            .delivered
            .fetch_add(sent, Ordering::Relaxed);
        for conn in slow {
            self.shared
                .counters
                .slow_disconnects
                .fetch_add(1, Ordering::Relaxed);
            self.remove_member(conn);
        }
    }

    fn notify_gap(&mut self, from: u64, to: Option<u64>) {
        self.shared.counters.gaps.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(room = %self.key, from, ?to, "room events could not be recovered");
        let frame = protocol::gap_notice(&self.key, &self.epoch(), from, to, now_ms());
        for member in self.members.values() {
            let _ = member.out.push_text(frame.clone());
        }
    }

    fn on_delivery(&mut self, delivery: Delivery, ctx: &mut Context<Self>) {
        let Some(offset) = delivery.offset else {
            return self.fan_out(&delivery); // volatile
        };
        let Some(head) = self.head.as_mut() else {
            return;
        };
        if let Some(epoch) = &delivery.epoch
            && **epoch != *head.epoch
        {
            // Redis lost the room's state: offsets restarted under a new epoch.
            let from = head.offset + 1;
            head.epoch = epoch.clone();
            head.offset = 0;
            self.pending.clear();
            for member in self.members.values_mut() {
                member.last_sent = 0;
            }
            self.notify_gap(from, None);
        }
        let last = self.head_offset();
        if offset <= last {
            return; // already delivered
        }
        self.pending.insert(offset, delivery);
        self.drain();
        if !self.pending.is_empty() {
            if self.pending.len() > self.shared.limits.room_mailbox {
                self.skip_to_pending();
            } else if !self.filling {
                self.fill(ctx);
            }
        }
    }

    /// Delivers pending events while they are the next in order.
    fn drain(&mut self) {
        loop {
            let next = self.head_offset() + 1;
            let Some(entry) = self.pending.first_entry() else {
                return;
            };
            if *entry.key() < next {
                entry.remove();
                continue;
            }
            if *entry.key() != next {
                return;
            }
            let delivery = entry.remove();
            self.fan_out(&delivery);
            if let Some(head) = self.head.as_mut() {
                head.offset = next;
            }
        }
    }

    /// Gives up on the missing events before the first pending one.
    fn skip_to_pending(&mut self) {
        if let Some(&first) = self.pending.keys().next() {
            let from = self.head_offset() + 1;
            self.notify_gap(from, Some(first - 1));
            if let Some(head) = self.head.as_mut() {
                head.offset = first - 1;
            }
            self.drain();
        }
    }

    /// Fetches the events after the last delivered one from the history.
    fn fill(&mut self, ctx: &mut Context<Self>) {
        self.filling = true;
        let broker = self.shared.broker.clone();
        let key = self.key.clone();
        let after = self.head_offset();
        let fut = async move { broker.history(&key, after).await };
        ctx.spawn(fut.into_actor(self).map(|result, act, _| {
            act.filling = false;
            match result {
                Ok(history) => act.apply_history(history),
                Err(error) => {
                    tracing::warn!(room = %act.key, %error, "could not read room history");
                    act.skip_to_pending();
                }
            }
        }));
    }

    fn apply_history(&mut self, history: History) {
        let Some(head) = self.head.as_mut() else {
            return;
        };
        if history.head.epoch != head.epoch {
            let from = head.offset + 1;
            *head = RoomHead {
                epoch: history.head.epoch.clone(),
                offset: 0,
            };
            self.pending
                .retain(|_, d| d.epoch.as_deref() == Some(&*history.head.epoch));
            for member in self.members.values_mut() {
                member.last_sent = 0;
            }
            self.notify_gap(from, None);
        }
        let known_up_to = history.head.offset;
        for event in history.events {
            if let Some(offset) = event.offset {
                self.pending.entry(offset).or_insert(event);
            }
        }
        let next = self.head_offset() + 1;
        match self.pending.keys().next().copied() {
            Some(first) if first > next => {
                self.notify_gap(next, Some(first - 1));
                if let Some(head) = self.head.as_mut() {
                    head.offset = first - 1;
                }
            }
            None if known_up_to >= next => {
                // The history holds nothing of what was missed.
                self.notify_gap(next, Some(known_up_to));
                if let Some(head) = self.head.as_mut() {
                    head.offset = known_up_to;
                }
            }
            _ => {}
        }
        self.drain();
    }

    fn remove_member(&mut self, conn: ConnId) {
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
            self.shared.presence_left(&self.key, &user);
            if self.typing.remove(&*user).is_some() {
                self.publish_typing(&user, false);
            }
        }
    }

    fn publish_typing(&self, user: &str, typing: bool) {
        // `ttlMs` lets clients drop a "starting" whose "stopping" never comes (its node died).
        let ttl_ms = self.shared.limits.typing_ttl.as_millis() as u64;
        let data = if typing {
            json!({"starting": [user], "ttlMs": ttl_ms})
        } else {
            json!({"stopping": [user]})
        };
        let event = NewEvent {
            id: self.shared.next_event_id(),
            event_type: "chat/typing/updated".into(),
            timestamp_ms: now_ms(),
            room: self.key.clone(),
            data,
        };
        let broker = self.shared.broker.clone();
        tokio::spawn(async move {
            if let Err(error) = broker.publish_volatile(&event).await {
                tracing::debug!(%error, "typing event not published");
            }
        });
    }

    fn stop_if_empty(&mut self, ctx: &mut Context<Self>) {
        if self.members.is_empty() && !self.closing {
            self.closing = true;
            self.shared.rooms.remove_if_same(&self.key, &ctx.address());
            ctx.stop();
        }
    }
}

impl Actor for RoomActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(self.shared.limits.room_mailbox);
        if self.closing {
            // Restarted by the supervisor while a caller still held our address (a join in
            // flight): stay up answering `Closing` until the last address is dropped, then actix
            // stops us for good. Stopping here would only be restarted again.
            return;
        }
        // Typing that was not renewed within the TTL stops by itself.
        let ttl = self.shared.limits.typing_ttl;
        ctx.run_interval(ttl / 2, move |act, _| {
            let expired: Vec<String> = act
                .typing
                .iter()
                .filter(|(_, since)| since.elapsed() >= ttl)
                .map(|(user, _)| user.clone())
                .collect();
            for user in expired {
                act.typing.remove(&user);
                act.publish_typing(&user, false);
            }
        });
        if self.head.is_none() {
            let broker = self.shared.broker.clone();
            let key = self.key.clone();
            let fut = async move { broker.subscribe(&key).await };
            // `wait`: no join or event is handled before the subscription is in place.
            ctx.wait(fut.into_actor(self).map(|result, act, ctx| match result {
                Ok(head) => act.head = Some(head),
                Err(error) => {
                    tracing::warn!(room = %act.key, %error, "could not subscribe to room");
                    act.closing = true;
                    act.unsubscribed = true;
                    act.shared.rooms.remove_if_same(&act.key, &ctx.address());
                    ctx.stop();
                }
            }));
        } else if self.resync_after_restart {
            self.resync_after_restart = false;
            self.fill(ctx);
        }
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        if self.closing && !self.unsubscribed {
            self.unsubscribed = true;
            let broker = self.shared.broker.clone();
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
            self.shared
                .counters
                .room_restarts
                .fetch_add(1, Ordering::Relaxed);
            self.pending.clear();
            self.filling = false;
            self.resync_after_restart = true;
        }
    }
}

impl Handler<JoinRoom> for RoomActor {
    type Result = Result<(), JoinError>;

    fn handle(&mut self, join: JoinRoom, ctx: &mut Self::Context) -> Self::Result {
        if self.closing {
            return Err(JoinError::Closing);
        }
        let Some(head) = self.head.clone() else {
            return Err(JoinError::Unavailable);
        };
        let user: Arc<str> = join.user.as_str().into();
        let first_of_user =
            !self.users.contains_key(&user) && !self.members.contains_key(&join.conn);
        if let Some(old) = self.members.remove(&join.conn) {
            // Joining again: same connection, replaced below.
            if let Some(count) = self.users.get_mut(&old.user) {
                *count -= 1;
            }
        }
        *self.users.entry(user.clone()).or_insert(0) += 1;
        // Reserve the place now so a leave arriving meanwhile finds it; activated below.
        self.members.insert(
            join.conn,
            Member {
                user: user.clone(),
                out: join.out.clone(),
                last_sent: head.offset,
            },
        );
        if first_of_user {
            self.shared.presence_joined(&self.key, &user);
        }
        let broker = self.shared.broker.clone();
        let key = self.key.clone();
        let resume = join.resume.clone();
        let arriving = first_of_user.then(|| user.to_string());
        let fetch = async move {
            if let Some(user) = arriving
                && let Err(error) = broker.set_presence(&key, &user, true).await
            {
                tracing::debug!(%error, "presence not updated");
            }
            let online = broker.presence(&key).await.unwrap_or_default();
            let history = match &resume {
                Some(r) if *r.epoch == *head.epoch && r.offset < head.offset => {
                    Some(broker.history(&key, r.offset).await)
                }
                _ => None,
            };
            (online, history)
        };
        let conn = join.conn;
        // `wait`: the ack and the missed events go out before any live event.
        ctx.wait(
            fetch
                .into_actor(self)
                .map(move |(online, history), act, _| {
                    let Some(head) = act.head.clone() else { return };
                    let Some(member) = act.members.get_mut(&conn) else {
                        return; // left meanwhile
                    };
                    let mut missed = Vec::new();
                    let recovered = match (&join.resume, history) {
                        (None, _) => None,
                        (Some(r), _) if *r.epoch != *head.epoch => Some(false),
                        (Some(r), None) => {
                            member.last_sent = member.last_sent.max(r.offset.min(head.offset));
                            Some(true)
                        }
                        (Some(_), Some(Ok(h))) if h.complete && h.head.epoch == head.epoch => {
                            missed = h.events;
                            Some(true)
                        }
                        (Some(_), Some(_)) => Some(false),
                    };
                    if let Some(last) = missed.last().and_then(|d| d.offset) {
                        member.last_sent = last.max(head.offset);
                    }
                    let ack = protocol::ack_ok(
                        &join.ack,
                        Some(protocol::join_ack_data(
                            &act.key,
                            &head.epoch,
                            member.last_sent,
                            recovered,
                            &online,
                        )),
                    );
                    let mut ok = member.out.push_text(ack).is_ok();
                    for event in &missed {
                        ok = ok && member.out.push_text(event.frame.clone()).is_ok();
                    }
                    if !ok {
                        act.remove_member(conn);
                    }
                }),
        );
        Ok(())
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
        if !self.filling && self.head.is_some() {
            self.fill(ctx);
        }
    }
}

impl Handler<Typing> for RoomActor {
    type Result = ();
    fn handle(&mut self, msg: Typing, _: &mut Self::Context) {
        let changed = if msg.typing {
            self.typing
                .insert(msg.user.clone(), Instant::now())
                .is_none()
        } else {
            self.typing.remove(&msg.user).is_some()
        };
        if changed {
            self.publish_typing(&msg.user, msg.typing);
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
