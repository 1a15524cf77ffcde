//! The Redis broker: rooms and node mailboxes shared by every node.
//!
//! - Publishing runs one Lua script (`scripts.rs`): next offset, history append, `PUBLISH` —
//!   once per event id, however often it is retried. A batch (the outbox relay's) is one
//!   pipeline of those scripts: one round trip, each event still its own atomic step.
//! - One pub/sub connection per node carries the room channels this node has members in
//!   (`<prefix>room:<room>`), its own mailbox (`<prefix>node:<id>`) and the broadcast channel
//!   (`<prefix>nodes`). A task reads it and hands each message to the inbox.
//! - Redis pub/sub does not reconnect by itself: when the stream ends (Redis restarted, or the
//!   connection killed), the task reconnects with backoff, subscribes again to every channel
//!   it had, then tells the inbox to resync, so each room fetches what it missed from the
//!   history or reports the gap.
//! - Presence is a sorted set per room of `<node>|<user>` scored by expiry; every node renews its
//!   own entries, so a dead node's entries fall out after `presence_ttl`.
//!
//! Long on purpose (~540 lines): one connection state machine (connect, subscribe, reconnect,
//! resubscribe, resync) whose parts share its private state, and the publishing (one event or a
//! pipelined batch) that shares its connection; the Lua lives in `scripts.rs`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::{ConnectionManager, PubSubSink, PubSubStream};
use tokio_util::sync::CancellationToken;

use super::{
    BoxFut, Broker, BrokerError, BrokerSettings, History, Inbox, NodeMessage, NodeTarget, RoomHead,
    new_epoch, now_ms, scripts,
};
use crate::event::{Delivery, NewEvent};
use crate::ids::UserId;
use crate::key::RoomKey;

/// Larger than any offset; asks the history script for the head only.
const HEAD_ONLY: u64 = 1 << 53;

struct Subscriptions {
    /// `None` while disconnected; the reconnect subscribes to everything in `rooms`.
    sink: Option<PubSubSink>,
    rooms: HashMap<RoomKey, usize>,
}

struct Inner {
    node: u16,
    prefix: String,
    client: redis::Client,
    conn: ConnectionManager,
    settings: BrokerSettings,
    subs: tokio::sync::Mutex<Subscriptions>,
    inbox: OnceLock<Arc<dyn Inbox>>,
    stop: CancellationToken,
    publish: redis::Script,
    history: redis::Script,
    skip: redis::Script,
    connect_timeout: Duration,
    connected: AtomicBool,
}

pub struct RedisBroker {
    inner: Arc<Inner>,
}

fn unavailable(error: impl std::fmt::Display) -> BrokerError {
    BrokerError::Unavailable(error.to_string())
}

impl RedisBroker {
    /// `client` opens the pub/sub connection; `conn` carries every other command.
    pub fn new(
        node: u16,
        client: redis::Client,
        conn: ConnectionManager,
        prefix: String,
        settings: BrokerSettings,
        connect_timeout: Duration,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                node,
                prefix,
                client,
                conn,
                settings,
                subs: tokio::sync::Mutex::new(Subscriptions {
                    sink: None,
                    rooms: HashMap::new(),
                }),
                inbox: OnceLock::new(),
                stop: CancellationToken::new(),
                publish: scripts::publish(),
                history: scripts::history(),
                skip: scripts::skip(),
                connect_timeout,
                connected: AtomicBool::new(false),
            }),
        }
    }
}

impl Inner {
    fn room_keys(&self, room: &RoomKey) -> [String; 3] {
        let base = format!("{}room:{room}", self.prefix);
        [
            format!("{base}:offset"),
            format!("{base}:epoch"),
            format!("{base}:history"),
        ]
    }
    fn ids_key(&self, room: &RoomKey) -> String {
        format!("{}room:{room}:ids", self.prefix)
    }
    fn bytes_key(&self, room: &RoomKey) -> String {
        format!("{}room:{room}:bytes", self.prefix)
    }
    fn room_channel(&self, room: &RoomKey) -> String {
        format!("{}room:{room}", self.prefix)
    }
    fn node_channel(&self, node: u16) -> String {
        format!("{}node:{node}", self.prefix)
    }
    fn all_channel(&self) -> String {
        format!("{}nodes", self.prefix)
    }
    fn presence_key(&self, room: &RoomKey) -> String {
        format!("{}presence:{room}", self.prefix)
    }
    fn ttl_ms(&self) -> u64 {
        self.settings.room_state_ttl.as_millis().max(1) as u64
    }

    /// Opens the pub/sub connection and subscribes to the node channels and every room with
    /// local members.
    async fn connect(&self) -> Result<PubSubStream, BrokerError> {
        let pubsub = tokio::time::timeout(self.connect_timeout, self.client.get_async_pubsub())
            .await
            .map_err(|_| unavailable("timed out connecting to Redis"))?
            .map_err(unavailable)?;
        let (mut sink, stream) = pubsub.split();
        let mut subs = self.subs.lock().await;
        sink.subscribe(&[self.node_channel(self.node), self.all_channel()])
            .await
            .map_err(unavailable)?;
        let rooms: Vec<String> = subs.rooms.keys().map(|r| self.room_channel(r)).collect();
        if !rooms.is_empty() {
            sink.subscribe(rooms).await.map_err(unavailable)?;
        }
        subs.sink = Some(sink);
        self.connected.store(true, Ordering::Release);
        Ok(stream)
    }

    fn handle(&self, msg: redis::Msg) {
        let Some(inbox) = self.inbox.get() else {
            return;
        };
        let channel = msg.get_channel_name();
        let Ok(payload) = msg.get_payload::<String>() else {
            tracing::warn!(channel, "non-text message on a broker channel");
            return;
        };
        if channel.starts_with(&format!("{}room:", self.prefix)) {
            match Delivery::parse(payload) {
                Ok(delivery) => inbox.deliver(delivery),
                Err(error) => tracing::warn!(channel, %error, "unreadable room event"),
            }
        } else {
            match serde_json::from_str::<NodeMessage>(&payload) {
                Ok(message) => inbox.node_message(message),
                Err(error) => tracing::warn!(channel, %error, "unreadable node message"),
            }
        }
    }

    /// Reads pub/sub until told to stop; reconnects and resubscribes whenever the stream ends.
    async fn run(self: Arc<Self>, mut stream: PubSubStream) {
        loop {
            loop {
                tokio::select! {
                    _ = self.stop.cancelled() => return,
                    msg = stream.next() => match msg {
                        Some(msg) => self.handle(msg),
                        None => break,
                    },
                }
            }
            self.subs.lock().await.sink = None;
            self.connected.store(false, Ordering::Release);
            tracing::warn!(
                node = self.node,
                "Redis pub/sub connection lost; reconnecting"
            );
            let mut delay = Duration::from_millis(50);
            stream = loop {
                tokio::select! {
                    _ = self.stop.cancelled() => return,
                    _ = tokio::time::sleep(delay) => {}
                }
                match self.connect().await {
                    Ok(stream) => break stream,
                    Err(error) => {
                        tracing::warn!(%error, "Redis pub/sub reconnect failed");
                        delay = (delay * 2).min(Duration::from_secs(2));
                    }
                }
            };
            tracing::info!(
                node = self.node,
                "Redis pub/sub resubscribed; resyncing rooms"
            );
            if let Some(inbox) = self.inbox.get() {
                inbox.resync();
            }
        }
    }

    /// The publish script's call for `event` (see `scripts.rs` for what each argument is).
    fn publish_invocation(&self, event: &NewEvent) -> redis::ScriptInvocation<'_> {
        let parts = event.encode();
        let [offset, epoch, history] = self.room_keys(&event.room);
        let mut invocation = self.publish.key(offset);
        invocation
            .key(epoch)
            .key(history)
            .key(self.ids_key(&event.room))
            .key(self.bytes_key(&event.room))
            .arg(parts.head)
            .arg(parts.tail)
            .arg(new_epoch())
            .arg(self.settings.history_max_events.max(1))
            .arg(self.ttl_ms())
            .arg(self.room_channel(&event.room))
            .arg(&event.id)
            .arg(self.settings.history_max_bytes.max(1))
            .arg(now_ms())
            .arg(self.settings.history_max_age.as_millis() as u64);
        invocation
    }

    async fn history(&self, room: &RoomKey, after: u64) -> Result<History, BrokerError> {
        let [offset, epoch, history] = self.room_keys(room);
        let (head_offset, epoch, texts): (u64, String, Vec<String>) = self
            .history
            .key(offset)
            .key(epoch)
            .key(history)
            .arg(after)
            .arg(new_epoch())
            .arg(self.ttl_ms())
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        let oldest_kept = now_ms() - self.settings.history_max_age.as_millis() as i64;
        let events: Vec<Delivery> = texts
            .into_iter()
            .filter_map(|t| Delivery::parse(t).ok())
            .filter(|d| d.offset.is_some_and(|o| o > after) && d.timestamp_ms >= oldest_kept)
            .collect();
        let complete =
            after >= head_offset || events.first().and_then(|d| d.offset) == Some(after + 1);
        Ok(History {
            head: RoomHead {
                epoch: epoch.into(),
                offset: head_offset,
            },
            events,
            complete,
        })
    }
}

impl Broker for RedisBroker {
    fn node_id(&self) -> u16 {
        self.inner.node
    }

    fn start(&self, inbox: Arc<dyn Inbox>) -> BoxFut<'_, Result<(), BrokerError>> {
        Box::pin(async move {
            let _ = self.inner.inbox.set(inbox);
            let stream = self.inner.connect().await?;
            tokio::spawn(self.inner.clone().run(stream));
            Ok(())
        })
    }

    fn publish<'a>(&'a self, event: &'a NewEvent) -> BoxFut<'a, Result<RoomHead, BrokerError>> {
        Box::pin(async move {
            let (offset, epoch): (u64, String) = self
                .inner
                .publish_invocation(event)
                .invoke_async(&mut self.inner.conn.clone())
                .await
                .map_err(unavailable)?;
            Ok(RoomHead {
                epoch: epoch.into(),
                offset,
            })
        })
    }

    fn publish_all<'a>(
        &'a self,
        events: &'a [NewEvent],
    ) -> BoxFut<'a, Result<Vec<RoomHead>, BrokerError>> {
        Box::pin(async move {
            if events.is_empty() {
                return Ok(Vec::new());
            }
            let inner = &self.inner;
            let invocations: Vec<_> = events.iter().map(|e| inner.publish_invocation(e)).collect();
            let mut pipe = redis::pipe();
            for invocation in &invocations {
                pipe.invoke_script(invocation);
            }
            let mut conn = inner.conn.clone();
            let no_script = redis::ErrorKind::Server(redis::ServerErrorKind::NoScript);
            let answers: Vec<(u64, String)> = match pipe.query_async(&mut conn).await {
                Ok(answers) => answers,
                // Redis lost its script cache (restarted): load the script, send them all again
                // (a pipeline's EVALSHA does not load it by itself, unlike `invoke_async`).
                Err(error) if error.kind() == no_script => {
                    invocations[0]
                        .load_async(&mut conn)
                        .await
                        .map_err(unavailable)?;
                    pipe.query_async(&mut conn).await.map_err(unavailable)?
                }
                Err(error) => return Err(unavailable(error)),
            };
            Ok(answers
                .into_iter()
                .map(|(offset, epoch)| RoomHead {
                    epoch: epoch.into(),
                    offset,
                })
                .collect())
        })
    }

    fn publish_volatile<'a>(&'a self, event: &'a NewEvent) -> BoxFut<'a, Result<(), BrokerError>> {
        Box::pin(async move {
            redis::cmd("PUBLISH")
                .arg(self.inner.room_channel(&event.room))
                .arg(event.encode_volatile())
                .query_async::<()>(&mut self.inner.conn.clone())
                .await
                .map_err(unavailable)
        })
    }

    fn skip<'a>(&'a self, room: &'a RoomKey) -> BoxFut<'a, Result<RoomHead, BrokerError>> {
        Box::pin(async move {
            let inner = &self.inner;
            let [offset, epoch, history] = inner.room_keys(room);
            let (offset, epoch): (u64, String) = inner
                .skip
                .key(offset)
                .key(epoch)
                .key(history)
                .arg(new_epoch())
                .arg(inner.ttl_ms())
                .invoke_async(&mut inner.conn.clone())
                .await
                .map_err(unavailable)?;
            Ok(RoomHead {
                epoch: epoch.into(),
                offset,
            })
        })
    }

    fn subscribe<'a>(&'a self, room: &'a RoomKey) -> BoxFut<'a, Result<RoomHead, BrokerError>> {
        Box::pin(async move {
            let inner = &self.inner;
            {
                let mut subs = inner.subs.lock().await;
                let count = subs.rooms.entry(room.clone()).or_insert(0);
                *count += 1;
                if *count == 1
                    && let Some(sink) = subs.sink.as_mut()
                    && let Err(error) = sink.subscribe(inner.room_channel(room)).await
                {
                    subs.rooms.remove(room);
                    return Err(unavailable(error));
                }
            }
            match inner.history(room, HEAD_ONLY).await {
                Ok(history) => Ok(history.head),
                Err(error) => {
                    drop(self.unsubscribe(room).await);
                    Err(error)
                }
            }
        })
    }

    fn unsubscribe<'a>(&'a self, room: &'a RoomKey) -> BoxFut<'a, Result<(), BrokerError>> {
        Box::pin(async move {
            let inner = &self.inner;
            let mut subs = inner.subs.lock().await;
            let Some(count) = subs.rooms.get_mut(room) else {
                return Ok(());
            };
            *count -= 1;
            if *count == 0 {
                subs.rooms.remove(room);
                if let Some(sink) = subs.sink.as_mut() {
                    sink.unsubscribe(inner.room_channel(room))
                        .await
                        .map_err(unavailable)?;
                }
            }
            Ok(())
        })
    }

    fn history<'a>(
        &'a self,
        room: &'a RoomKey,
        after: u64,
    ) -> BoxFut<'a, Result<History, BrokerError>> {
        Box::pin(self.inner.history(room, after))
    }

    fn send<'a>(
        &'a self,
        to: NodeTarget,
        message: &'a NodeMessage,
    ) -> BoxFut<'a, Result<(), BrokerError>> {
        Box::pin(async move {
            let inner = &self.inner;
            let channel = match to {
                NodeTarget::Node(n) => inner.node_channel(n),
                NodeTarget::All => inner.all_channel(),
            };
            let text = serde_json::to_string(message).map_err(unavailable)?;
            let receivers: u64 = redis::cmd("PUBLISH")
                .arg(channel)
                .arg(text)
                .query_async(&mut inner.conn.clone())
                .await
                .map_err(unavailable)?;
            match to {
                NodeTarget::Node(n) if receivers == 0 => Err(BrokerError::NoSuchNode(n)),
                _ => Ok(()),
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
            let inner = &self.inner;
            let key = inner.presence_key(room);
            let member = format!("{}|{user}", inner.node);
            let mut pipe = redis::pipe();
            if present {
                let ttl = inner.settings.presence_ttl.as_millis() as i64;
                pipe.cmd("ZADD")
                    .arg(&key)
                    .arg(now_ms() + ttl)
                    .arg(member)
                    .ignore();
                pipe.cmd("PEXPIRE").arg(&key).arg(ttl * 2).ignore();
            } else {
                pipe.cmd("ZREM").arg(&key).arg(member).ignore();
            }
            pipe.query_async::<()>(&mut inner.conn.clone())
                .await
                .map_err(unavailable)
        })
    }

    fn refresh_presence(
        &self,
        entries: Vec<(RoomKey, UserId)>,
    ) -> BoxFut<'_, Result<(), BrokerError>> {
        Box::pin(async move {
            if entries.is_empty() {
                return Ok(());
            }
            let inner = &self.inner;
            let ttl = inner.settings.presence_ttl.as_millis() as i64;
            let until = now_ms() + ttl;
            let mut pipe = redis::pipe();
            for (room, user) in entries {
                let key = inner.presence_key(&room);
                pipe.cmd("ZADD")
                    .arg(&key)
                    .arg(until)
                    .arg(format!("{}|{user}", inner.node))
                    .ignore();
                pipe.cmd("PEXPIRE").arg(&key).arg(ttl * 2).ignore();
            }
            pipe.query_async::<()>(&mut inner.conn.clone())
                .await
                .map_err(unavailable)
        })
    }

    fn presence<'a>(&'a self, room: &'a RoomKey) -> BoxFut<'a, Result<Vec<UserId>, BrokerError>> {
        Box::pin(async move {
            let inner = &self.inner;
            let key = inner.presence_key(room);
            let now = now_ms();
            let (members,): (Vec<String>,) = redis::pipe()
                .cmd("ZREMRANGEBYSCORE")
                .arg(&key)
                .arg("-inf")
                .arg(now)
                .ignore()
                .cmd("ZRANGE")
                .arg(&key)
                .arg(0)
                .arg(-1)
                .query_async(&mut inner.conn.clone())
                .await
                .map_err(unavailable)?;
            let mut users: Vec<UserId> = members
                .into_iter()
                .filter_map(|m| m.split_once('|').and_then(|(_, u)| u.parse().ok()))
                .collect();
            users.sort();
            users.dedup();
            Ok(users)
        })
    }

    fn stop(&self) -> BoxFut<'_, ()> {
        Box::pin(async move {
            self.inner.stop.cancel();
        })
    }

    fn is_connected(&self) -> bool {
        self.inner.connected.load(Ordering::Acquire)
    }
}
