//! A connection over a real loopback socket, and its client end reading frames (actor tests).

use std::time::Duration;

use tokio::io::AsyncReadExt;

use super::{Conn, ConnLimits, Outbound};

pub(crate) struct Peer {
    stream: tokio::net::TcpStream,
    buf: Vec<u8>,
}

/// An `Outbound` over a loopback socket, and the client end. Call on an actix arbiter.
pub(crate) async fn pair(max_frames: usize, max_bytes: usize) -> (Outbound, Peer) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap());
    let (client, accepted) = tokio::join!(client, listener.accept());
    let conn = Conn::new(
        accepted.unwrap().0,
        ConnLimits {
            max_frames,
            max_bytes,
            grace: Duration::from_secs(1),
        },
    );
    (
        Outbound::new(conn),
        Peer {
            stream: client.unwrap(),
            buf: Vec::new(),
        },
    )
}

impl Peer {
    /// The next text frame (skipping pings and pongs), waiting up to a second.
    pub(crate) async fn next_text(&mut self) -> Option<String> {
        loop {
            if let Some((op, payload, used)) = parse(&self.buf) {
                self.buf.drain(..used);
                match op {
                    1 => return Some(String::from_utf8(payload).unwrap()),
                    8 => return None,
                    _ => continue,
                }
            }
            let mut chunk = [0u8; 4096];
            let read =
                tokio::time::timeout(Duration::from_secs(1), self.stream.read(&mut chunk)).await;
            match read {
                Ok(Ok(n)) if n > 0 => self.buf.extend_from_slice(&chunk[..n]),
                _ => return None,
            }
        }
    }
}

/// One unmasked frame from the front of `buf`: opcode, payload, bytes used.
fn parse(buf: &[u8]) -> Option<(u8, Vec<u8>, usize)> {
    let op = buf.first()? & 0x0f;
    let (len, at) = match buf.get(1)? & 0x7f {
        126 => (
            usize::from(u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?])),
            4,
        ),
        127 => (
            u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?) as usize,
            10,
        ),
        n => (usize::from(n), 2),
    };
    let payload = buf.get(at..at + len)?.to_vec();
    Some((op, payload, at + len))
}
