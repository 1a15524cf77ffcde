//! Restarts behind the balancer: a rolling restart (one node drained and started again), and a
//! node that is a real `vrooli` process killed with -9 followed by a rolling restart of
//! another, while messages are posted. Every socket reconnects through the balancer with its
//! offset and epoch and ends with every message exactly once, in order, and no gap.

use std::time::Duration;

use super::{Balancer, Follower, all_received, node_process, port, say};
use crate::helpers::{SecondNode, spawn_app_with};
use crate::ws::{chat, user};

#[tokio::test]
async fn a_rolling_restart_behind_the_balancer_loses_and_repeats_nothing() {
    let fast_checks = |s: &mut vrooli::config::Settings| s.server.drain_secs = 3;
    let a = spawn_app_with(fast_checks, None).await;
    let b = SecondNode::start_with(&a, 1, fast_checks).await;
    let c = SecondNode::start_with(&a, 2, fast_checks).await;
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
    let reconnected = all_received(&mut followers, &sent).await;
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
    let (mut victim, victim_port) = node_process(&a, a.settings.node.worker_id + 2, &[]).await;
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
    let reconnected = all_received(&mut followers, &sent).await;
    // Two sockets were on the killed node and two on the restarted one.
    assert!(reconnected >= 2, "{reconnected} reconnects");
    b.stop().await;
}
