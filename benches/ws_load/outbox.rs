//! MODE=outbox of the WebSocket load generator (`ws_load.rs`): how fast the outbox relay
//! publishes events that piled up (a dead node's, or written while Redis was away).

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

use crate::client::open_and_join;
use crate::common::Node;
use crate::cpu_secs;

/// MODE=outbox: one member joined on the first node; EVENTS outbox rows for the room committed
/// at once, as if by a node that died before publishing them; the nodes' sweepers find them.
/// Reports how long until the member read them all (each once, in order: checked) and the outbox
/// was empty, the relay's events per second, and the nodes' CPU time per event.
pub async fn run(nodes: &[Node], pool: &sqlx::PgPool, token: &str, events: usize) {
    let url = format!("{}/ws", nodes[0].base.replacen("http", "ws", 1));
    // Joined before the events exist: the member must get every one of them live.
    let mut ws = open_and_join(&url, token).await.expect("joined");
    let pids: Vec<String> = nodes
        .iter()
        .map(|n| n.process.id().unwrap().to_string())
        .collect();
    let cpu = || pids.iter().map(|p| cpu_secs(p)).sum::<f64>();
    let cpu_before = cpu();
    // Older than one sweep interval: the sweepers take them at their next look.
    sqlx::query(
        "INSERT INTO outbox_events (room, event_id, event_type, data, timestamp_ms, created_at)
         SELECT 'chat:1', 'piled-' || n, 'chat/message/added',
                jsonb_build_object('message', jsonb_build_object('text', n::text)),
                (extract(epoch FROM now()) * 1000)::BIGINT, now() - interval '2 seconds'
           FROM generate_series(1, $1) AS n ORDER BY n",
    )
    .bind(events as i64)
    .execute(pool)
    .await
    .unwrap();
    let committed = Instant::now();
    let mut next = 1usize;
    let mut first = None;
    while next <= events {
        let message = tokio::time::timeout(Duration::from_secs(60), ws.next())
            .await
            .expect("an event within 60 s")
            .expect("the socket stays open")
            .unwrap();
        let Message::Text(text) = message else {
            continue;
        };
        // Parsed as a browser would.
        let value: Value = serde_json::from_str(&text).expect("a JSON frame");
        if value["type"] != "chat/message/added" {
            continue;
        }
        first.get_or_insert_with(Instant::now);
        let n: usize = value["data"]["message"]["text"]
            .as_str()
            .and_then(|t| t.parse().ok())
            .expect("a numbered event");
        assert_eq!(n, next, "events once and in order");
        next += 1;
    }
    let all_read = committed.elapsed();
    let cpu_used = cpu() - cpu_before;
    let first = first.map_or(Duration::ZERO, |f| f - committed);
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox_events")
        .fetch_one(pool)
        .await
        .unwrap();
    let relaying = all_read.saturating_sub(first).as_secs_f64().max(1e-9);
    println!("outbox: {events} piled-up events, {} nodes", nodes.len());
    println!(
        "  first read after {:.0} ms (a sweep found them), all read after {:.2} s, {left} rows left",
        first.as_secs_f64() * 1000.0,
        all_read.as_secs_f64()
    );
    println!(
        "  relayed {:.0} events/s (first to last); nodes' CPU {:.1} µs per event",
        (events - 1) as f64 / relaying,
        cpu_used * 1e6 / events as f64
    );
}
