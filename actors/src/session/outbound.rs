//! A connection's outbound side: a bounded queue of frames and the task that writes them.
//!
//! ```text
//! RoomActor / SessionActor ──try_send──▶ [bounded queue] ──▶ writer task ──▶ actix_ws::Session
//! ```
//!
//! Producers never wait: a full queue means the client is not reading, and the connection is
//! closed with `TOO_SLOW` instead of buffering without bound. Closing is a separate signal so it
//! overtakes queued frames and a writer stuck on a client that does not read.

use std::sync::Arc;
use std::time::Duration;

use actix_ws::{CloseCode, CloseReason, Session};
use bytes::Bytes;
use bytestring::ByteString;
use tokio::sync::{mpsc, watch};

use crate::protocol::close;

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
}

pub(crate) struct Writer {
    rx: mpsc::Receiver<Out>,
    close: watch::Receiver<Option<CloseReason>>,
}

pub(crate) fn channel(capacity: usize) -> (Outbound, Writer) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let (close_tx, close_rx) = watch::channel(None);
    (
        Outbound {
            tx,
            close: Arc::new(close_tx),
        },
        Writer {
            rx,
            close: close_rx,
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
        match self.tx.try_send(out) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.close(close::TOO_SLOW, "too slow: outbound queue full");
                Err(PushError::Full)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(PushError::Closed),
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
