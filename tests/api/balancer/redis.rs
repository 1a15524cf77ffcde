//! Redis restarted (killed, then started empty on the same port, as a restart without
//! persistence looks) while messages are posted through the balancer to sockets spread over
//! three nodes. Every socket either recovers or is told of the gap (`room/gap`, or a rejoin that
//! could not recover) and refetches over REST, as a browser does: each ends with every accepted
//! message once, in order; a post refused while Redis was away left nothing behind; and a
//! message posted after the restart arrives live — never silence.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::{Balancer, Follower, port, say, try_say};
use crate::helpers::{PrivateRedis, SecondNode, spawn_app_with};
use crate::ws::{chat, user};

#[tokio::test]
async fn redis_restarted_under_load_every_socket_recovers_or_is_told_of_the_gap() {
    let redis = PrivateRedis::start().await;
    let url = redis.url();
    let a = spawn_app_with(move |s| s.redis.url = url.into(), None).await;
    let b = SecondNode::start_as(&a, 1).await;
    let c = SecondNode::start_as(&a, 2).await;
    let lb = Balancer::start(&[a.port, port(&b.address), port(&c.address)]).await;

    let sam = user(&a, "Sam").await;
    let room = chat(&a, &sam, &[], false).await;
    let mut followers = Vec::new();
    for _ in 0..6 {
        followers.push(Follower::join(&lb.base, &sam.token, &room).await);
    }

    // One writer posts every 50 ms through the balancer until told to stop; which posts were
    // accepted and which refused (a refusal must leave nothing behind).
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, base, token, room) = (
            Arc::clone(&stop),
            lb.base.clone(),
            sam.token.clone(),
            room.clone(),
        );
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let (mut accepted, mut refused) = (Vec::new(), Vec::new());
            let mut slowest = Duration::ZERO;
            for n in 0.. {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let text = format!("message {n}");
                let asked = std::time::Instant::now();
                let status = try_say(&client, &base, &token, &room, &text).await;
                slowest = slowest.max(asked.elapsed());
                match status {
                    200 => accepted.push(text),
                    status => refused.push((text, status)),
                }
                // Load, paced: ~20 posts a second, across the restart.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            (accepted, refused, slowest)
        })
    };
    // Posts before, across and after the restart.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut redis = redis;
    redis.kill().await;
    // Away for longer than a cached health result (health.cache_ttl_ms = 5 s) and the
    // balancer's two checks 1 s apart: long enough for every node's health to say so.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let _redis = PrivateRedis::start_on(redis.port).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    let (mut accepted, refused, slowest) = writer.await.unwrap();
    assert!(
        accepted.len() >= 20,
        "the cluster kept serving: {refused:?}"
    );
    // No post waited for Redis to come back (one did, for 9 s, when the client retried its
    // connection 6 times before failing): at most a connection and a response timeout.
    assert!(slowest < Duration::from_secs(4), "a post took {slowest:?}");
    say(&a, &lb.base, &sam.token, &room, "after the restart").await;
    accepted.push("after the restart".to_owned());

    println!("{} posts accepted, refused: {refused:?}", accepted.len());
    for follower in &mut followers {
        let done = follower
            .until(accepted.len(), Duration::from_secs(30))
            .await;
        assert!(done, "gave up with {:?}", follower.texts());
        // What PostgreSQL holds now: nothing a refused post wrote.
        follower.refetch().await;
        assert_eq!(
            follower.texts(),
            accepted,
            "every accepted message once, in order"
        );
        // Redis lost the room's epoch and history: no socket could have recovered it silently.
        assert!(follower.gaps >= 1, "the gap was reported");
        println!(
            "follower: {} gaps, {} reconnects",
            follower.gaps, follower.reconnects
        );
    }
    b.stop().await;
    c.stop().await;
}
