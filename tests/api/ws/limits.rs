//! Limits and endings: a client that stops reading is cut off and its resources released; frames
//! over the size limit; connections per user; a silent client times out; shutdown asks clients
//! to reconnect.

use std::time::Duration;

use serde_json::json;

use super::*;
use crate::helpers::{spawn_app_with, wait_until};

async fn node_stats(app: &TestApp) -> Value {
    let path = format!("/nodes/{}/stats", app.settings.node.worker_id);
    admin_get(&app.client, &app.address, &path).await.body["data"].clone()
}

#[tokio::test]
async fn a_client_that_stops_reading_is_cut_off_and_released() {
    slow_client_is_cut_off(|s| s.ws.outbound_queue = 16).await;
}

#[tokio::test]
async fn queued_bytes_are_bounded_not_only_queued_frames() {
    // A queue that would hold 100,000 frames (6 GB of these), but only 256 KiB of them.
    slow_client_is_cut_off(|s| {
        s.ws.outbound_queue = 100_000;
        s.ws.outbound_queue_bytes = 256 * 1024;
    })
    .await;
}

async fn slow_client_is_cut_off(limit: impl FnOnce(&mut vrooli::config::Settings)) {
    let app = spawn_app_with(
        |s| {
            with_system_key(s);
            s.ws.close_grace_ms = 200;
            limit(s);
        },
        None,
    )
    .await;
    let sam = user(&app, "Sam").await;
    let kim = user(&app, "Kim").await;
    let chat_id = chat(&app, &sam, &[&kim], false).await;
    let room = format!("chat:{chat_id}");
    let mut slow = open(&app.address, &sam.token).await;
    slow.join("joinChatRoom", json!({"chatId": chat_id})).await;
    let mut reader = open(&app.address, &kim.token).await;
    reader
        .join("joinChatRoom", json!({"chatId": chat_id}))
        .await;

    // `slow` reads nothing from here on; 64 KiB events fill the socket buffers, then its queue.
    let big = "x".repeat(64 * 1024);
    let mut n = 0;
    let started = std::time::Instant::now();
    while node_stats(&app).await["connections"] == 2 {
        n += 1;
        publish(
            &app.client,
            &app.address,
            &room,
            json!({"n": n, "pad": big}),
        )
        .await;
        assert_eq!(
            reader.event().await["data"]["n"],
            n,
            "the reading member keeps up"
        );
        assert!(started.elapsed() < Duration::from_secs(60), "never cut off");
    }
    // Released on the server: one connection left, and the room still serves the other member.
    assert_eq!(node_stats(&app).await["connections"], 1);
    publish(&app.client, &app.address, &room, json!({"n": 0})).await;
    assert_eq!(reader.event().await["data"]["n"], 0);
    // The slow client finds its connection ended (with 4008 if the close frame got through).
    let code = slow.close_code(Duration::from_secs(30)).await;
    assert!(matches!(code, Some(4008) | Some(1006)), "{code:?}");
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("vrooli_ws_slow_disconnects_total 1"),
        "{metrics}"
    );
    assert!(metrics.contains("vrooli_ws_connections 1"), "{metrics}");
}

#[tokio::test]
async fn a_frame_over_the_limit_closes_with_1009() {
    let app = spawn_app_with(
        |s| {
            s.ws.max_frame_bytes = 4096;
            s.ws.max_message_bytes = 4096;
        },
        None,
    )
    .await;
    let sam = user(&app, "Sam").await;
    let mut ws = open(&app.address, &sam.token).await;
    let big = format!(
        r#"{{"id":"1","cmd":"typing","data":{{"pad":"{}"}}}}"#,
        "x".repeat(8192)
    );
    ws.send_text(&big).await;
    assert_eq!(ws.close_code(Duration::from_secs(5)).await, Some(1009));

    // Frames each within the limit that add up past the message limit: the same 1009.
    let mut ws = open(&app.address, &sam.token).await;
    let mut parts = vec![r#"{"id":"1","cmd":"typing","data":{"pad":""#.to_owned()];
    parts.extend((0..4).map(|_| "x".repeat(2048)));
    parts.push(r#""}}"#.to_owned());
    ws.send_fragmented(&parts).await;
    assert_eq!(ws.close_code(Duration::from_secs(5)).await, Some(1009));
}

#[tokio::test]
async fn connections_per_user_are_limited() {
    let app = spawn_app_with(|s| s.ws.max_connections_per_user = 2, None).await;
    let sam = user(&app, "Sam").await;
    let first = open(&app.address, &sam.token).await;
    let _second = open(&app.address, &sam.token).await;
    let cookie = format!("{COOKIE}={}", sam.token);
    assert_eq!(
        try_open(&app.address, "", &[("cookie", &cookie)])
            .await
            .err(),
        Some(429)
    );
    // A place frees up when a connection ends.
    drop(first);
    wait_until(Duration::from_secs(5), "a free place", || async {
        try_open(&app.address, "", &[("cookie", &cookie)])
            .await
            .is_ok()
    })
    .await;
}

#[tokio::test]
async fn a_silent_client_times_out() {
    let app = spawn_app_with(
        |s| {
            s.ws.heartbeat_interval_secs = 1;
            s.ws.client_timeout_secs = 2;
        },
        None,
    )
    .await;
    let sam = user(&app, "Sam").await;
    let mut ws = open(&app.address, &sam.token).await;
    // Not reading means not answering pings either.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(ws.close_code(Duration::from_secs(5)).await, Some(4000));
}

#[tokio::test]
async fn shutdown_tells_clients_to_reconnect() {
    let app = spawn_app_with(|_| {}, None).await;
    let sam = user(&app, "Sam").await;
    let mut ws = open(&app.address, &sam.token).await;
    ws.join("joinUserRoom", json!({"userId": sam.id})).await;
    let shutdown = app.shutdown.clone();
    let stopping = tokio::spawn(async move { shutdown.shutdown().await });
    assert_eq!(ws.close_code(Duration::from_secs(5)).await, Some(1012));
    tokio::time::timeout(Duration::from_secs(10), stopping)
        .await
        .expect("shutdown finishes")
        .unwrap();
}

#[tokio::test]
async fn a_connection_that_floods_commands_is_refused_then_closed_with_1008() {
    let app = spawn_app_with(
        |s| {
            s.ws.command_rate_per_sec = 1.0;
            s.ws.command_burst = 5;
        },
        None,
    )
    .await;
    let sam = user(&app, "Sam").await;
    let mut ws = open(&app.address, &sam.token).await;
    let mut codes = Vec::new();
    for _ in 0..8 {
        let ack = ws.command("joinUserRoom", json!({"userId": sam.id})).await;
        codes.push(ack["error"]["code"].as_str().unwrap_or("ok").to_owned());
    }
    assert_eq!(&codes[..5], ["ok"; 5], "{codes:?}");
    assert!(codes[5..].iter().all(|c| c == "RateLimited"), "{codes:?}");
    // Keep going past as many refusals again: closed.
    for _ in 0..5 {
        ws.send_text(r#"{"id":"x","cmd":"leaveUserRoom","data":{}}"#)
            .await;
    }
    assert_eq!(ws.close_code(Duration::from_secs(5)).await, Some(1008));
}
