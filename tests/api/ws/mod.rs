//! The WebSocket protocol against the real server with a real client (tokio-tungstenite):
//! `protocol` (handshake, commands, acks, events, joins refused; single-node and cluster),
//! `cluster` (three nodes sharing Redis: ordering, recovery, presence, Redis connection killed,
//! revocation, node request/reply), `limits` (slow clients, frame size, connection limits,
//! shutdown), `framing` (raw bytes: frames split and joined across writes, the handshake and a
//! frame in one write). Shared here: the client, the strict types of every frame the server
//! sends (`wire`), and chats to join.

mod cluster;
mod framing;
mod limits;
mod protocol;
mod wire;

use std::collections::VecDeque;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

use crate::auth::{COOKIE, sign_up};
use crate::helpers::SendReply;
use crate::helpers::{TestApp, random_suffix};
use wire::{Joined, ServerFrame};

pub const SYSTEM_KEY: &str = "test-system-key-0123456789";

/// A WebSocket client that keeps events that arrive while it waits for an ack.
pub struct Ws {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    events: VecDeque<Value>,
    next_id: u64,
    /// The close code, once the server closed (`Some(1006)` for a connection that just ended).
    pub closed: Option<u16>,
}

/// Opens `/ws` on `base` (http://host:port) with extra headers; the HTTP status on refusal.
pub async fn try_open(base: &str, query: &str, headers: &[(&str, &str)]) -> Result<Ws, u16> {
    let url = format!("{}/ws{query}", base.replacen("http", "ws", 1));
    let mut request = url.into_client_request().unwrap();
    for (name, value) in headers {
        request.headers_mut().insert(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    match connect_async(request).await {
        Ok((stream, _)) => Ok(Ws {
            stream,
            events: VecDeque::new(),
            next_id: 1,
            closed: None,
        }),
        Err(WsError::Http(response)) => Err(response.status().as_u16()),
        Err(other) => panic!("WebSocket connect failed: {other}"),
    }
}

/// Opens `/ws` with a session cookie.
pub async fn open(base: &str, token: &str) -> Ws {
    try_open(base, "", &[("cookie", &format!("{COOKIE}={token}"))])
        .await
        .expect("WebSocket opens")
}

impl Ws {
    pub async fn send_text(&mut self, text: &str) {
        self.stream.send(Message::Text(text.into())).await.unwrap();
    }

    /// Sends one text message as several frames (a first frame, then continuations).
    pub async fn send_fragmented(&mut self, parts: &[String]) {
        use tokio_tungstenite::tungstenite::protocol::frame::Frame;
        use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
        for (i, part) in parts.iter().enumerate() {
            let opcode = if i == 0 { Data::Text } else { Data::Continue };
            let frame = Frame::message(
                part.clone().into_bytes(),
                OpCode::Data(opcode),
                i + 1 == parts.len(),
            );
            if self.stream.send(Message::Frame(frame)).await.is_err() {
                return; // the server may close before the last part
            }
        }
    }

    /// The next JSON frame, `None` once the connection is closed.
    async fn read(&mut self, within: Duration) -> Option<Value> {
        loop {
            let next = match tokio::time::timeout(within, self.stream.next()).await {
                Ok(next) => next,
                Err(_) => return None,
            };
            match next {
                Some(Ok(Message::Text(text))) => {
                    // Every frame must fit the protocol's typed definitions.
                    if let Err(error) = ServerFrame::parse(&text) {
                        panic!("frame outside the protocol ({error}): {text}");
                    }
                    return Some(serde_json::from_str(&text).unwrap());
                }
                Some(Ok(Message::Close(frame))) => {
                    self.closed = Some(frame.map_or(1005, |f| f.code.into()));
                    return None;
                }
                Some(Ok(_)) => continue, // pings are answered by the library
                Some(Err(_)) | None => {
                    self.closed.get_or_insert(1006);
                    return None;
                }
            }
        }
    }

    /// Sends a command and waits for its ack (events meanwhile are kept for `event`).
    pub async fn command(&mut self, cmd: &str, data: Value) -> Value {
        let id = format!("c{}", self.next_id);
        self.next_id += 1;
        self.send_text(&json!({"id": id, "cmd": cmd, "data": data}).to_string())
            .await;
        loop {
            let frame = self
                .read(Duration::from_secs(10))
                .await
                .unwrap_or_else(|| panic!("no ack for {cmd} (closed: {:?})", self.closed));
            if frame["ack"] == id {
                return frame;
            }
            self.events.push_back(frame);
        }
    }

    /// Joins and asserts success; returns the ack's data.
    pub async fn join(&mut self, cmd: &str, data: Value) -> Value {
        let ack = self.command(cmd, data).await;
        assert_eq!(ack["success"], true, "{ack}");
        serde_json::from_value::<Joined>(ack["data"].clone()).expect("a join ack's data");
        ack["data"].clone()
    }

    /// The next event (waiting up to 10 s).
    pub async fn event(&mut self) -> Value {
        if let Some(event) = self.events.pop_front() {
            return event;
        }
        self.read(Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("no event (closed: {:?})", self.closed))
    }

    /// The next event if one arrives within `within`.
    pub async fn next_within(&mut self, within: Duration) -> Option<Value> {
        if let Some(event) = self.events.pop_front() {
            return Some(event);
        }
        self.read(within).await
    }

    /// Whether an event arrives within `within`.
    pub async fn quiet_for(&mut self, within: Duration) -> bool {
        self.events.is_empty() && self.read(within).await.is_none() && self.closed.is_none()
    }

    /// Reads until the server closes; the close code.
    pub async fn close_code(&mut self, within: Duration) -> Option<u16> {
        let deadline = tokio::time::Instant::now() + within;
        while self.closed.is_none() && tokio::time::Instant::now() < deadline {
            self.read(deadline - tokio::time::Instant::now()).await;
        }
        self.closed
    }
}

/// Settings for WebSocket tests: the admin routes on (tests publish through them).
pub fn with_system_key(s: &mut vrooli::config::Settings) {
    s.admin.system_key = SYSTEM_KEY.to_string().into();
}

/// `GET` an admin route of `base` with the system key.
pub async fn admin_get(client: &reqwest::Client, base: &str, path: &str) -> crate::helpers::Reply {
    let request = client
        .get(format!("{base}/api/v2/admin{path}"))
        .bearer_auth(SYSTEM_KEY);
    crate::helpers::Reply::of(request).await
}

/// Publishes through `base`'s admin route; returns the answer's data.
pub async fn publish(client: &reqwest::Client, base: &str, room: &str, data: Value) -> Value {
    let response = client
        .post(format!("{base}/api/v2/admin/rooms/publish"))
        .bearer_auth(SYSTEM_KEY)
        .json(&json!({"room": room, "type": "chat/message/added", "data": data}))
        .reply()
        .await;
    assert_eq!(response.status, 200);
    response.body["data"].clone()
}

/// A user (signed up through the API): session token and id.
pub struct User {
    pub token: String,
    pub id: String,
}

pub async fn user(app: &TestApp, name: &str) -> User {
    let (token, id, _) = sign_up(app, None, name).await;
    User { token, id }
}

/// A chat created by `creator` with `participants`; its id.
pub async fn chat(app: &TestApp, creator: &User, participants: &[&User], open: bool) -> String {
    let id: i64 = rand_id();
    sqlx::query(
        "INSERT INTO chats (id, public_id, creator_id, open_to_anyone_with_invite) VALUES ($1, $2, $3, $4)",
    )
    .bind(id)
    .bind(&random_suffix()[..10])
    .bind(creator.id.parse::<i64>().unwrap())
    .bind(open)
    .execute(&app.db.pool)
    .await
    .unwrap();
    for p in participants {
        sqlx::query("INSERT INTO chat_participants (id, chat_id, user_id) VALUES ($1, $2, $3)")
            .bind(rand_id())
            .bind(id)
            .bind(p.id.parse::<i64>().unwrap())
            .execute(&app.db.pool)
            .await
            .unwrap();
    }
    id.to_string()
}

fn rand_id() -> i64 {
    use std::sync::atomic::{AtomicI64, Ordering};
    static NEXT: AtomicI64 = AtomicI64::new(1);
    (std::process::id() as i64) << 32 | NEXT.fetch_add(1, Ordering::Relaxed)
}
