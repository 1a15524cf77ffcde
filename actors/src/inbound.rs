//! A connection's inbound side: the client's frames, read from the socket into a buffer that is
//! released whenever it holds no partial frame.
//!
//! ```text
//! socket ─▶ read into the thread's scratch buffer ─▶ connection buffer ─▶ ws::Codec ─▶ Incoming
//!                                                    (freed when empty)   (continuations joined,
//!                                                                          UTF-8 checked)
//! ```
//!
//! An idle connection keeps no read buffer: bytes are read into one scratch buffer per thread
//! (as uWebSockets does) and only a partial frame is copied into the connection's own buffer.

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use actix_codec::Decoder;
use actix_http::ws::{Codec, Frame, Item, ProtocolError};
use bytes::{Bytes, BytesMut};
use bytestring::ByteString;
use futures_util::Stream;

use crate::outbound::Conn;

/// What a client sent.
#[derive(Debug)]
pub(crate) enum Incoming {
    Text(ByteString),
    Binary,
    Ping(Bytes),
    Pong,
    Close,
}

#[derive(Debug)]
pub(crate) enum InboundError {
    /// A frame, or continuation frames joined, over the limit.
    TooBig,
    /// Not valid WebSocket (or text that is not UTF-8).
    Protocol(String),
}

/// Bytes read per `read` at most.
const SCRATCH: usize = 16 * 1024;

thread_local! {
    static SCRATCH_BUF: RefCell<Box<[u8]>> = RefCell::new(vec![0; SCRATCH].into_boxed_slice());
}

pub(crate) struct Inbound {
    conn: Arc<Conn>,
    buf: BytesMut,
    codec: Codec,
    /// A message arriving in continuation frames: text or binary, and what came so far.
    joining: Option<(bool, BytesMut)>,
    max_message: usize,
    done: bool,
}

impl Inbound {
    /// `leftover`: bytes the HTTP layer had read past the handshake.
    pub(crate) fn new(
        conn: Arc<Conn>,
        leftover: BytesMut,
        max_frame: usize,
        max_message: usize,
    ) -> Self {
        Self {
            conn,
            buf: leftover,
            codec: Codec::new().max_size(max_frame),
            joining: None,
            max_message,
            done: false,
        }
    }

    fn frame(&mut self, frame: Frame) -> Option<Result<Incoming, InboundError>> {
        let text = |bytes: Bytes| {
            ByteString::try_from(bytes)
                .map(Incoming::Text)
                .map_err(|_| InboundError::Protocol("text frame is not UTF-8".into()))
        };
        Some(match frame {
            Frame::Text(bytes) => text(bytes),
            Frame::Binary(_) => Ok(Incoming::Binary),
            Frame::Ping(bytes) => Ok(Incoming::Ping(bytes)),
            Frame::Pong(_) => Ok(Incoming::Pong),
            Frame::Close(_) => Ok(Incoming::Close),
            Frame::Continuation(Item::FirstText(bytes)) => {
                self.joining = Some((true, BytesMut::from(&bytes[..])));
                return self.check_joined();
            }
            Frame::Continuation(Item::FirstBinary(bytes)) => {
                self.joining = Some((false, BytesMut::from(&bytes[..])));
                return self.check_joined();
            }
            Frame::Continuation(Item::Continue(bytes)) => {
                if let Some((_, joined)) = &mut self.joining {
                    joined.extend_from_slice(&bytes);
                }
                return self.check_joined();
            }
            Frame::Continuation(Item::Last(bytes)) => {
                let Some((is_text, mut joined)) = self.joining.take() else {
                    return Some(Err(InboundError::Protocol(
                        "continuation not started".into(),
                    )));
                };
                joined.extend_from_slice(&bytes);
                if joined.len() > self.max_message {
                    return Some(Err(InboundError::TooBig));
                }
                if is_text {
                    text(joined.freeze())
                } else {
                    Ok(Incoming::Binary)
                }
            }
        })
    }

    fn check_joined(&self) -> Option<Result<Incoming, InboundError>> {
        match &self.joining {
            Some((_, joined)) if joined.len() > self.max_message => Some(Err(InboundError::TooBig)),
            _ => None,
        }
    }

    /// Reads what the socket has; `Ok(false)` at the end of the stream.
    fn read(&mut self) -> io::Result<bool> {
        SCRATCH_BUF.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            loop {
                match self.conn.stream().try_read(&mut scratch) {
                    Ok(0) => return Ok(false),
                    Ok(n) => {
                        self.buf.extend_from_slice(&scratch[..n]);
                        if n < scratch.len() {
                            return Ok(true);
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        })
    }
}

impl Stream for Inbound {
    type Item = Result<Incoming, InboundError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            match this.codec.decode(&mut this.buf) {
                Ok(Some(frame)) => {
                    if let Some(item) = this.frame(frame) {
                        if item.is_err() {
                            this.done = true;
                        }
                        return Poll::Ready(Some(item));
                    }
                    continue;
                }
                Ok(None) => {
                    if this.buf.is_empty() && this.buf.capacity() > 0 {
                        // Nothing partial held: give the memory back while the client is idle.
                        this.buf = BytesMut::new();
                    }
                }
                Err(ProtocolError::Overflow) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(InboundError::TooBig)));
                }
                Err(error) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(InboundError::Protocol(error.to_string()))));
                }
            }
            if ready!(this.conn.stream().poll_read_ready(cx)).is_err() {
                this.done = true;
                continue;
            }
            match this.read() {
                Ok(true) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Ok(false) | Err(_) => this.done = true,
            }
        }
    }
}
