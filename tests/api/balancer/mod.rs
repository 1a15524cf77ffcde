//! Through a real HAProxy with the repository's `deploy/haproxy.cfg` (ADR 22): three nodes share
//! PostgreSQL and Redis; sockets and requests go through the balancer only.
//! - `restarts`: a rolling restart, and a node that is a real `vrooli` process killed with -9;
//!   every socket ends with every message exactly once, in order.
//! - `takeover`: what a node killed with -9 held — claimed jobs, a run it owned, its sockets'
//!   presence — is taken over by the others.
//! - `redis`: Redis restarted under load: clients recover or are told of the gap, never silence.
//! - `limits`: rate limits hold across nodes whatever address a client claims.
//! - `mcp`: an agent's MCP requests spread over the nodes make one conversation (stateless).
//!
//! The helpers here: the balancer, a socket that follows its chat as a browser would, posting
//! through the balancer, and a node as a process of its own.

#[path = "../../support/haproxy.rs"]
mod haproxy;
mod limits;
mod mcp;
mod redis;
mod restarts;
mod takeover;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{SendReply, TestApp, wait_until};
use crate::ws::{Ws, open, try_open};

/// HAProxy over `ports`, on a port of its own; stopped when dropped.
pub struct Balancer {
    pub base: String,
    _process: tokio::process::Child,
    dir: PathBuf,
    /// Held while the balancer runs: these tests time what they measure (`helpers::MACHINE`).
    _machine: tokio::sync::MutexGuard<'static, ()>,
}

impl Balancer {
    pub async fn start(ports: &[u16]) -> Self {
        let machine = crate::helpers::MACHINE.lock().await;
        let dir =
            std::env::temp_dir().join(format!("vrooli-lb-{}", crate::helpers::random_suffix()));
        let addresses: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let addresses: Vec<&str> = addresses.iter().map(String::as_str).collect();
        let (process, base) = haproxy::spawn(&addresses, &dir);
        let client = reqwest::Client::new();
        wait_until(Duration::from_secs(10), "the balancer to serve", || async {
            client
                .get(format!("{base}/healthcheck"))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        })
        .await;
        Self {
            base,
            _process: process,
            dir,
            _machine: machine,
        }
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The port of a node's `http://host:port` address.
pub fn port(address: &str) -> u16 {
    address.rsplit(':').next().unwrap().parse().unwrap()
}

/// A socket through the balancer that follows its chat as a browser would: it reconnects with
/// its offset and epoch when closed, and on a gap (a `room/gap` notice, or a rejoin that could
/// not recover) refetches the chat's messages over REST. Messages are kept once each, by id.
pub struct Follower {
    ws: Ws,
    base: String,
    token: String,
    chat: String,
    epoch: String,
    offset: u64,
    messages: Vec<(String, String)>,
    pub gaps: u32,
    pub reconnects: u32,
    http: reqwest::Client,
}

impl Follower {
    pub async fn join(base: &str, token: &str, chat: &str) -> Self {
        let mut ws = open(base, token).await;
        let joined = ws.join("joinChatRoom", json!({"chatId": chat})).await;
        Self {
            ws,
            base: base.to_owned(),
            token: token.to_owned(),
            chat: chat.to_owned(),
            epoch: joined["epoch"].as_str().unwrap().to_owned(),
            offset: joined["offset"].as_u64().unwrap(),
            messages: Vec::new(),
            gaps: 0,
            reconnects: 0,
            http: reqwest::Client::new(),
        }
    }

    /// The texts of the messages it has, in order.
    pub fn texts(&self) -> Vec<String> {
        self.messages.iter().map(|(_, text)| text.clone()).collect()
    }

    /// Reads until `want` messages arrived (reconnecting and refetching as needed), for at most
    /// `within`; whether it got there.
    pub async fn until(&mut self, want: usize, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        while self.messages.len() < want {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            match self.ws.next_within(Duration::from_millis(500)).await {
                Some(event) => self.take(&event).await,
                None if self.ws.closed.is_some() => self.rejoin().await,
                None => {}
            }
        }
        true
    }

    async fn rejoin(&mut self) {
        self.reconnects += 1;
        let cookie = format!("{}={}", crate::auth::COOKIE, self.token);
        let mut attempts = 0;
        self.ws = loop {
            attempts += 1;
            match try_open(&self.base, "", &[("cookie", &cookie)]).await {
                Ok(ws) => break ws,
                // The balancer has no node up for a moment (the one it picked just went
                // away): try again, as a browser's reconnect loop does.
                Err(502 | 503) if attempts < 50 => {
                    tokio::time::sleep(Duration::from_millis(200)).await
                }
                Err(status) => panic!("reconnect refused with {status} ({attempts} attempts)"),
            }
        };
        let joined = self
            .ws
            .join(
                "joinChatRoom",
                json!({"chatId": self.chat, "offset": self.offset, "epoch": self.epoch}),
            )
            .await;
        if joined["recovered"] != true {
            self.gaps += 1;
            self.epoch = joined["epoch"].as_str().unwrap().to_owned();
            self.offset = joined["offset"].as_u64().unwrap();
            self.refetch().await;
        }
    }

    async fn take(&mut self, event: &Value) {
        if event["type"] == "room/gap" {
            self.gaps += 1;
            let epoch = event["data"]["epoch"].as_str().unwrap();
            if epoch != self.epoch {
                // A new epoch numbers from 1 again.
                self.epoch = epoch.to_owned();
                self.offset = 0;
            } else if let Some(to) = event["data"]["to"].as_u64() {
                self.offset = to;
            }
            self.refetch().await;
            return;
        }
        let Some(offset) = event["offset"].as_u64() else {
            return;
        };
        assert!(
            offset > self.offset,
            "offset {offset} after {}",
            self.offset
        );
        self.offset = offset;
        if event["type"] == "chat/message/added" {
            let message = &event["data"]["message"];
            self.keep(
                message["id"].as_str().unwrap(),
                message["text"].as_str().unwrap(),
            );
        }
    }

    fn keep(&mut self, id: &str, text: &str) {
        if !self.messages.iter().any(|(known, _)| known == id) {
            self.messages.push((id.to_owned(), text.to_owned()));
        }
    }

    /// The chat's messages over REST (newest first, page by page), through the balancer; what
    /// PostgreSQL holds is the truth a gap is filled from.
    async fn refetch(&mut self) {
        let mut all = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut url = format!(
                "{}/api/v2/chatMessages?chatId={}&take=100",
                self.base, self.chat
            );
            if let Some(cursor) = &after {
                url.push_str(&format!("&after={cursor}"));
            }
            let reply = self
                .http
                .get(url)
                .header("cookie", format!("session-v2={}", self.token))
                .reply()
                .await;
            if reply.status == 502 || reply.status == 503 {
                // The balancer between nodes (one just went away): ask again.
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            assert_eq!(reply.status, 200, "{}", reply.text);
            for edge in reply.body["data"]["edges"].as_array().unwrap() {
                let node = &edge["node"];
                all.push((
                    node["id"].as_str().unwrap().to_owned(),
                    node["text"].as_str().unwrap().to_owned(),
                ));
            }
            let page = &reply.body["data"]["pageInfo"];
            if page["hasNextPage"] != true {
                break;
            }
            after = page["endCursor"].as_str().map(str::to_owned);
        }
        all.reverse();
        for (id, text) in all {
            self.keep(&id, &text);
        }
    }
}

/// Waits until every follower has every message of `sent`, once and in order, with no gap; how
/// many reconnects that took in all.
pub async fn all_received(followers: &mut [Follower], sent: &[String]) -> u32 {
    let mut reconnected = 0;
    for follower in followers {
        let done = follower.until(sent.len(), Duration::from_secs(30)).await;
        assert!(done, "gave up with {:?}", follower.texts());
        assert_eq!(follower.texts(), sent, "every message once, in order");
        assert_eq!(follower.gaps, 0, "nothing may be lost on the way");
        reconnected += follower.reconnects;
    }
    reconnected
}

/// Posts `text` to `chat` through the balancer; its status once a node answered (a 502/503 of
/// the balancer itself is asked again, see below).
pub async fn try_say(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    chat: &str,
    text: &str,
) -> u16 {
    // A 502/503 is the balancer's own answer when the node it picked had just died (nodes are
    // killed only between posts, so no post was in flight there): the post reached no live
    // node, and sending it again cannot repeat it.
    for _ in 0..5 {
        let reply = client
            .post(format!("{base}/api/v2/chatMessage"))
            .header("cookie", format!("session-v2={token}"))
            .json(&json!({"chatId": chat, "text": text}))
            .reply()
            .await;
        if (reply.status == 502 || reply.status == 503) && reply.body.get("errors").is_none() {
            // Within two health checks (1 s apart) the balancer stops picking the dead node.
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        return reply.status;
    }
    panic!("the balancer found no node for {text}");
}

/// Posts `text` through the balancer; it must be accepted.
pub async fn say(app: &TestApp, base: &str, token: &str, chat: &str, text: &str) {
    let status = try_say(&app.client, base, token, chat, text).await;
    assert_eq!(status, 200, "{text}");
}

/// `vrooli serve` as a process of its own in `app`'s cluster (same database, Redis and prefix,
/// signing keys, outboxes and SMTP), worker `worker`, with `env` on top; its port.
pub async fn node_process(
    app: &TestApp,
    worker: u16,
    env: &[(&str, String)],
) -> (tokio::process::Child, u16) {
    use secrecy::ExposeSecret;
    use tokio::io::AsyncBufReadExt;
    let s = &app.settings;
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_vrooli"));
    command
        .arg("serve")
        .env_remove("RUST_LOG")
        .env("VROOLI__DATABASE__URL", &app.db.url)
        .env("VROOLI__REDIS__URL", s.redis.url.expose_secret())
        .env("VROOLI__REDIS__KEY_PREFIX", &s.redis.key_prefix)
        .env("VROOLI__NODE__WORKER_ID", worker.to_string())
        .env("VROOLI__SERVER__HOST", "127.0.0.1")
        .env("VROOLI__SERVER__PORT", "0")
        .env("VROOLI__SERVER__WORKERS", "1")
        .env("VROOLI__SERVER__DEVELOPMENT", "true")
        .env("VROOLI__RATE_LIMIT__ENABLED", "false")
        .env("VROOLI__LOG__FORMAT", "json")
        .env("VROOLI__AUTH__KEY_DIR", &s.auth.key_dir)
        .env("VROOLI__EMAIL__OUTBOX_DIR", &s.email.outbox_dir)
        .env("VROOLI__SMS__OUTBOX_DIR", &s.sms.outbox_dir);
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("vrooli serve starts");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let port = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("http server listening") {
                let value: Value = serde_json::from_str(&line).unwrap();
                return value["port"].as_u64().expect("the port in the log line") as u16;
            }
        }
        panic!("the node exited before listening")
    })
    .await
    .expect("the node listens within 60 s");
    // Keep draining its log so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, port)
}
