//! Publishing through the scripts (`../scripts.rs`): one event (`EVALSHA`, loading the script
//! when Redis lost it), a batch as one pipeline of those scripts, a volatile event (plain
//! `PUBLISH`), and the other script calls: a room's history and skipping its gap. Also node
//! messages, which share the command connection.

use super::state::{Inner, unavailable};
use crate::broker::{BrokerError, History, NodeMessage, NodeTarget, RoomHead, new_epoch, now_ms};
use crate::event::{Delivery, NewEvent};
use crate::key::RoomKey;

/// Larger than any offset; asks the history script for the head only.
pub(super) const HEAD_ONLY: u64 = 1 << 53;

impl Inner {
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

    pub(super) async fn history(&self, room: &RoomKey, after: u64) -> Result<History, BrokerError> {
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

    pub(super) async fn publish_one(&self, event: &NewEvent) -> Result<RoomHead, BrokerError> {
        let (offset, epoch): (u64, String) = self
            .publish_invocation(event)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        Ok(RoomHead {
            epoch: epoch.into(),
            offset,
        })
    }

    pub(super) async fn publish_batch(
        &self,
        events: &[NewEvent],
    ) -> Result<Vec<RoomHead>, BrokerError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let invocations: Vec<_> = events.iter().map(|e| self.publish_invocation(e)).collect();
        let mut pipe = redis::pipe();
        for invocation in &invocations {
            pipe.invoke_script(invocation);
        }
        let mut conn = self.conn.clone();
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
    }

    pub(super) async fn publish_volatile(&self, event: &NewEvent) -> Result<(), BrokerError> {
        redis::cmd("PUBLISH")
            .arg(self.room_channel(&event.room))
            .arg(event.encode_volatile())
            .query_async::<()>(&mut self.conn.clone())
            .await
            .map_err(unavailable)
    }

    pub(super) async fn skip_room(&self, room: &RoomKey) -> Result<RoomHead, BrokerError> {
        let [offset, epoch, history] = self.room_keys(room);
        let (offset, epoch): (u64, String) = self
            .skip
            .key(offset)
            .key(epoch)
            .key(history)
            .arg(new_epoch())
            .arg(self.ttl_ms())
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        Ok(RoomHead {
            epoch: epoch.into(),
            offset,
        })
    }

    /// A message to one node's mailbox (`NoSuchNode` when nobody listens) or to all.
    pub(super) async fn send_to(
        &self,
        to: NodeTarget,
        message: &NodeMessage,
    ) -> Result<(), BrokerError> {
        let channel = match to {
            NodeTarget::Node(n) => self.node_channel(n),
            NodeTarget::All => self.all_channel(),
        };
        let text = serde_json::to_string(message).map_err(unavailable)?;
        let receivers: u64 = redis::cmd("PUBLISH")
            .arg(channel)
            .arg(text)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        match to {
            NodeTarget::Node(n) if receivers == 0 => Err(BrokerError::NoSuchNode(n)),
            _ => Ok(()),
        }
    }
}
