//! Sessions revoked within the last access window. A token is trusted without a database look-up
//! until its `accessExp`; this list is what makes a logout take effect on the very next request
//! anyway. With Redis every node shares it (`<prefix>revoked-session:<id>`, expiring after one
//! access window); in single-node mode it lives in this process. Either way it is only a fast
//! path: when Redis cannot answer, the caller checks the session row instead.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::ids::SessionId;
use crate::redis_client::RedisClient;

pub struct Revocations {
    redis: Option<RedisClient>,
    local: Mutex<HashMap<SessionId, Instant>>,
    ttl: Duration,
    listener: OnceLock<Arc<dyn RevocationListener>>,
}

/// Told of every revocation after the list has it: the WebSocket side closes the sessions'
/// sockets on every node.
pub trait RevocationListener: Send + Sync + 'static {
    fn revoked(&self, sessions: &[SessionId]);
}

/// What the list knows about a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoked {
    Yes,
    No,
    /// Redis did not answer: look at the session row.
    Unknown,
}

impl Revocations {
    pub fn new(redis: Option<RedisClient>, ttl: Duration) -> Self {
        Self {
            redis,
            local: Mutex::new(HashMap::new()),
            ttl,
            listener: OnceLock::new(),
        }
    }

    /// Sets the listener (once, at start-up).
    pub fn set_listener(&self, listener: Arc<dyn RevocationListener>) {
        let _ = self.listener.set(listener);
    }

    pub async fn revoke(&self, sessions: &[SessionId]) {
        if sessions.is_empty() {
            return;
        }
        match &self.redis {
            Some(redis) => {
                let mut pipe = redis::pipe();
                for id in sessions {
                    pipe.cmd("SET")
                        .arg(redis.key(&format!("revoked-session:{id}")))
                        .arg(1)
                        .arg("PX")
                        .arg(self.ttl.as_millis() as u64)
                        .ignore();
                }
                if let Err(error) = pipe.query_async::<()>(&mut redis.connection()).await {
                    // The session rows are already revoked; tokens past their access window see it.
                    tracing::warn!(%error, "could not publish revoked sessions to Redis");
                }
            }
            None => {
                let until = Instant::now() + self.ttl;
                let mut local = self.local.lock().unwrap_or_else(|p| p.into_inner());
                local.retain(|_, expiry| *expiry > Instant::now());
                local.extend(sessions.iter().map(|id| (*id, until)));
            }
        }
        if let Some(listener) = self.listener.get() {
            listener.revoked(sessions);
        }
    }

    pub async fn check(&self, session: SessionId) -> Revoked {
        match &self.redis {
            Some(redis) => {
                let key = redis.key(&format!("revoked-session:{session}"));
                match redis::cmd("EXISTS")
                    .arg(key)
                    .query_async::<i64>(&mut redis.connection())
                    .await
                {
                    Ok(0) => Revoked::No,
                    Ok(_) => Revoked::Yes,
                    Err(_) => Revoked::Unknown,
                }
            }
            None => {
                let local = self.local.lock().unwrap_or_else(|p| p.into_inner());
                match local.get(&session) {
                    Some(expiry) if *expiry > Instant::now() => Revoked::Yes,
                    _ => Revoked::No,
                }
            }
        }
    }
}
