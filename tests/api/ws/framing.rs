//! The socket's own framing (ADR 21: after the handshake the server reads and writes the TCP
//! stream itself), from a client that writes raw bytes: a frame in one write with the handshake,
//! a frame dribbled in one byte at a time, several frames and a ping in one write, a message in
//! continuation frames split across writes. Each command must be answered, in order.

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::user;
use crate::auth::COOKIE;
use crate::helpers::spawn_app;

/// A client frame (masked, as clients must): `op` 1 text, 0 continuation, 9 ping.
fn frame(op: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut out = vec![if fin { 0x80 | op } else { op }];
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

fn command(id: &str) -> Vec<u8> {
    frame(
        1,
        true,
        format!(r#"{{"id":"{id}","cmd":"leaveChatRoom","data":{{"chatId":"1"}}}}"#).as_bytes(),
    )
}

/// Reads server frames (unmasked) from the socket: `(opcode, payload)`.
struct Reader {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Reader {
    async fn next(&mut self) -> (u8, Vec<u8>) {
        loop {
            if self.buf.len() >= 2 {
                let op = self.buf[0] & 0x0f;
                let (len, at) = match self.buf[1] & 0x7f {
                    126 if self.buf.len() >= 4 => (
                        usize::from(u16::from_be_bytes([self.buf[2], self.buf[3]])),
                        4,
                    ),
                    126 => (usize::MAX, 0),
                    127 => panic!("no frame here is that large"),
                    n => (usize::from(n), 2),
                };
                if len != usize::MAX && self.buf.len() >= at + len {
                    let payload = self.buf[at..at + len].to_vec();
                    self.buf.drain(..at + len);
                    return (op, payload);
                }
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(Duration::from_secs(5), self.stream.read(&mut chunk))
                .await
                .expect("a frame within 5 s")
                .unwrap();
            assert!(n > 0, "the server closed the connection");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// The next ack's id.
    async fn ack(&mut self) -> String {
        loop {
            let (op, payload) = self.next().await;
            if op == 1 {
                let value: Value = serde_json::from_slice(&payload).unwrap();
                if let Some(id) = value["ack"].as_str() {
                    assert_eq!(value["success"], true, "{value}");
                    return id.to_owned();
                }
            }
        }
    }
}

#[tokio::test]
async fn frames_are_read_however_the_bytes_arrive() {
    let app = spawn_app().await;
    let sam = user(&app, "Sam").await;
    let addr = app.address.trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    stream.set_nodelay(true).unwrap();

    // The handshake and a first command in one write: the command's bytes were read by the
    // HTTP layer with the request and must reach the socket's reader.
    let mut first = format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Cookie: {COOKIE}={}\r\n\r\n",
        sam.token
    )
    .into_bytes();
    first.extend(command("a"));
    stream.write_all(&first).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
        "{head}"
    );
    let mut reader = Reader {
        stream,
        buf: Vec::new(),
    };
    assert_eq!(reader.ack().await, "a");

    // One frame, one byte per write (the pauses make each byte its own read on the server;
    // without them the kernel may join them).
    for byte in command("b") {
        reader.stream.write_all(&[byte]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_eq!(reader.ack().await, "b");

    // Two commands and a ping in one write: both acks in order, and the pong.
    let mut many = command("c");
    many.extend(frame(9, true, b"hello"));
    many.extend(command("d"));
    reader.stream.write_all(&many).await.unwrap();
    let mut acks = Vec::new();
    let mut pong = None;
    while acks.len() < 2 || pong.is_none() {
        let (op, payload) = reader.next().await;
        match op {
            1 => {
                let value: Value = serde_json::from_slice(&payload).unwrap();
                acks.push(value["ack"].as_str().unwrap().to_owned());
            }
            10 => pong = Some(payload),
            _ => {}
        }
    }
    assert_eq!(acks, ["c", "d"]);
    assert_eq!(pong.as_deref(), Some(&b"hello"[..]));

    // A message in three frames, each split across two writes (paused apart, as above).
    let text = br#"{"id":"e","cmd":"leaveChatRoom","data":{"chatId":"1"}}"#;
    let (one, rest) = text.split_at(10);
    let (two, three) = rest.split_at(20);
    for (op, fin, part) in [(1, false, one), (0, false, two), (0, true, three)] {
        let bytes = frame(op, fin, part);
        let (a, b) = bytes.split_at(bytes.len() / 2);
        reader.stream.write_all(a).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        reader.stream.write_all(b).await.unwrap();
    }
    assert_eq!(reader.ack().await, "e");

    // A close from the client is answered with a close, then the server ends the stream.
    reader
        .stream
        .write_all(&frame(8, true, &1000u16.to_be_bytes()))
        .await
        .unwrap();
    loop {
        let (op, payload) = reader.next().await;
        if op == 8 {
            assert_eq!(&payload[..2], &1000u16.to_be_bytes());
            break;
        }
    }
    let mut rest = Vec::new();
    let end = tokio::time::timeout(Duration::from_secs(5), reader.stream.read_to_end(&mut rest))
        .await
        .expect("the server ends the connection after its close frame");
    assert!(end.is_ok(), "{end:?}");
}
