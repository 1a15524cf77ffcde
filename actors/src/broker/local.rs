//! The in-process broker for single-node mode: the same semantics as the Redis broker (offsets,
//! epochs, capped history, presence, node messages) with no network in between.
//!
//! One mutex guards the rooms; a publish assigns the offset, appends to the history and hands the
//! event to the inbox while holding it, so events of a room reach the room in offset order even
//! when several threads publish at once. The inbox only does non-blocking sends.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};

use super::{
    BoxFut, Broker, BrokerError, BrokerSettings, History, Inbox, NodeMessage, NodeTarget, RoomHead,
    new_epoch, now_ms,
};
use crate::event::{Delivery, NewEvent};
use crate::ids::UserId;
use crate::key::RoomKey;

struct LocalRoom {
    epoch: Arc<str>,
    offset: u64,
    history: VecDeque<Delivery>,
    history_bytes: usize,
    /// Recent event ids with their offsets: a republished id is not published again.
    ids: HashMap<String, u64>,
    id_order: VecDeque<String>,
    subscribers: usize,
    last_activity_ms: i64,
}

impl LocalRoom {
    fn new() -> Self {
        Self {
            epoch: new_epoch().into(),
            offset: 0,
            history: VecDeque::new(),
            history_bytes: 0,
            ids: HashMap::new(),
            id_order: VecDeque::new(),
            subscribers: 0,
            last_activity_ms: now_ms(),
        }
    }

    fn head(&self) -> RoomHead {
        RoomHead {
            epoch: self.epoch.clone(),
            offset: self.offset,
        }
    }
}

pub struct LocalBroker {
    node: u16,
    settings: BrokerSettings,
    rooms: Mutex<HashMap<RoomKey, LocalRoom>>,
    presence: Mutex<HashMap<RoomKey, HashSet<UserId>>>,
    inbox: OnceLock<Arc<dyn Inbox>>,
    /// When quiet rooms were last forgotten (at most once a minute: it walks every room).
    last_prune_ms: std::sync::atomic::AtomicI64,
}

impl LocalBroker {
    pub fn new(node: u16, settings: BrokerSettings) -> Self {
        Self {
            node,
            settings,
            rooms: Mutex::new(HashMap::new()),
            presence: Mutex::new(HashMap::new()),
            inbox: OnceLock::new(),
            last_prune_ms: std::sync::atomic::AtomicI64::new(0),
        }
    }

    fn rooms(&self) -> std::sync::MutexGuard<'_, HashMap<RoomKey, LocalRoom>> {
        self.rooms.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Forgets quiet rooms nobody is subscribed to, as Redis expires their keys.
    fn prune(&self, rooms: &mut HashMap<RoomKey, LocalRoom>) {
        use std::sync::atomic::Ordering;
        let ttl = self.settings.room_state_ttl.as_millis() as i64;
        let now = now_ms();
        if now - self.last_prune_ms.load(Ordering::Relaxed) < 60_000 {
            return;
        }
        self.last_prune_ms.store(now, Ordering::Relaxed);
        rooms.retain(|_, r| r.subscribers > 0 || now - r.last_activity_ms < ttl);
    }
}

impl Broker for LocalBroker {
    fn node_id(&self) -> u16 {
        self.node
    }

    fn start(&self, inbox: Arc<dyn Inbox>) -> BoxFut<'_, Result<(), BrokerError>> {
        let _ = self.inbox.set(inbox);
        Box::pin(async { Ok(()) })
    }

    fn publish<'a>(&'a self, event: &'a NewEvent) -> BoxFut<'a, Result<RoomHead, BrokerError>> {
        Box::pin(async move {
            let parts = event.encode();
            let mut rooms = self.rooms();
            if rooms.len() > 10_000 {
                self.prune(&mut rooms);
            }
            let room = rooms
                .entry(event.room.clone())
                .or_insert_with(LocalRoom::new);
            if let Some(&offset) = room.ids.get(&event.id) {
                return Ok(RoomHead {
                    epoch: room.epoch.clone(),
                    offset,
                });
            }
            room.offset += 1;
            room.ids.insert(event.id.clone(), room.offset);
            room.id_order.push_back(event.id.clone());
            while room.id_order.len() > 4 * self.settings.history_max_events.max(1) {
                if let Some(old) = room.id_order.pop_front() {
                    room.ids.remove(&old);
                }
            }
            room.last_activity_ms = now_ms();
            // The same text as the Redis script makes, cut into the client's frame alike.
            let delivery = Delivery::parse(parts.assemble(room.offset, &room.epoch))
                .map_err(|e| BrokerError::Unavailable(format!("event text: {e}")))?;
            room.history_bytes += delivery.frame.len();
            room.history.push_back(delivery.clone());
            // As the Redis script: by count, by bytes, and by age, keeping the newest.
            let oldest = now_ms() - self.settings.history_max_age.as_millis() as i64;
            while room.history.len() > 1
                && (room.history.len() > self.settings.history_max_events
                    || room.history_bytes > self.settings.history_max_bytes
                    || room
                        .history
                        .front()
                        .is_some_and(|d| d.timestamp_ms < oldest))
            {
                if let Some(old) = room.history.pop_front() {
                    room.history_bytes -= old.frame.len();
                }
            }
            let head = room.head();
            if room.subscribers > 0
                && let Some(inbox) = self.inbox.get()
            {
                inbox.deliver(delivery);
            }
            Ok(head)
        })
    }

    fn skip<'a>(&'a self, room: &'a RoomKey) -> BoxFut<'a, Result<RoomHead, BrokerError>> {
        Box::pin(async move {
            let mut rooms = self.rooms();
            let room = rooms.entry(room.clone()).or_insert_with(LocalRoom::new);
            room.offset += 1;
            room.last_activity_ms = now_ms();
            Ok(room.head())
        })
    }

    fn publish_volatile<'a>(&'a self, event: &'a NewEvent) -> BoxFut<'a, Result<(), BrokerError>> {
        Box::pin(async move {
            if let Some(inbox) = self.inbox.get() {
                let delivery = Delivery::parse(event.encode_volatile())
                    .map_err(|e| BrokerError::Unavailable(format!("event text: {e}")))?;
                inbox.deliver(delivery);
            }
            Ok(())
        })
    }

    fn subscribe<'a>(&'a self, room: &'a RoomKey) -> BoxFut<'a, Result<RoomHead, BrokerError>> {
        Box::pin(async move {
            let mut rooms = self.rooms();
            let state = rooms.entry(room.clone()).or_insert_with(LocalRoom::new);
            state.subscribers += 1;
            Ok(state.head())
        })
    }

    fn unsubscribe<'a>(&'a self, room: &'a RoomKey) -> BoxFut<'a, Result<(), BrokerError>> {
        Box::pin(async move {
            if let Some(state) = self.rooms().get_mut(room) {
                state.subscribers = state.subscribers.saturating_sub(1);
                state.last_activity_ms = now_ms();
            }
            Ok(())
        })
    }

    fn history<'a>(
        &'a self,
        room: &'a RoomKey,
        after: u64,
    ) -> BoxFut<'a, Result<History, BrokerError>> {
        Box::pin(async move {
            let mut rooms = self.rooms();
            let state = rooms.entry(room.clone()).or_insert_with(LocalRoom::new);
            let oldest_kept = now_ms() - self.settings.history_max_age.as_millis() as i64;
            let events: Vec<Delivery> = state
                .history
                .iter()
                .filter(|d| d.offset.is_some_and(|o| o > after) && d.timestamp_ms >= oldest_kept)
                .cloned()
                .collect();
            let complete =
                after >= state.offset || events.first().and_then(|d| d.offset) == Some(after + 1);
            Ok(History {
                head: state.head(),
                events,
                complete,
            })
        })
    }

    fn send<'a>(
        &'a self,
        to: NodeTarget,
        message: &'a NodeMessage,
    ) -> BoxFut<'a, Result<(), BrokerError>> {
        Box::pin(async move {
            match to {
                NodeTarget::Node(n) if n != self.node => Err(BrokerError::NoSuchNode(n)),
                _ => {
                    if let Some(inbox) = self.inbox.get() {
                        inbox.node_message(message.clone());
                    }
                    Ok(())
                }
            }
        })
    }

    fn set_presence<'a>(
        &'a self,
        room: &'a RoomKey,
        user: UserId,
        present: bool,
    ) -> BoxFut<'a, Result<(), BrokerError>> {
        Box::pin(async move {
            let mut presence = self.presence.lock().unwrap_or_else(|p| p.into_inner());
            if present {
                presence.entry(room.clone()).or_default().insert(user);
            } else if let Some(users) = presence.get_mut(room) {
                users.remove(&user);
                if users.is_empty() {
                    presence.remove(room);
                }
            }
            Ok(())
        })
    }

    fn refresh_presence(
        &self,
        _entries: Vec<(RoomKey, UserId)>,
    ) -> BoxFut<'_, Result<(), BrokerError>> {
        // One process: entries die with it, nothing to renew.
        Box::pin(async { Ok(()) })
    }

    fn presence<'a>(&'a self, room: &'a RoomKey) -> BoxFut<'a, Result<Vec<UserId>, BrokerError>> {
        Box::pin(async move {
            let presence = self.presence.lock().unwrap_or_else(|p| p.into_inner());
            let mut users: Vec<UserId> = presence
                .get(room)
                .map(|u| u.iter().cloned().collect())
                .unwrap_or_default();
            users.sort();
            Ok(users)
        })
    }

    fn stop(&self) -> BoxFut<'_, ()> {
        Box::pin(async {})
    }

    fn is_connected(&self) -> bool {
        true
    }
}
