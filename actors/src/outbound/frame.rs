//! One frame as it sits in the queue: a server frame's header (never masked) and its payload,
//! and how much of both has been written; the two slices still to write. Plus the byte-safe
//! cut of a close reason.

use actix_http::ws::OpCode;
use bytes::Bytes;

/// One frame: its header and payload, and how much of both has been written.
pub(super) struct Chunk {
    pub(super) head: Head,
    pub(super) body: Bytes,
    pub(super) written: usize,
}

/// A server frame's header (never masked): at most 10 bytes.
#[derive(Clone, Copy)]
pub(super) struct Head {
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
    pub(super) fn new(op: OpCode, body: Bytes) -> Self {
        Self {
            head: Head::new(op, body.len()),
            body,
            written: 0,
        }
    }

    pub(super) fn len(&self) -> usize {
        usize::from(self.head.len) + self.body.len()
    }

    pub(super) fn remaining(&self) -> usize {
        self.len() - self.written
    }

    /// The unwritten parts, as at most two slices.
    pub(super) fn slices(&self) -> [&[u8]; 2] {
        let head = self.head.as_slice();
        if self.written < head.len() {
            [&head[self.written..], &self.body]
        } else {
            [&[], &self.body[self.written - head.len()..]]
        }
    }
}

/// The longest prefix of `text` of at most `max` bytes that ends on a character boundary.
pub(super) fn utf8_prefix(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}
