//! A connection's outbound side: a bounded queue of frames and the task that writes them.
//!
//! ```text
//! RoomActor / SessionActor ──try_send──▶ [bounded queue] ──▶ writer task ──▶ actix_ws::Session
//! ```
//!
//! Producers never wait: a full queue means the client is not reading, and the connection is
//! closed with `TOO_SLOW` instead of buffering without bound. Full is counted twice: in frames
//! (`ws.outbound_queue`) and in bytes of text queued (`ws.outbound_queue_bytes`), so a slow
//! client cannot pin hundreds of large frames. Closing is a separate signal so it
//! overtakes queued frames and a writer stuck on a client that does not read.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use actix_ws::{CloseCode, CloseReason, Session};
use bytes::Bytes;
use bytestring::ByteString;
use tokio::sync::{mpsc, watch};

use crate::protocol::close;

/// A connection's id on this node (what rooms know their members by).
pub type ConnId = u64;

pub(crate) enum Out {
    Text(ByteString),
    Ping(Bytes),
    Pong(Bytes),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushError {
    /// The queue was full; the connection is being closed.
    Full,
    Closed,
}

/// The sending half; cheap to clone (room actors hold one per member).
#[derive(Clone)]
pub struct Outbound {
    tx: mpsc::Sender<Out>,
    close: Arc<watch::Sender<Option<CloseReason>>>,
    /// Bytes of text frames queued and not yet written.
    queued: Arc<AtomicUsize>,
    max_bytes: usize,
}

pub(crate) struct Writer {
    rx: mpsc::Receiver<Out>,
    close: watch::Receiver<Option<CloseReason>>,
    queued: Arc<AtomicUsize>,
}

pub(crate) fn channel(capacity: usize, max_bytes: usize) -> (Outbound, Writer) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let (close_tx, close_rx) = watch::channel(None);
    let queued = Arc::new(AtomicUsize::new(0));
    (
        Outbound {
            tx,
            close: Arc::new(close_tx),
            queued: Arc::clone(&queued),
            max_bytes: max_bytes.max(1),
        },
        Writer {
            rx,
            close: close_rx,
            queued,
        },
    )
}

impl Outbound {
    pub fn push_text(&self, frame: ByteString) -> Result<(), PushError> {
        self.push(Out::Text(frame))
    }

    pub(crate) fn push(&self, out: Out) -> Result<(), PushError> {
        if self.is_closing() {
            return Err(PushError::Closed);
        }
        let bytes = match &out {
            Out::Text(text) => text.len(),
            _ => 0,
        };
        // A frame larger than the whole budget still goes to an empty queue (it fits the
        // message limits; the budget is about a client falling behind).
        let before = self.queued.fetch_add(bytes, Ordering::AcqRel);
        if before > 0 && before + bytes > self.max_bytes {
            self.queued.fetch_sub(bytes, Ordering::AcqRel);
            self.close(close::TOO_SLOW, "too slow: outbound bytes over the limit");
            return Err(PushError::Full);
        }
        match self.tx.try_send(out) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.queued.fetch_sub(bytes, Ordering::AcqRel);
                self.close(close::TOO_SLOW, "too slow: outbound queue full");
                Err(PushError::Full)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.queued.fetch_sub(bytes, Ordering::AcqRel);
                Err(PushError::Closed)
            }
        }
    }

    /// Asks the writer to send a close frame and end the connection. The first reason wins.
    pub fn close(&self, code: u16, reason: &str) {
        let reason = CloseReason {
            code: CloseCode::from(code),
            description: Some(reason.to_owned()),
        };
        self.close.send_if_modified(|current| {
            if current.is_none() {
                *current = Some(reason);
                true
            } else {
                false
            }
        });
    }

    pub fn is_closing(&self) -> bool {
        self.close.borrow().is_some()
    }
}

impl Writer {
    /// Writes frames until the queue ends or a close is asked for, then sends the close frame
    /// (waiting at most `grace` for a client that does not read) and drops the session, which
    /// ends the connection.
    pub(crate) async fn run(mut self, mut session: Session, grace: Duration) {
        loop {
            let out = tokio::select! {
                biased;
                _ = self.close.changed() => break,
                out = self.rx.recv() => match out {
                    Some(out) => out,
                    None => break,
                },
            };
            if let Out::Text(text) = &out {
                self.queued.fetch_sub(text.len(), Ordering::AcqRel);
            }
            let sent = tokio::select! {
                biased;
                _ = self.close.changed() => break,
                sent = async {
                    match out {
                        Out::Text(text) => session.text(text).await,
                        Out::Ping(bytes) => session.ping(&bytes).await,
                        Out::Pong(bytes) => session.pong(&bytes).await,
                    }
                } => sent,
            };
            if sent.is_err() {
                return; // the connection is gone
            }
        }
        let reason = self
            .close
            .borrow()
            .clone()
            .unwrap_or_else(|| CloseCode::Normal.into());
        let _ = tokio::time::timeout(grace, session.close(Some(reason))).await;
    }
}

#[cfg(test)]
impl Writer {
    /// The next text frame queued (skipping pings and pongs), waiting up to a second.
    pub(crate) async fn next_text(&mut self) -> Option<String> {
        loop {
            match tokio::time::timeout(Duration::from_secs(1), self.rx.recv()).await {
                Ok(Some(Out::Text(text))) => return Some(text.to_string()),
                Ok(Some(_)) => continue,
                _ => return None,
            }
        }
    }
}
