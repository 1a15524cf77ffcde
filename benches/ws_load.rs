//! WebSocket load generator: starts N nodes (the release `vrooli` binary) sharing PostgreSQL and
//! Redis, opens CONNECTIONS authenticated WebSockets spread over them, joins them all to one
//! chat room, measures server memory per idle connection, then publishes events from every node
//! and reports deliveries per second and end-to-end latency (publish request sent → event read
//! by the client), the nodes' CPU time per delivery and the load driver's own CPU. Every frame is
//! parsed as JSON by its client, as a browser does.
//!
//! Run: `cargo bench --bench ws_load` with CONNECTIONS (default 1000), NODES (default 2),
//! EVENTS (default: enough for 200,000 deliveries), PUBLISHERS (concurrent publish requests,
//! default 8), PACE (events per second, default 0 = as fast as possible), MODE=chat (post real
//! chat messages through `POST /api/v2/chatMessage` and measure `GET` of a 20-message page),
//! MODE=storm (all sockets on the last node, which is killed; all reconnect to the first at once),
//! MODE=outbox (EVENTS outbox rows committed at once for one member's room; the relay's rate),
//! BALANCER=1 (every socket, publish and page GET through HAProxy with `deploy/haproxy.cfg` in
//! front of the nodes; its CPU is reported apart).
//! Needs PostgreSQL and Redis (config.toml / VROOLI__* as for the server); it creates
//! and drops a database of its own and uses a Redis key prefix of its own.
//!
//! The clients run in this process on the same 2 cores as the servers, so the figures are a
//! floor for the servers, not their ceiling.
//!
//! Long on purpose (~440 lines): one load generator with its browser-like client, its modes
//! (fan-out, chat) and its report, read top to bottom; the page GET of chat mode is in
//! `ws_load/page.rs`, the reconnect storm in `ws_load/storm.rs`, the outbox relay in
//! `ws_load/outbox.rs`, the open-and-join client they share in `ws_load/client.rs`, the bench
//! users and their chat in `ws_load/setup.rs`, settings and CPU time in `common/load.rs`.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, ConnectOptions};
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use vrooli::config::{Settings, Sources};

#[path = "common/balancer.rs"]
mod balancer;
#[path = "ws_load/client.rs"]
mod client;
mod common;
#[path = "../tests/support/haproxy.rs"]
mod haproxy;
#[path = "common/load.rs"]
mod load;
#[path = "ws_load/outbox.rs"]
mod outbox;
#[path = "ws_load/page.rs"]
mod page;
#[path = "ws_load/setup.rs"]
mod setup;
#[path = "ws_load/storm.rs"]
mod storm;

use balancer::start_balancer;
use common::{start_node, url_without_db};
pub(crate) use load::{cpu_secs, env_or};

const SYSTEM_KEY: &str = "bench-system-key-0123456789";

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

pub(crate) fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::main]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("ws_load bench: skipped (run with cargo bench --bench ws_load)");
        return;
    }
    let connections = env_or("CONNECTIONS", 1000);
    let nodes_wanted = env_or("NODES", 2);
    let events = env_or("EVENTS", (200_000 / connections).max(20));
    let publishers = env_or("PUBLISHERS", 8);
    // Events per second across all publishers; 0 = as fast as they can.
    let pace = env_or("PACE", 0);
    // MODE=chat posts real chat messages (POST /api/v2/chatMessage: a transaction, then the
    // room event) instead of admin publishes, then measures GET of a 20-message page.
    let chat_mode = std::env::var("MODE").is_ok_and(|m| m == "chat");
    let settings = Settings::load(&Sources::default()).expect("settings");

    // A database and Redis prefix of this run's own.
    let base = PgConnectOptions::from_str(settings.database.url.expose_secret()).unwrap();
    let name = format!("vrooli_bench_ws_{}", std::process::id());
    let mut admin = base.clone().database("postgres").connect().await.unwrap();
    sqlx::query(AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await
    .unwrap();
    sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .unwrap();
    let db_url = {
        let mut url = url_without_db(settings.database.url.expose_secret());
        url.push_str(&name);
        url
    };
    let prefix = format!("bench:{}:", std::process::id());
    let dir = std::env::temp_dir().join(format!("vrooli-bench-ws-{}", std::process::id()));

    let mut nodes = Vec::new();
    for id in 0..nodes_wanted {
        // The first node migrates; the others start after it.
        nodes.push(
            start_node(
                &settings,
                &db_url,
                &prefix,
                100 + id as u16,
                &dir,
                &[
                    ("VROOLI__JOBS__ENABLED", "false"),
                    ("VROOLI__ADMIN__SYSTEM_KEY", SYSTEM_KEY),
                    ("VROOLI__WS__MAX_CONNECTIONS_PER_USER", "100000"),
                    ("VROOLI__WS__MAX_CONNECTIONS_PER_NODE", "100000"),
                ],
            )
            .await,
        );
    }
    let client = reqwest::Client::new();

    let (tokens, pool) = setup::users_and_chat(&client, &nodes[0].base, &db_url, connections).await;

    // Where clients go: the balancer, or each node in turn.
    let balancer = if std::env::var("BALANCER").is_ok_and(|b| b == "1") {
        Some(start_balancer(&nodes, &dir.join("lb")).await)
    } else {
        None
    };
    let entries: Vec<String> = match &balancer {
        Some(lb) => vec![lb.base.clone()],
        None => nodes.iter().map(|n| n.base.clone()).collect(),
    };

    if std::env::var("MODE").is_ok_and(|m| m == "storm") {
        storm::run(&mut nodes, &tokens, connections).await;
        return;
    }
    if std::env::var("MODE").is_ok_and(|m| m == "outbox") {
        outbox::run(&nodes, &pool, &tokens[0], env_or("EVENTS", 20_000)).await;
        return;
    }

    // Let start-up allocations (the first node ran the migrations) settle before the baseline.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_before: Vec<u64> = nodes
        .iter()
        .map(|n| rss_kib(n.process.id().unwrap()))
        .collect();

    // Open and join, 200 at a time.
    let received = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(Mutex::new(Vec::<u64>::with_capacity(connections * events)));
    let last_received = Arc::new(AtomicU64::new(0));
    let opened = Instant::now();
    let semaphore = Arc::new(tokio::sync::Semaphore::new(200));
    let mut joins = Vec::new();
    let mut readers = Vec::new();
    for i in 0..connections {
        let url = format!(
            "{}/ws",
            entries[i % entries.len()].replacen("http", "ws", 1)
        );
        let token = tokens[i % tokens.len()].clone();
        let permit = semaphore.clone().acquire_owned().await.unwrap();
        let (received, latencies, last) =
            (received.clone(), latencies.clone(), last_received.clone());
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        joins.push(ready_rx);
        readers.push(tokio::spawn(async move {
            let mut request = url.into_client_request().unwrap();
            request
                .headers_mut()
                .insert("cookie", format!("session-v2={token}").parse().unwrap());
            let (mut ws, _) = tokio_tungstenite::connect_async(request)
                .await
                .expect("connect");
            ws.send(Message::Text(
                json!({"id": "j", "cmd": "joinChatRoom", "data": {"chatId": "1"}})
                    .to_string()
                    .into(),
            ))
            .await
            .unwrap();
            let mut mine = Vec::new();
            let mut ready = Some(ready_tx);
            let mut permit = Some(permit);
            while let Some(Ok(message)) = ws.next().await {
                let Message::Text(text) = message else {
                    continue;
                };
                // Every frame is parsed as JSON, as a browser's `JSON.parse` would.
                let value: Value = serde_json::from_str(&text).expect("a JSON frame");
                if value.get("ack").is_some() {
                    if value["ack"] == "j" {
                        assert_eq!(value["success"], true, "{value}");
                        drop(permit.take());
                        if let Some(tx) = ready.take() {
                            let _ = tx.send(());
                        }
                    }
                    continue;
                }
                if value["data"]["stop"] == true {
                    break;
                }
                if let Some(sent) = sent_at(&value) {
                    let now = now_ns();
                    mine.push(now.saturating_sub(sent));
                    received.fetch_add(1, Ordering::Relaxed);
                    last.fetch_max(now, Ordering::Relaxed);
                }
            }
            latencies.lock().await.extend(mine);
            ws
        }));
    }
    for ready in joins {
        ready.await.expect("joined");
    }
    let open_time = opened.elapsed();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_idle: Vec<u64> = nodes
        .iter()
        .map(|n| rss_kib(n.process.id().unwrap()))
        .collect();
    let grown: i64 = rss_idle
        .iter()
        .zip(&rss_before)
        .map(|(a, b)| *a as i64 - *b as i64)
        .sum();

    // Publish from every node at once.
    let node_pids: Vec<String> = nodes
        .iter()
        .map(|n| n.process.id().unwrap().to_string())
        .collect();
    let cpu_before: f64 = node_pids.iter().map(|p| cpu_secs(p)).sum();
    let lb_pid = balancer
        .as_ref()
        .map(|lb| lb.process.id().unwrap().to_string());
    let lb_before = lb_pid.as_deref().map_or(0.0, cpu_secs);
    let driver_before = cpu_secs("self");
    let first_sent = now_ns();
    let started = Instant::now();
    let next_event = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for p in 0..publishers {
        let (client, next) = (client.clone(), next_event.clone());
        let bases = entries.clone();
        let cookie = format!("session-v2={}", tokens[p % tokens.len()]);
        tasks.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed) as usize;
                if n >= events {
                    return;
                }
                if pace > 0 {
                    // Event n is due at n / pace seconds after the start.
                    let due = started + Duration::from_secs_f64(n as f64 / pace as f64);
                    tokio::time::sleep_until(due.into()).await;
                }
                let base = &bases[(n + p) % bases.len()];
                let response = if chat_mode {
                    client
                        .post(format!("{base}/api/v2/chatMessage"))
                        .header("cookie", &cookie)
                        .json(&json!({"chatId": "1", "text": format!("t={} a message of ordinary length, about a hundred bytes long", now_ns())}))
                        .send()
                        .await
                        .unwrap()
                } else {
                    client
                        .post(format!("{base}/api/v2/admin/rooms/publish"))
                        .bearer_auth(SYSTEM_KEY)
                        .json(&json!({"room": "chat:1", "type": "chat/message/added", "data": {"t": now_ns(), "n": n, "text": "a message of ordinary length, about a hundred bytes long, give or take"}}))
                        .send()
                        .await
                        .unwrap()
                };
                // 408: a node did not read it within `server.client_request_timeout_secs`.
                let status = response.status();
                assert_eq!(status, 200, "publish {n} answered {status}: too fast for this machine?");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let publish_time = started.elapsed();
    let expected = (connections * events) as u64;
    let deadline = Instant::now() + Duration::from_secs(120);
    while received.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let got = received.load(Ordering::Relaxed);
    let node_cpu = node_pids.iter().map(|p| cpu_secs(p)).sum::<f64>() - cpu_before;
    let driver_cpu = cpu_secs("self") - driver_before;
    let lb_cpu = lb_pid.as_deref().map_or(0.0, cpu_secs) - lb_before;
    let span_ns = last_received
        .load(Ordering::Relaxed)
        .saturating_sub(first_sent);
    // Tell the readers to stop, then collect their latencies.
    let _ = client
        .post(format!("{}/api/v2/admin/rooms/publish", nodes[0].base))
        .bearer_auth(SYSTEM_KEY)
        .json(&json!({"room": "chat:1", "type": "bench/stop", "data": {"stop": true}}))
        .send()
        .await;
    let mut sockets = Vec::new();
    for r in readers {
        if let Ok(Ok(ws)) = tokio::time::timeout(Duration::from_secs(30), r).await {
            sockets.push(ws);
        }
    }
    let mut all = latencies.lock().await.clone();
    all.sort_unstable();
    let pct = |p: f64| -> f64 {
        if all.is_empty() {
            return f64::NAN;
        }
        all[((all.len() as f64 * p) as usize).min(all.len() - 1)] as f64 / 1e6
    };
    println!(
        "nodes={}{} connections={connections} users={} events={events} publishers={publishers} pace={}",
        nodes.len(),
        if balancer.is_some() {
            " behind HAProxy"
        } else {
            ""
        },
        tokens.len(),
        if pace == 0 {
            "max".to_owned()
        } else {
            format!("{pace}/s")
        }
    );
    println!(
        "opened+joined in {:.2} s; server RSS {:?} KiB -> {:?} KiB idle: {:.1} KiB per idle connection",
        open_time.as_secs_f64(),
        rss_before,
        rss_idle,
        grown as f64 / connections as f64
    );
    println!(
        "deliveries {got}/{expected} in {:.2} s = {:.0}/s (publishing took {:.2} s = {:.0} events/s)",
        span_ns as f64 / 1e9,
        got as f64 / (span_ns as f64 / 1e9),
        publish_time.as_secs_f64(),
        events as f64 / publish_time.as_secs_f64()
    );
    let span_s = span_ns as f64 / 1e9;
    println!(
        "server CPU {node_cpu:.2} s ({:.0}% of a core) = {:.2} us per delivery; load driver {driver_cpu:.2} s ({:.0}%); lost {}",
        node_cpu / span_s * 100.0,
        node_cpu / got.max(1) as f64 * 1e6,
        driver_cpu / span_s * 100.0,
        expected.saturating_sub(got)
    );
    if balancer.is_some() {
        println!(
            "balancer CPU {lb_cpu:.2} s ({:.0}% of a core) = {:.2} us per delivery",
            lb_cpu / span_s * 100.0,
            lb_cpu / got.max(1) as f64 * 1e6
        );
    }
    println!(
        "latency publish->delivered: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        pct(0.50),
        pct(0.99),
        pct(1.0)
    );
    drop(sockets);
    if chat_mode {
        page::throughput(&client, &entries, &tokens[0]).await;
    }
    for mut node in nodes {
        let _ = node.process.kill().await;
    }
    pool.close().await;
    let _ = sqlx::query(AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// When the event was published: `data.t` (admin publishes) or the `t=` at the start of a
/// chat message's text.
fn sent_at(event: &Value) -> Option<u64> {
    let data = &event["data"];
    if let Some(t) = data["t"].as_u64() {
        return Some(t);
    }
    let text = data["text"]
        .as_str()
        .or_else(|| data["message"]["text"].as_str())?;
    let rest = text.strip_prefix("t=")?;
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}
