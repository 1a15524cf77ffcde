//! A connection's outbound side: frames written straight to the socket by whoever sends them.
//!
//! ```text
//! RoomActor / SessionActor ──push──▶ Conn (lock) ── nothing queued? ──▶ try_write(header, text) ──▶ socket
//!                                        │ socket full, or frames already queued
//!                                        └──▶ pending (bounded) ──▶ flush task ──▶ socket
//! ```
//!
//! There is no writer task per connection and no channel per frame: a room's fan-out writes each
//! member's frame with one non-blocking `sendmsg` (the WebSocket header and the event's shared
//! text), on the room's thread. Only when the kernel's send buffer is full are frames queued; then
//! one flush task is spawned on the connection's runtime, writes the queue as the socket drains
//! and ends when the queue is empty. An idle connection holds no buffer and no task.
//!
//! Producers never wait: a queue over `ws.outbound_queue` frames or `ws.outbound_queue_bytes`
//! bytes means the client is not reading, and the connection is closed with `TOO_SLOW` instead of
//! buffering without bound. A close overtakes queued frames (only a frame already half written is
//! finished, or the stream would be corrupt), is written within `ws.close_grace_ms`, then the
//! socket is shut down for writing and drained until the client closes (so unread input does
//! not turn the close into a reset that could discard the close frame).
//!
//! This file holds the sending half (`Outbound`); `conn.rs` the socket, its queue, the push,
//! the close and the flush task; `frame.rs` a frame's bytes (header, payload, what is written).

use std::sync::Arc;

use bytes::Bytes;
use bytestring::ByteString;

use actix_http::ws::OpCode;

mod conn;
mod frame;

pub use conn::PushError;
pub(crate) use conn::{Conn, ConnLimits};

/// A connection's id on this node (what rooms know their members by).
pub type ConnId = u64;

/// The sending half; cheap to clone (room actors hold one per member).
#[derive(Clone)]
pub struct Outbound {
    conn: Arc<Conn>,
}

impl Outbound {
    pub(crate) fn new(conn: Arc<Conn>) -> Self {
        Self { conn }
    }

    pub fn push_text(&self, frame: ByteString) -> Result<(), PushError> {
        self.conn.push(OpCode::Text, frame.into_bytes())
    }

    pub(crate) fn ping(&self, payload: Bytes) -> Result<(), PushError> {
        self.conn.push(OpCode::Ping, payload)
    }

    pub(crate) fn pong(&self, payload: Bytes) -> Result<(), PushError> {
        self.conn.push(OpCode::Pong, payload)
    }

    /// Sends a close frame and ends the connection. The first reason wins.
    pub fn close(&self, code: u16, reason: &str) {
        self.conn.close(code, reason);
    }

    pub fn is_closing(&self) -> bool {
        self.conn.is_closing()
    }
}

#[cfg(test)]
pub(crate) mod testing;
