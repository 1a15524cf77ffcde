//! The limits the actors obey, filled from `[ws]` in `config.toml` by the server.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct WsLimits {
    /// Largest single WebSocket frame a client may send.
    pub max_frame_bytes: usize,
    /// Largest message (continuation frames joined) a client may send.
    pub max_message_bytes: usize,
    /// Frames waiting to be written to one client; a client that lets it fill up is cut off.
    pub outbound_queue: usize,
    /// Bytes of text queued for one client, at most (the same cut-off as a full queue).
    pub outbound_queue_bytes: usize,
    pub heartbeat_interval: Duration,
    /// No frame (pong included) from the client for this long: the connection is closed.
    pub client_timeout: Duration,
    /// How often a connection re-checks that its session is still valid (expiry, and revocations
    /// a lost broadcast did not carry).
    pub session_check_interval: Duration,
    pub max_connections_per_node: usize,
    pub max_connections_per_user: usize,
    pub max_rooms_per_connection: usize,
    /// Events waiting for one room actor; beyond it events are dropped and then refetched from
    /// the history.
    pub room_mailbox: usize,
    /// How long a closing connection may take to send its close frame.
    pub close_grace: Duration,
    /// How often presence entries are renewed (well inside the broker's presence TTL).
    pub presence_interval: Duration,
    /// Request/reply between nodes: how long to wait for the answer.
    pub node_request_timeout: Duration,
    /// A typing indicator not renewed for this long stops.
    pub typing_ttl: Duration,
    /// Commands one connection may send per second (a token bucket), and the bucket's size.
    pub command_rate_per_sec: f64,
    pub command_burst: u32,
}

impl Default for WsLimits {
    fn default() -> Self {
        Self {
            max_frame_bytes: 64 * 1024,
            max_message_bytes: 256 * 1024,
            outbound_queue: 256,
            outbound_queue_bytes: 1024 * 1024,
            heartbeat_interval: Duration::from_secs(15),
            client_timeout: Duration::from_secs(45),
            session_check_interval: Duration::from_secs(300),
            max_connections_per_node: 20_000,
            max_connections_per_user: 20,
            max_rooms_per_connection: 100,
            room_mailbox: 4096,
            close_grace: Duration::from_secs(1),
            presence_interval: Duration::from_secs(10),
            node_request_timeout: Duration::from_secs(2),
            typing_ttl: Duration::from_secs(10),
            command_rate_per_sec: 20.0,
            command_burst: 40,
        }
    }
}
