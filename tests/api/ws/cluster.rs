//! Several nodes sharing Redis (one key prefix per test): every member gets every event in
//! order wherever it was published; presence across nodes and its expiry when a node dies;
//! delivery after the pub/sub connection is killed; revocation closing sockets on every node;
//! request/reply through a node's mailbox.

use std::time::Duration;

use secrecy::ExposeSecret;
use serde_json::json;

use super::*;
use crate::helpers::Reply;
use crate::helpers::SendReply;
use crate::helpers::{PrivateRedis, SecondNode, spawn_app_with, wait_until};

async fn app() -> TestApp {
    spawn_app_with(with_system_key, None).await
}

#[tokio::test]
async fn a_member_on_each_of_three_nodes_gets_every_event_in_order() {
    let a = app().await;
    let b = SecondNode::start_as(&a, 1).await;
    let c = SecondNode::start_as(&a, 2).await;
    let nodes = [a.address.clone(), b.address.clone(), c.address.clone()];
    let sam = user(&a, "Sam").await;
    let chat_id = chat(&a, &sam, &[], false).await;
    let room = format!("chat:{chat_id}");

    let mut sockets = Vec::new();
    for base in &nodes {
        let mut ws = open(base, &sam.token).await;
        ws.join("joinChatRoom", json!({"chatId": chat_id})).await;
        sockets.push(ws);
    }
    // Published from every node, concurrently.
    let client = reqwest::Client::new();
    let mut publishers = Vec::new();
    for (i, base) in nodes.iter().enumerate() {
        let (client, base, room) = (client.clone(), base.clone(), room.clone());
        publishers.push(tokio::spawn(async move {
            for n in 0..20 {
                publish(&client, &base, &room, json!({"from": i, "n": n})).await;
            }
        }));
    }
    for p in publishers {
        p.await.unwrap();
    }
    let mut orders = Vec::new();
    for ws in &mut sockets {
        let mut seen = Vec::new();
        for offset in 1..=60 {
            let event = ws.event().await;
            assert_eq!(event["offset"], offset, "in offset order");
            seen.push((event["data"]["from"].clone(), event["data"]["n"].clone()));
        }
        orders.push(seen);
    }
    assert!(
        orders.windows(2).all(|w| w[0] == w[1]),
        "the same order on every node"
    );

    // Request/reply through another node's mailbox.
    let other = format!("/nodes/{}/stats", a.settings.node.worker_id + 2);
    let Reply {
        status,
        body: stats,
        ..
    } = admin_get(&a.client, &a.address, &other).await;
    assert_eq!(status, 200);
    assert_eq!(stats["data"]["connections"], 1, "{stats}");
    assert_eq!(stats["data"]["rooms"], 1);
    let Reply {
        status: missing, ..
    } = admin_get(&a.client, &a.address, "/nodes/4000/stats").await;
    assert_eq!(missing, 404);

    drop(sockets);
    b.stop().await;
    c.stop().await;
}

#[tokio::test]
async fn revocation_closes_the_sessions_sockets_on_every_node() {
    let a = app().await;
    let b = SecondNode::start(&a).await;
    let sam = user(&a, "Sam").await;
    let kim = user(&a, "Kim").await;
    let mut on_a = open(&a.address, &sam.token).await;
    let mut on_b = open(&b.address, &sam.token).await;
    let mut other = open(&b.address, &kim.token).await;
    on_a.join("joinUserRoom", json!({"userId": sam.id})).await;
    on_b.join("joinUserRoom", json!({"userId": sam.id})).await;
    other.join("joinUserRoom", json!({"userId": kim.id})).await;

    let logout = crate::auth::post(&a, "/auth/logout", Some(&sam.token), json!({})).await;
    assert_eq!(logout.status, 200);
    let started = std::time::Instant::now();
    assert_eq!(on_a.close_code(Duration::from_secs(2)).await, Some(4001));
    assert_eq!(on_b.close_code(Duration::from_secs(2)).await, Some(4001));
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    // Another user's socket stays.
    other.join("joinUserRoom", json!({"userId": kim.id})).await;
    // And the revoked token cannot open a new one.
    assert_eq!(
        try_open(
            &b.address,
            "",
            &[("cookie", &format!("{COOKIE}={}", sam.token))]
        )
        .await
        .err(),
        Some(401)
    );
    drop((on_a, on_b, other));
    b.stop().await;
}

/// Two nodes on a Redis of this test's own (so killing connections disturbs no other test).
async fn pair_on_private_redis() -> (PrivateRedis, TestApp, SecondNode) {
    let redis = PrivateRedis::start().await;
    let url = redis.url();
    let a = spawn_app_with(
        move |s| {
            with_system_key(s);
            s.redis.url = url.into();
        },
        None,
    )
    .await;
    let b = SecondNode::start(&a).await;
    (redis, a, b)
}

#[tokio::test]
async fn delivery_resumes_after_the_pubsub_connection_is_killed() {
    let (redis, a, b) = pair_on_private_redis().await;
    let sam = user(&a, "Sam").await;
    let chat_id = chat(&a, &sam, &[], false).await;
    let room = format!("chat:{chat_id}");
    let mut ws = open(&b.address, &sam.token).await;
    ws.join("joinChatRoom", json!({"chatId": chat_id})).await;
    publish(&a.client, &a.address, &room, json!({"n": 1})).await;
    assert_eq!(ws.event().await["offset"], 1);

    // Kill both nodes' pub/sub connections, then publish while they reconnect.
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(killed, 2);
    for n in 2..=4 {
        publish(&a.client, &a.address, &room, json!({"n": n})).await;
    }
    // What was published during the outage arrives (from the history), then live events.
    for n in 2..=4 {
        assert_eq!(ws.event().await["data"]["n"], n);
    }
    publish(&a.client, &a.address, &room, json!({"n": 5})).await;
    assert_eq!(ws.event().await["data"]["n"], 5);
    drop(ws);
    b.stop().await;
}

#[tokio::test]
async fn after_a_redis_restart_delivery_resumes_and_the_gap_is_reported() {
    let (redis, a, b) = pair_on_private_redis().await;
    let sam = user(&a, "Sam").await;
    let chat_id = chat(&a, &sam, &[], false).await;
    let room = format!("chat:{chat_id}");
    let mut ws = open(&b.address, &sam.token).await;
    ws.join("joinChatRoom", json!({"chatId": chat_id})).await;
    publish(&a.client, &a.address, &room, json!({"n": 1})).await;
    assert_eq!(ws.event().await["offset"], 1);

    let _redis = redis.restart().await;
    // Publishing works again once the nodes have reconnected.
    let client = a.client.clone();
    let base = a.address.clone();
    let mut published = None;
    for _ in 0..100 {
        let response = client
            .post(format!("{base}/api/v2/admin/rooms/publish"))
            .bearer_auth(SYSTEM_KEY)
            .json(&json!({"room": room, "type": "chat/message/added", "data": {"n": 2}}))
            .reply()
            .await;
        if response.status == 200 {
            published = Some(response.body);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(published.is_some(), "publishing resumed");
    // The room's history died with Redis: the member is told, then gets the new epoch's events.
    let gap = ws.event().await;
    assert_eq!(gap["type"], "room/gap", "{gap}");
    assert_eq!(gap["data"]["recovered"], false);
    let event = ws.event().await;
    assert_eq!(event["data"]["n"], 2);
    assert_eq!(event["offset"], 1);
    drop(ws);
    b.stop().await;
}

#[tokio::test]
async fn when_redis_loses_the_rooms_state_the_gap_is_reported() {
    let a = app().await;
    let sam = user(&a, "Sam").await;
    let chat_id = chat(&a, &sam, &[], false).await;
    let room = format!("chat:{chat_id}");
    let mut ws = open(&a.address, &sam.token).await;
    ws.join("joinChatRoom", json!({"chatId": chat_id})).await;
    publish(&a.client, &a.address, &room, json!({"n": 1})).await;
    assert_eq!(ws.event().await["offset"], 1);

    // As a Redis restart without persistence would: the room's offset, epoch and history go.
    let redis = redis::Client::open(a.settings.redis.url.expose_secret()).unwrap();
    let mut conn = redis.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}room:*", a.settings.redis.key_prefix))
        .query_async(&mut conn)
        .await
        .unwrap();
    let _: () = redis::cmd("DEL")
        .arg(keys)
        .query_async(&mut conn)
        .await
        .unwrap();

    publish(&a.client, &a.address, &room, json!({"n": 2})).await;
    let gap = ws.event().await;
    assert_eq!(gap["type"], "room/gap");
    assert_eq!(gap["data"]["recovered"], false);
    let event = ws.event().await;
    assert_eq!(
        (event["offset"].clone(), event["data"]["n"].clone()),
        (json!(1), json!(2))
    );
    // The new epoch is the gap notice's: a client resuming later names it.
    assert!(gap["data"]["epoch"].as_str().is_some_and(|e| !e.is_empty()));
}

#[tokio::test]
async fn a_dead_nodes_presence_entries_expire() {
    let a = spawn_app_with(
        |s| {
            with_system_key(s);
            s.ws.presence_ttl_secs = 2;
            s.ws.presence_interval_secs = 1;
        },
        None,
    )
    .await;
    let sam = user(&a, "Sam").await;
    let kim = user(&a, "Kim").await;
    let chat_id = chat(&a, &sam, &[&kim], false).await;
    let room = format!("chat:{chat_id}");

    // Kim is on a separate process, killed without a chance to clean up.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let s = &a.settings;
    let mut node = tokio::process::Command::new(env!("CARGO_BIN_EXE_vrooli"))
        .arg("serve")
        .env_remove("RUST_LOG")
        .env("VROOLI__DATABASE__URL", s.database.url.expose_secret())
        .env("VROOLI__REDIS__URL", s.redis.url.expose_secret())
        .env("VROOLI__REDIS__KEY_PREFIX", &s.redis.key_prefix)
        .env(
            "VROOLI__NODE__WORKER_ID",
            (s.node.worker_id + 3).to_string(),
        )
        .env("VROOLI__SERVER__HOST", "127.0.0.1")
        .env("VROOLI__SERVER__PORT", port.to_string())
        .env("VROOLI__AUTH__KEY_DIR", &s.auth.key_dir)
        .env("VROOLI__EMAIL__OUTBOX_DIR", &s.email.outbox_dir)
        .env("VROOLI__SMS__OUTBOX_DIR", &s.sms.outbox_dir)
        .env("VROOLI__JOBS__ENABLED", "false")
        .env("VROOLI__WS__PRESENCE_TTL_SECS", "2")
        .env("VROOLI__WS__PRESENCE_INTERVAL_SECS", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    wait_until(Duration::from_secs(20), "the node process", || async {
        reqwest::get(format!("{base}/healthcheck")).await.is_ok()
    })
    .await;
    let mut on_a = open(&a.address, &sam.token).await;
    on_a.join("joinChatRoom", json!({"chatId": chat_id})).await;
    let mut on_node = open(&base, &kim.token).await;
    on_node
        .join("joinChatRoom", json!({"chatId": chat_id}))
        .await;

    let online = |a: &TestApp, room: String| {
        let (client, base) = (a.client.clone(), a.address.clone());
        async move {
            let Reply { body: data, .. } =
                admin_get(&client, &base, &format!("/rooms/{room}/presence")).await;
            let mut users: Vec<String> =
                serde_json::from_value(data["data"]["online"].clone()).unwrap();
            users.sort();
            users
        }
    };
    let mut both = vec![sam.id.clone(), kim.id.clone()];
    both.sort();
    assert_eq!(online(&a, room.clone()).await, both);
    // Renewed while alive: still there after more than one TTL.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(online(&a, room.clone()).await, both);

    node.kill().await.unwrap();
    let killed_at = std::time::Instant::now();
    wait_until(Duration::from_secs(5), "kim's presence to expire", || {
        let f = online(&a, room.clone());
        let sam = sam.id.clone();
        async move { f.await == vec![sam] }
    })
    .await;
    assert!(
        killed_at.elapsed() <= Duration::from_secs(4),
        "{:?}",
        killed_at.elapsed()
    );
    drop(on_node);
    drop(on_a);
}

#[tokio::test]
async fn a_rooms_history_is_bounded_in_bytes() {
    let a = spawn_app_with(
        |s| {
            crate::ws::with_system_key(s);
            s.ws.history_max_bytes = 64 * 1024;
        },
        None,
    )
    .await;
    let room = "chat:424242";
    let pad = "x".repeat(10 * 1024);
    for n in 0..20 {
        crate::ws::publish(&a.client, &a.address, room, json!({"n": n, "pad": pad})).await;
    }
    let key = format!("{}room:{room}:history", a.settings.redis.key_prefix);
    let client = redis::Client::open(a.settings.redis.url.expose_secret()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let kept: Vec<String> = redis::cmd("LRANGE")
        .arg(&key)
        .arg(0)
        .arg(-1)
        .query_async(&mut conn)
        .await
        .unwrap();
    let bytes: usize = kept.iter().map(String::len).sum();
    assert!(bytes <= 64 * 1024, "{bytes} bytes kept");
    assert!(kept.len() >= 5, "the newest are kept: {}", kept.len());
    assert!(
        kept.last().unwrap().contains("\"n\":19"),
        "the newest is last"
    );
}
