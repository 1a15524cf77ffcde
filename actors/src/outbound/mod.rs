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

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use actix_http::ws::OpCode;
use bytes::Bytes;
use bytestring::ByteString;
use tokio::net::TcpStream;
use tokio::sync::Notify;

use crate::protocol::close;

/// A connection's id on this node (what rooms know their members by).
pub type ConnId = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushError {
    /// The queue was full; the connection is being closed.
    Full,
    Closed,
}

/// The sending half; cheap to clone (room actors hold one per member).
#[derive(Clone)]
pub struct Outbound {
    conn: Arc<Conn>,
}

/// The socket and what is waiting to be written to it.
pub(crate) struct Conn {
    stream: TcpStream,
    /// The runtime whose reactor the socket is registered with (the accepting worker's): flush
    /// tasks run there.
    runtime: tokio::runtime::Handle,
    state: Mutex<State>,
    /// Wakes a flush task waiting on a full socket when a close is asked for.
    closing: Notify,
    max_frames: usize,
    max_bytes: usize,
    grace: Duration,
}

#[derive(Default)]
struct State {
    pending: VecDeque<Chunk>,
    /// Bytes of `pending` not yet written.
    pending_bytes: usize,
    /// A flush task is running (it owns writing until `pending` is empty).
    flushing: bool,
    /// A close frame is queued or written: nothing more is accepted.
    closing: bool,
    /// The socket failed or was shut down.
    gone: bool,
}

/// One frame: its header and payload, and how much of both has been written.
struct Chunk {
    head: Head,
    body: Bytes,
    written: usize,
}

/// A server frame's header (never masked): at most 10 bytes.
#[derive(Clone, Copy)]
struct Head {
    bytes: [u8; 10],
    len: u8,
}

impl Head {
    fn new(op: OpCode, payload: usize) -> Self {
        let mut bytes = [0u8; 10];
        bytes[0] = 0x80 | u8::from(op);
        let len = if payload < 126 {
            bytes[1] = payload as u8;
            2
        } else if payload <= usize::from(u16::MAX) {
            bytes[1] = 126;
            bytes[2..4].copy_from_slice(&(payload as u16).to_be_bytes());
            4
        } else {
            bytes[1] = 127;
            bytes[2..10].copy_from_slice(&(payload as u64).to_be_bytes());
            10
        };
        Self { bytes, len }
    }

    fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl Chunk {
    fn new(op: OpCode, body: Bytes) -> Self {
        Self {
            head: Head::new(op, body.len()),
            body,
            written: 0,
        }
    }

    fn len(&self) -> usize {
        usize::from(self.head.len) + self.body.len()
    }

    fn remaining(&self) -> usize {
        self.len() - self.written
    }

    /// The unwritten parts, as at most two slices.
    fn slices(&self) -> [&[u8]; 2] {
        let head = self.head.as_slice();
        if self.written < head.len() {
            [&head[self.written..], &self.body]
        } else {
            [&[], &self.body[self.written - head.len()..]]
        }
    }
}

/// What a write pass over the queue ended with.
enum Written {
    /// Everything queued is written.
    Empty {
        closing: bool,
    },
    /// The socket is full.
    Blocked,
    Gone,
}

/// Frames written per `sendmsg` at most (well under the kernel's `IOV_MAX`).
const BATCH: usize = 32;

pub(crate) struct ConnLimits {
    pub max_frames: usize,
    pub max_bytes: usize,
    pub grace: Duration,
}

impl Conn {
    /// Wraps an upgraded socket; call on the runtime whose reactor it is registered with.
    pub(crate) fn new(stream: TcpStream, limits: ConnLimits) -> Arc<Self> {
        Arc::new(Self {
            stream,
            runtime: tokio::runtime::Handle::current(),
            state: Mutex::new(State::default()),
            closing: Notify::new(),
            max_frames: limits.max_frames.max(1),
            max_bytes: limits.max_bytes.max(1),
            grace: limits.grace,
        })
    }

    pub(crate) fn stream(&self) -> &TcpStream {
        &self.stream
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The state holds plain data; a panic elsewhere cannot leave it half-changed in a way
        // that matters more than the connection it belongs to.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push(self: &Arc<Self>, op: OpCode, body: Bytes) -> Result<(), PushError> {
        let mut state = self.state();
        if state.closing || state.gone {
            return Err(PushError::Closed);
        }
        let mut chunk = Chunk::new(op, body);
        if state.pending.is_empty() {
            // The common case: the socket takes it now, on this thread.
            let [head, body] = chunk.slices();
            match send(&self.stream, &[IoSlice::new(head), IoSlice::new(body)]) {
                Ok(n) if n == chunk.len() => return Ok(()),
                Ok(n) => chunk.written = n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => {
                    state.gone = true;
                    return Err(PushError::Closed);
                }
            }
        } else if state.pending.len() >= self.max_frames
            || state.pending_bytes + chunk.remaining() > self.max_bytes
        {
            // A frame larger than the whole budget still goes to an empty queue (it fits the
            // message limits; the budget is about a client falling behind).
            drop(state);
            self.close(close::TOO_SLOW, "too slow: outbound queue full");
            return Err(PushError::Full);
        }
        state.pending_bytes += chunk.remaining();
        state.pending.push_back(chunk);
        self.start_flush(&mut state);
        Ok(())
    }

    /// Spawns the flush task unless one runs.
    fn start_flush(self: &Arc<Self>, state: &mut State) {
        if state.flushing {
            return;
        }
        state.flushing = true;
        // Spawning onto a runtime that has shut down drops the task: the connection went with it.
        drop(self.runtime.spawn(flush(Arc::clone(self))));
    }

    /// Writes queued frames until the queue is empty or the socket is full.
    fn write_pending(&self) -> Written {
        let mut state = self.state();
        loop {
            if state.gone {
                state.flushing = false;
                return Written::Gone;
            }
            if state.pending.is_empty() {
                state.flushing = false;
                return Written::Empty {
                    closing: state.closing,
                };
            }
            let mut slices = Vec::with_capacity(BATCH * 2);
            for chunk in state.pending.iter().take(BATCH) {
                for part in chunk.slices() {
                    if !part.is_empty() {
                        slices.push(IoSlice::new(part));
                    }
                }
            }
            match send(&self.stream, &slices) {
                Ok(0) => state.gone = true,
                Ok(mut n) => {
                    state.pending_bytes -= n;
                    // The kernel wrote at most what it was given: the queue's front chunks.
                    while let Some(front) = state.pending.front_mut().filter(|_| n > 0) {
                        let left = front.remaining();
                        if n >= left {
                            n -= left;
                            state.pending.pop_front();
                        } else {
                            front.written += n;
                            n = 0;
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Written::Blocked,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => state.gone = true,
            }
        }
    }

    fn close(self: &Arc<Self>, code: u16, reason: &str) {
        let mut state = self.state();
        if state.closing || state.gone {
            return;
        }
        state.closing = true;
        // Overtake queued frames; a half-written one must be finished first.
        let keep = state.pending.front().is_some_and(|c| c.written > 0);
        state.pending.truncate(usize::from(keep));
        state.pending_bytes = state.pending.iter().map(Chunk::remaining).sum();
        // A close frame's payload: the code, then the reason (a control frame holds 125 bytes).
        let mut body = Vec::with_capacity(2 + reason.len());
        body.extend_from_slice(&code.to_be_bytes());
        body.extend_from_slice(utf8_prefix(reason, 123).as_bytes());
        let body = Bytes::from(body);
        let chunk = Chunk::new(OpCode::Close, body);
        state.pending_bytes += chunk.remaining();
        state.pending.push_back(chunk);
        self.start_flush(&mut state);
        drop(state);
        self.closing.notify_one();
    }

    fn is_closing(&self) -> bool {
        let state = self.state();
        state.closing || state.gone
    }

    fn shut_down(&self, how: std::net::Shutdown) {
        let _ = socket2::SockRef::from(&self.stream).shutdown(how);
    }
}

/// Writes with `sendmsg`, not `writev`: a socket written through the VFS pays `fdget_pos` and
/// `vfs_writev` on every call (a tenth of a fan-out's samples). Inside tokio's `try_io`, so a
/// `WouldBlock` clears the socket's readiness as `try_write_vectored` would.
fn send(stream: &TcpStream, slices: &[IoSlice<'_>]) -> io::Result<usize> {
    stream.try_io(tokio::io::Interest::WRITABLE, || {
        socket2::SockRef::from(stream).send_vectored(slices)
    })
}

/// The longest prefix of `text` of at most `max` bytes that ends on a character boundary.
fn utf8_prefix(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Writes the queue as the socket drains; after a close frame, ends the connection.
async fn flush(conn: Arc<Conn>) {
    let mut deadline = None;
    loop {
        match conn.write_pending() {
            Written::Gone => return,
            Written::Empty { closing: false } => return,
            Written::Empty { closing: true } => break,
            Written::Blocked => {
                let closing = conn.state().closing;
                let wait = async {
                    if closing {
                        let at = *deadline
                            .get_or_insert_with(|| tokio::time::Instant::now() + conn.grace);
                        tokio::time::timeout_at(at, conn.stream.writable())
                            .await
                            .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
                    } else {
                        tokio::select! {
                            ready = conn.stream.writable() => ready,
                            // A close was asked for: wait again, now under the grace deadline.
                            _ = conn.closing.notified() => Ok(()),
                        }
                    }
                };
                if wait.await.is_err() {
                    // A client that does not read its close frame within the grace period.
                    let mut state = conn.state();
                    state.gone = true;
                    state.flushing = false;
                    state.pending.clear();
                    state.pending_bytes = 0;
                    drop(state);
                    conn.shut_down(std::net::Shutdown::Both);
                    return;
                }
            }
        }
    }
    // The close frame is out: no more writes; read until the client closes (or the grace
    // period ends) so its unread frames do not turn our close into a reset.
    conn.state().gone = true;
    conn.shut_down(std::net::Shutdown::Write);
    let drain = async {
        let mut sink = [0u8; 1024];
        loop {
            if conn.stream.readable().await.is_err() {
                return;
            }
            match conn.stream.try_read(&mut sink) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
    };
    let _ = tokio::time::timeout(conn.grace, drain).await;
    conn.shut_down(std::net::Shutdown::Both);
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
