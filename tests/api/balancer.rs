//! Through a real HAProxy with the repository's `deploy/haproxy.cfg` (ADR 22): three nodes share
//! PostgreSQL and Redis; sockets and requests go through the balancer only. One node is stopped
//! (drained) and started again while messages are posted: every socket reconnects through the
//! balancer with its offset and epoch and ends with every message exactly once, in order.
//! And the same with a node that is a real `vrooli` process killed with -9.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{SecondNode, SendReply, TestApp, spawn_app_with, wait_until};
use crate::ws::{Ws, chat, open, user};

/// HAProxy over `ports`, on a port of its own; stopped when dropped.
struct Balancer {
    base: String,
    _process: tokio::process::Child,
    dir: PathBuf,
}

impl Balancer {
    async fn start(ports: &[u16]) -> Self {
        let dir =
            std::env::temp_dir().join(format!("vrooli-lb-{}", crate::helpers::random_suffix()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut config = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/haproxy.cfg"),
        )
        .unwrap();
        for (i, port) in ports.iter().enumerate() {
            config.push_str(&format!("    server node{i} 127.0.0.1:{port} check\n"));
        }
        let path = dir.join("haproxy.cfg");
        std::fs::write(&path, config).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // Debian puts it in /usr/sbin, which a user's PATH may not have.
        let bin = if std::path::Path::new("/usr/sbin/haproxy").exists() {
            "/usr/sbin/haproxy"
        } else {
            "haproxy"
        };
        let process = tokio::process::Command::new(bin)
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .env("CLUSTER_BIND", format!("127.0.0.1:{port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("haproxy (scripts/setup.sh installs it)");
        let base = format!("http://127.0.0.1:{port}");
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
        }
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A socket through the balancer that follows its room across reconnects.
struct Follower {
    ws: Ws,
    token: String,
    chat: String,
    epoch: String,
    offset: u64,
    texts: Vec<String>,
    reconnects: u32,
}

impl Follower {
    async fn join(base: &str, token: &str, chat: &str) -> Self {
        let mut ws = open(base, token).await;
        let joined = ws.join("joinChatRoom", json!({"chatId": chat})).await;
        Self {
            ws,
            token: token.to_owned(),
            chat: chat.to_owned(),
            epoch: joined["epoch"].as_str().unwrap().to_owned(),
            offset: joined["offset"].as_u64().unwrap(),
            texts: Vec::new(),
            reconnects: 0,
        }
    }

    /// Reads until `want` messages arrived, reconnecting (with offset and epoch) when closed.
    async fn until(&mut self, base: &str, want: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while self.texts.len() < want {
            assert!(
                tokio::time::Instant::now() < deadline,
                "gave up with {:?}",
                self.texts
            );
            match self.ws.next_within(Duration::from_millis(500)).await {
                Some(event) => self.take(&event),
                None if self.ws.closed.is_some() => {
                    self.reconnects += 1;
                    self.ws = open(base, &self.token).await;
                    let joined = self
                        .ws
                        .join(
                            "joinChatRoom",
                            json!({"chatId": self.chat, "offset": self.offset, "epoch": self.epoch}),
                        )
                        .await;
                    assert_eq!(
                        joined["recovered"], true,
                        "recovered after a restart: {joined}"
                    );
                }
                None => {}
            }
        }
    }

    fn take(&mut self, event: &Value) {
        assert_ne!(event["type"], "room/gap", "nothing may be lost: {event}");
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
            self.texts.push(
                event["data"]["message"]["text"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }
    }
}

/// Waits until every follower has every message of `sent`, once and in order; how many
/// reconnects that took in all.
async fn all_received(followers: &mut [Follower], base: &str, sent: &[String]) -> u32 {
    let mut reconnected = 0;
    for follower in followers {
        follower.until(base, sent.len()).await;
        assert_eq!(follower.texts, sent, "every message once, in order");
        reconnected += follower.reconnects;
    }
    reconnected
}

async fn say(app: &TestApp, base: &str, token: &str, chat: &str, text: &str) {
    // A 502/503 is the balancer's own answer when the node it picked had just died (nodes are
    // killed only between posts, so no post was in flight there): the post reached no live
    // node, and sending it again cannot repeat it.
    for _ in 0..5 {
        let reply = app
            .client
            .post(format!("{base}/api/v2/chatMessage"))
            .header("cookie", format!("session-v2={token}"))
            .json(&json!({"chatId": chat, "text": text}))
            .reply()
            .await;
        if reply.status == 502 || reply.status == 503 {
            // Within two health checks (1 s apart) the balancer stops picking the dead node.
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        assert_eq!(reply.status, 200, "{}", reply.text);
        return;
    }
    panic!("the balancer found no node for {text}");
}

/// `vrooli serve` as a process of its own in `app`'s cluster (same database, Redis prefix and
/// signing keys), worker `worker`; its port.
async fn node_process(app: &TestApp, worker: u16) -> (tokio::process::Child, u16) {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_vrooli"))
        .arg("serve")
        .env_remove("RUST_LOG")
        .env("VROOLI__DATABASE__URL", &app.db.url)
        .env("VROOLI__REDIS__KEY_PREFIX", &app.settings.redis.key_prefix)
        .env("VROOLI__NODE__WORKER_ID", worker.to_string())
        .env("VROOLI__SERVER__HOST", "127.0.0.1")
        .env("VROOLI__SERVER__PORT", "0")
        .env("VROOLI__SERVER__WORKERS", "1")
        .env("VROOLI__SERVER__DEVELOPMENT", "true")
        .env("VROOLI__RATE_LIMIT__ENABLED", "false")
        .env("VROOLI__LOG__FORMAT", "json")
        .env("VROOLI__AUTH__KEY_DIR", &app.settings.auth.key_dir)
        .env("VROOLI__EMAIL__OUTBOX_DIR", &app.settings.email.outbox_dir)
        .env("VROOLI__SMS__OUTBOX_DIR", &app.settings.sms.outbox_dir)
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

#[tokio::test]
async fn a_rolling_restart_behind_the_balancer_loses_and_repeats_nothing() {
    let fast_checks = |s: &mut vrooli::config::Settings| s.server.drain_secs = 3;
    let a = spawn_app_with(fast_checks, None).await;
    let b = SecondNode::start_with(&a, 1, fast_checks).await;
    let c = SecondNode::start_with(&a, 2, fast_checks).await;
    let port = |address: &str| address.rsplit(':').next().unwrap().parse::<u16>().unwrap();
    let lb = Balancer::start(&[a.port, port(&b.address), port(&c.address)]).await;

    let sam = user(&a, "Sam").await;
    let room = chat(&a, &sam, &[], false).await;
    // Six sockets through the balancer: round robin puts two on each node.
    let mut followers = Vec::new();
    for _ in 0..6 {
        followers.push(Follower::join(&lb.base, &sam.token, &room).await);
    }
    let mut sent = Vec::new();
    for n in 0..5 {
        let text = format!("before {n}");
        say(&a, &lb.base, &sam.token, &room, &text).await;
        sent.push(text);
    }
    // Node b drains (503, then 1012 to its sockets) and stops while messages keep coming:
    // posts are paced so they span its 3 s drain and its stop.
    let stopping = tokio::spawn(b.stop());
    for n in 0..10 {
        let text = format!("during {n}");
        say(&a, &lb.base, &sam.token, &room, &text).await;
        sent.push(text);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    stopping.await.unwrap();
    // Started again (the same worker id), and more messages.
    let b = SecondNode::start_with(&a, 1, fast_checks).await;
    for n in 0..5 {
        let text = format!("after {n}");
        say(&a, &lb.base, &sam.token, &room, &text).await;
        sent.push(text);
    }
    let reconnected = all_received(&mut followers, &lb.base, &sent).await;
    assert!(
        reconnected >= 1,
        "the sockets on the stopped node reconnected"
    );
    b.stop().await;
    c.stop().await;
}

#[tokio::test]
async fn a_node_killed_with_9_and_a_rolling_restart_behind_the_balancer_lose_nothing() {
    let drain = |s: &mut vrooli::config::Settings| s.server.drain_secs = 3;
    let a = spawn_app_with(drain, None).await;
    let b = SecondNode::start_with(&a, 1, drain).await;
    let (mut victim, victim_port) = node_process(&a, a.settings.node.worker_id + 2).await;
    let port = |address: &str| address.rsplit(':').next().unwrap().parse::<u16>().unwrap();
    let lb = Balancer::start(&[a.port, port(&b.address), victim_port]).await;

    let sam = user(&a, "Sam").await;
    let room = chat(&a, &sam, &[], false).await;
    let mut followers = Vec::new();
    for _ in 0..6 {
        followers.push(Follower::join(&lb.base, &sam.token, &room).await);
    }
    let mut sent = Vec::new();
    for n in 0..5 {
        let text = format!("before {n}");
        say(&a, &lb.base, &sam.token, &room, &text).await;
        sent.push(text);
    }
    // kill -9 the process node between two posts, and keep posting through the balancer (paced
    // across the two health checks it takes to mark the node down).
    victim.start_kill().unwrap();
    victim.wait().await.unwrap();
    for n in 0..5 {
        let text = format!("after the kill {n}");
        say(&a, &lb.base, &sam.token, &room, &text).await;
        sent.push(text);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Then a rolling restart of b while messages keep coming (paced across its drain).
    let stopping = tokio::spawn(b.stop());
    for n in 0..8 {
        let text = format!("during the restart {n}");
        say(&a, &lb.base, &sam.token, &room, &text).await;
        sent.push(text);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    stopping.await.unwrap();
    let b = SecondNode::start_with(&a, 1, drain).await;
    for n in 0..3 {
        let text = format!("at the end {n}");
        say(&a, &lb.base, &sam.token, &room, &text).await;
        sent.push(text);
    }
    let reconnected = all_received(&mut followers, &lb.base, &sent).await;
    // Two sockets were on the killed node and two on the restarted one.
    assert!(reconnected >= 2, "{reconnected} reconnects");
    b.stop().await;
}

#[tokio::test]
async fn rate_limits_hold_across_nodes_behind_the_balancer_whatever_the_client_claims() {
    const LOGIN: &str = "/api/v2/auth/email/login";
    let limited = |s: &mut vrooli::config::Settings| {
        s.server.behind_proxy = true;
        s.rate_limit.enabled = true;
        s.rate_limit
            .routes
            .insert(LOGIN.to_string(), vrooli::config::RouteLimit::PerDay(4));
    };
    let a = spawn_app_with(limited, None).await;
    let b = SecondNode::start_with(&a, 1, limited).await;
    let port = |address: &str| address.rsplit(':').next().unwrap().parse::<u16>().unwrap();
    let lb = Balancer::start(&[a.port, port(&b.address)]).await;
    let mut statuses = Vec::new();
    for n in 0..8 {
        // Each request claims another address; the balancer replaces the claim with the real
        // one, so every request counts against the same client, on whichever node it lands.
        let reply = a
            .client
            .post(format!("{}{LOGIN}", lb.base))
            .header("x-forwarded-for", format!("203.0.113.{n}"))
            .header("forwarded", format!("for=198.51.100.{n}"))
            .json(&json!({"email": "nobody@example.org", "password": "whatever it is"}))
            .reply()
            .await;
        statuses.push(reply.status);
    }
    assert_eq!(
        statuses,
        [401, 401, 401, 401, 429, 429, 429, 429],
        "four per day for this client across both nodes"
    );
    b.stop().await;
}
