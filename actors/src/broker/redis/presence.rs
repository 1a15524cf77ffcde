//! Presence: a sorted set per room of `<node>|<user>` scored by expiry. Each node sets and
//! renews its own entries, so a dead node's entries fall out after `presence_ttl`; reading
//! drops the expired ones first.

use super::state::{Inner, unavailable};
use crate::broker::{BrokerError, now_ms};
use crate::ids::UserId;
use crate::key::RoomKey;

impl Inner {
    pub(super) async fn set_presence(
        &self,
        room: &RoomKey,
        user: UserId,
        present: bool,
    ) -> Result<(), BrokerError> {
        let key = self.presence_key(room);
        let member = format!("{}|{user}", self.node);
        let mut pipe = redis::pipe();
        if present {
            let ttl = self.settings.presence_ttl.as_millis() as i64;
            pipe.cmd("ZADD")
                .arg(&key)
                .arg(now_ms() + ttl)
                .arg(member)
                .ignore();
            pipe.cmd("PEXPIRE").arg(&key).arg(ttl * 2).ignore();
        } else {
            pipe.cmd("ZREM").arg(&key).arg(member).ignore();
        }
        pipe.query_async::<()>(&mut self.conn.clone())
            .await
            .map_err(unavailable)
    }

    pub(super) async fn refresh_presence(
        &self,
        entries: Vec<(RoomKey, UserId)>,
    ) -> Result<(), BrokerError> {
        if entries.is_empty() {
            return Ok(());
        }
        let ttl = self.settings.presence_ttl.as_millis() as i64;
        let until = now_ms() + ttl;
        let mut pipe = redis::pipe();
        for (room, user) in entries {
            let key = self.presence_key(&room);
            pipe.cmd("ZADD")
                .arg(&key)
                .arg(until)
                .arg(format!("{}|{user}", self.node))
                .ignore();
            pipe.cmd("PEXPIRE").arg(&key).arg(ttl * 2).ignore();
        }
        pipe.query_async::<()>(&mut self.conn.clone())
            .await
            .map_err(unavailable)
    }

    pub(super) async fn presence(&self, room: &RoomKey) -> Result<Vec<UserId>, BrokerError> {
        let key = self.presence_key(room);
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
            .query_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        let mut users: Vec<UserId> = members
            .into_iter()
            .filter_map(|m| m.split_once('|').and_then(|(_, u)| u.parse().ok()))
            .collect();
        users.sort();
        users.dedup();
        Ok(users)
    }
}
