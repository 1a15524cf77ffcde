//! The server's side of the actor system: builds the node's [`Hub`] from `[ws]` settings with
//! the Redis broker (cluster mode) or the in-process one (single node), and answers the actors'
//! authorization questions from PostgreSQL (`access`). HTTP reaches the actors only through the
//! `Hub` handle (`http::ws` for sockets, `http::admin::rooms` for publishing).

pub mod access;

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use vrooli_actors::broker::local::LocalBroker;
use vrooli_actors::broker::redis::RedisBroker;
use vrooli_actors::{Broker, BrokerError, BrokerSettings, Hub, WsLimits};

use crate::auth::revocation::RevocationListener;
use crate::config::Settings;
use crate::ids::SessionId;
use crate::redis_client::RedisClient;

pub fn limits(settings: &Settings) -> WsLimits {
    let w = &settings.ws;
    WsLimits {
        max_frame_bytes: w.max_frame_bytes,
        max_message_bytes: w.max_message_bytes,
        outbound_queue: w.outbound_queue,
        outbound_queue_bytes: w.outbound_queue_bytes,
        heartbeat_interval: Duration::from_secs(w.heartbeat_interval_secs),
        client_timeout: Duration::from_secs(w.client_timeout_secs),
        session_check_interval: Duration::from_secs(w.session_check_interval_secs),
        max_connections_per_node: w.max_connections_per_node,
        max_connections_per_user: w.max_connections_per_user,
        max_rooms_per_connection: w.max_rooms_per_connection,
        room_mailbox: w.room_mailbox,
        close_grace: Duration::from_millis(w.close_grace_ms),
        presence_interval: Duration::from_secs(w.presence_interval_secs),
        node_request_timeout: Duration::from_millis(w.node_request_timeout_ms),
        typing_ttl: Duration::from_secs(w.typing_ttl_secs),
        command_rate_per_sec: w.command_rate_per_sec,
        command_burst: w.command_burst,
    }
}

fn broker_settings(settings: &Settings) -> BrokerSettings {
    let w = &settings.ws;
    BrokerSettings {
        history_max_events: w.history_max_events,
        history_max_bytes: w.history_max_bytes,
        history_max_age: Duration::from_secs(w.history_max_age_secs),
        room_state_ttl: Duration::from_secs(w.room_state_ttl_secs),
        presence_ttl: Duration::from_secs(w.presence_ttl_secs),
    }
}

/// Starts the node's actor system: the broker (subscribed to this node's mailbox) and the
/// registries.
pub async fn start_hub(
    settings: &Settings,
    redis: Option<&RedisClient>,
    pool: PgPool,
) -> Result<Hub, BrokerError> {
    let node = settings.node.worker_id;
    let broker: Arc<dyn Broker> = match redis {
        Some(redis) => Arc::new(RedisBroker::new(
            node,
            redis.client().clone(),
            redis.connection(),
            redis.prefix().to_owned(),
            broker_settings(settings),
            Duration::from_millis(settings.redis.connection_timeout_ms),
        )),
        None => Arc::new(LocalBroker::new(node, broker_settings(settings))),
    };
    Hub::start(
        broker,
        Arc::new(access::SqlAuthorizer::new(pool)),
        limits(settings),
    )
    .await
}

/// Closes the sockets of revoked sessions on every node (through the hub's node mailboxes).
pub struct CloseRevokedSockets(pub Hub);

impl RevocationListener for CloseRevokedSockets {
    fn revoked(&self, sessions: &[SessionId]) {
        for session in sessions {
            let hub = self.0.clone();
            let session = (*session).into();
            tokio::spawn(async move {
                if let Err(error) = hub.close_session(session, "session revoked").await {
                    // This node's sockets are closed regardless; others re-check their
                    // sessions every `ws.session_check_interval_secs`.
                    tracing::warn!(%error, "revocation not broadcast to other nodes");
                }
            });
        }
    }
}
