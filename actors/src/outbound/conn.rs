//! The socket and its queue: a push writes straight to the socket when nothing is queued, else
//! queues (closing a connection whose queue is over its budget); the flush task writes the
//! queue as the socket drains; a close overtakes queued frames and, once written, ends the
//! connection (shut down for writing, drained until the client closes).

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use actix_http::ws::OpCode;
use bytes::Bytes;
use tokio::net::TcpStream;
use tokio::sync::Notify;

use super::frame::{Chunk, utf8_prefix};
use crate::protocol::close;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushError {
    /// The queue was full; the connection is being closed.
    Full,
    Closed,
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

    pub(super) fn push(self: &Arc<Self>, op: OpCode, body: Bytes) -> Result<(), PushError> {
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

    pub(super) fn close(self: &Arc<Self>, code: u16, reason: &str) {
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

    pub(super) fn is_closing(&self) -> bool {
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
