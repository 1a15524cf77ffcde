//! MODE=storm of the WebSocket load generator (`ws_load.rs`): a reconnect storm onto one node.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::client::open_and_join;
use crate::common::Node;
use crate::{cpu_secs, rss_kib};

/// MODE=storm: CONNECTIONS sockets joined on the last node; that node is killed (-9) and every
/// socket reconnects at once to the first node and joins again. Reports how long until all were
/// joined and how many attempts were refused (a failed connect or handshake, or a join refused).
pub async fn run(nodes: &mut [Node], tokens: &[String], connections: usize) {
    let ws_url = |node: &Node| format!("{}/ws", node.base.replacen("http", "ws", 1));
    let (first, last) = (ws_url(&nodes[0]), ws_url(nodes.last().unwrap()));
    let semaphore = Arc::new(tokio::sync::Semaphore::new(200));
    let mut opening = Vec::new();
    for i in 0..connections {
        let (url, token) = (last.clone(), tokens[i % tokens.len()].clone());
        let permit = semaphore.clone().acquire_owned().await.unwrap();
        opening.push(tokio::spawn(async move {
            let ws = open_and_join(&url, &token).await.expect("first join");
            drop(permit);
            ws
        }));
    }
    let mut sockets = Vec::new();
    for task in opening {
        sockets.push(task.await.unwrap());
    }
    let rss_before = rss_kib(nodes[0].process.id().unwrap());
    let cpu_before = cpu_secs(&nodes[0].process.id().unwrap().to_string());
    nodes.last_mut().unwrap().process.start_kill().unwrap();
    let killed = Instant::now();
    let refused = Arc::new(AtomicU64::new(0));
    let mut rejoining = Vec::new();
    for (i, ws) in sockets.into_iter().enumerate() {
        let (url, token, refused) = (
            first.clone(),
            tokens[i % tokens.len()].clone(),
            refused.clone(),
        );
        rejoining.push(tokio::spawn(async move {
            drop(ws);
            loop {
                match open_and_join(&url, &token).await {
                    Ok(ws) => return (killed.elapsed(), ws),
                    Err(_) => {
                        refused.fetch_add(1, Ordering::Relaxed);
                        // As a browser's reconnect would, after a short back-off.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        }));
    }
    let mut times = Vec::new();
    let mut kept = Vec::new();
    for task in rejoining {
        let (elapsed, ws) = task.await.unwrap();
        times.push(elapsed.as_secs_f64());
        kept.push(ws);
    }
    times.sort_by(f64::total_cmp);
    let pid = nodes[0].process.id().unwrap();
    println!(
        "storm: {connections} sockets re-joined on one node: all within {:.2} s of the kill (p50 {:.2} s, p99 {:.2} s); refused attempts {}; that node's CPU {:.2} s, RSS +{} KiB",
        times[times.len() - 1],
        times[times.len() / 2],
        times[(times.len() * 99 / 100).min(times.len() - 1)],
        refused.load(Ordering::Relaxed),
        cpu_secs(&pid.to_string()) - cpu_before,
        rss_kib(pid).saturating_sub(rss_before)
    );
}
