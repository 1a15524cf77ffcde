//! The pub/sub connection: connecting and subscribing (this node's mailbox, the broadcast
//! channel, every room with local members), handing each message to the inbox, and — when the
//! stream ends — reconnecting with backoff, resubscribing and telling the inbox to resync. Also
//! the reference-counted room subscriptions it carries.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::PubSubStream;

use super::publisher::HEAD_ONLY;
use super::state::{Inner, unavailable};
use crate::broker::{BrokerError, NodeMessage, RoomHead};
use crate::event::Delivery;
use crate::key::RoomKey;

impl Inner {
    /// Opens the pub/sub connection and subscribes to the node channels and every room with
    /// local members.
    pub(super) async fn connect(&self) -> Result<PubSubStream, BrokerError> {
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

    pub(super) fn handle(&self, msg: redis::Msg) {
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
    pub(super) async fn run(self: Arc<Self>, mut stream: PubSubStream) {
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
            // Backoff between reconnects (50 ms doubling to 2 s): Redis is down or restarting, so
            // there is no condition to wait on but time; a stop ends the wait at once.
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

    /// Counts a local member of `room`; the first one subscribes its channel. The room's head.
    pub(super) async fn subscribe_room(&self, room: &RoomKey) -> Result<RoomHead, BrokerError> {
        {
            let mut subs = self.subs.lock().await;
            let count = subs.rooms.entry(room.clone()).or_insert(0);
            *count += 1;
            if *count == 1
                && let Some(sink) = subs.sink.as_mut()
                && let Err(error) = sink.subscribe(self.room_channel(room)).await
            {
                subs.rooms.remove(room);
                return Err(unavailable(error));
            }
        }
        match self.history(room, HEAD_ONLY).await {
            Ok(history) => Ok(history.head),
            Err(error) => {
                drop(self.unsubscribe_room(room).await);
                Err(error)
            }
        }
    }

    /// Drops a local member of `room`; the last one unsubscribes its channel.
    pub(super) async fn unsubscribe_room(&self, room: &RoomKey) -> Result<(), BrokerError> {
        let mut subs = self.subs.lock().await;
        let Some(count) = subs.rooms.get_mut(room) else {
            return Ok(());
        };
        *count -= 1;
        if *count == 0 {
            subs.rooms.remove(room);
            if let Some(sink) = subs.sink.as_mut() {
                sink.unsubscribe(self.room_channel(room))
                    .await
                    .map_err(unavailable)?;
            }
        }
        Ok(())
    }
}
