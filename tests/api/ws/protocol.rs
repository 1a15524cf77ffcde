//! The protocol on one node, with Redis (cluster mode) and without it (single-node mode): the
//! same assertions must hold for both brokers.

use std::time::Duration;

use serde_json::json;

use super::*;
use crate::helpers::Reply;
use crate::helpers::SendReply;
use crate::helpers::spawn_app_with;

async fn app(redis: bool) -> TestApp {
    spawn_app_with(
        |s| {
            with_system_key(s);
            if !redis {
                s.redis.url = String::new().into();
            }
        },
        None,
    )
    .await
}

async fn protocol_round_trip(redis: bool) {
    let app = app(redis).await;
    let sam = user(&app, "Sam").await;
    let kim = user(&app, "Kim").await;
    let chat_id = chat(&app, &sam, &[&kim], false).await;
    let room = format!("chat:{chat_id}");

    let mut a = open(&app.address, &sam.token).await;
    let mut b = open(&app.address, &kim.token).await;
    let joined = a.join("joinChatRoom", json!({"chatId": chat_id})).await;
    assert_eq!(joined["room"], room);
    assert_eq!(joined["offset"], 0);
    assert!(joined["epoch"].as_str().is_some_and(|e| !e.is_empty()));
    assert_eq!(joined["online"], json!([sam.id]));
    let joined = b.join("joinChatRoom", json!({"chatId": chat_id})).await;
    let mut online: Vec<String> = serde_json::from_value(joined["online"].clone()).unwrap();
    online.sort();
    let mut both = vec![sam.id.clone(), kim.id.clone()];
    both.sort();
    assert_eq!(online, both);

    // An event: its id, type, room, offset and data, to every member; nothing more (the epoch
    // came with the ack).
    let published = publish(&app.client, &app.address, &room, json!({"text": "hi"})).await;
    assert_eq!(published["offset"], 1);
    for ws in [&mut a, &mut b] {
        let event = ws.event().await;
        assert_eq!(event["type"], "chat/message/added");
        assert_eq!(event["room"], room);
        assert_eq!(event["offset"], 1);
        assert_eq!(event["data"], json!({"text": "hi"}));
        assert_eq!(event["id"], published["id"]);
        let keys: Vec<&String> = event.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["data", "id", "offset", "room", "type"], "{event}");
    }

    // Typing reaches the others (and is not kept in the history: no offset).
    let ack = a
        .command("typing", json!({"chatId": chat_id, "isTyping": true}))
        .await;
    assert_eq!(ack["success"], true);
    let typing = b.event().await;
    assert_eq!(typing["type"], "chat/typing/updated");
    assert_eq!(
        typing["data"],
        json!({"starting": [sam.id], "ttlMs": 10_000})
    );
    assert!(typing["offset"].is_null());
    let _ = a.event().await; // its own typing echo

    // After leaving, nothing more arrives.
    let ack = b.command("leaveChatRoom", json!({"chatId": chat_id})).await;
    assert_eq!(ack["success"], true);
    publish(&app.client, &app.address, &room, json!({"text": "two"})).await;
    assert_eq!(a.event().await["offset"], 2);
    assert!(b.quiet_for(Duration::from_millis(300)).await);

    // The user's own room.
    a.join("joinUserRoom", json!({"userId": sam.id})).await;
    publish(
        &app.client,
        &app.address,
        &format!("user:{}", sam.id),
        json!({"credits": 1}),
    )
    .await;
    let event = a.event().await;
    assert_eq!(event["room"], format!("user:{}", sam.id));

    // The health report covers the actor system.
    let Reply {
        status,
        body: health,
        ..
    } = app.healthcheck().await;
    assert_eq!(status, 200);
    let websocket = &health["services"]["websocket"];
    assert_eq!(websocket["status"], "Operational", "{health}");
    assert_eq!(websocket["details"]["brokerConnected"], true);
}

#[tokio::test]
async fn protocol_round_trip_with_redis() {
    protocol_round_trip(true).await;
}

#[tokio::test]
async fn protocol_round_trip_single_node() {
    protocol_round_trip(false).await;
}

async fn bad_commands_and_refused_joins(redis: bool) {
    let app = app(redis).await;
    let sam = user(&app, "Sam").await;
    let kim = user(&app, "Kim").await;
    let private = chat(&app, &sam, &[], false).await;
    let open_chat = chat(&app, &sam, &[], true).await;
    let mut ws = open(&app.address, &kim.token).await;

    let error = |ack: &Value| ack["error"]["code"].as_str().unwrap().to_owned();
    let ack = ws.command("dance", json!({})).await;
    assert_eq!(
        (ack["success"].clone(), error(&ack)),
        (json!(false), "UnknownCommand".into())
    );
    assert_eq!(
        error(
            &ws.command("joinChatRoom", json!({"chatId": "not an id"}))
                .await
        ),
        "InvalidData"
    );
    // A private chat, a missing one and another user's room look the same: not found.
    assert_eq!(
        error(&ws.command("joinChatRoom", json!({"chatId": private})).await),
        "NotFound"
    );
    assert_eq!(
        error(&ws.command("joinChatRoom", json!({"chatId": "999"})).await),
        "NotFound"
    );
    assert_eq!(
        error(&ws.command("joinUserRoom", json!({"userId": sam.id})).await),
        "NotFound"
    );
    assert_eq!(
        error(&ws.command("typing", json!({"chatId": private})).await),
        "NotInRoom"
    );
    assert_eq!(
        error(
            &ws.command("requestCancellation", json!({"chatId": private}))
                .await
        ),
        "NotFound"
    );
    // Not JSON at all: an error ack with a null id, and the connection stays up.
    ws.send_text("{{{").await;
    let ack = ws.event().await;
    assert_eq!(
        (ack["ack"].clone(), error(&ack)),
        (json!(null), "InvalidJson".into())
    );
    // A chat open to anyone with an invite is not opened by its id.
    assert_eq!(
        error(
            &ws.command("joinChatRoom", json!({"chatId": open_chat}))
                .await
        ),
        "NotFound"
    );
    // A public chat may be joined by anyone signed in, but only its participants may stop its
    // bots' answers (someone pays for them).
    sqlx::query("UPDATE chats SET is_private = false WHERE id = $1::BIGINT")
        .bind(&open_chat)
        .execute(&app.db.pool)
        .await
        .unwrap();
    ws.join("joinChatRoom", json!({"chatId": open_chat})).await;
    let ack = ws
        .command("requestCancellation", json!({"chatId": open_chat}))
        .await;
    assert_eq!(error(&ack), "NotAllowed");
    let mut owner = open(&app.address, &sam.token).await;
    owner
        .join("joinChatRoom", json!({"chatId": open_chat}))
        .await;
    let ack = owner
        .command("requestCancellation", json!({"chatId": open_chat}))
        .await;
    assert_eq!(ack["success"], true);
}

#[tokio::test]
async fn bad_commands_and_refused_joins_with_redis() {
    bad_commands_and_refused_joins(true).await;
}

#[tokio::test]
async fn bad_commands_and_refused_joins_single_node() {
    bad_commands_and_refused_joins(false).await;
}

async fn reconnect_recovers_missed_events(redis: bool) {
    let app = app(redis).await;
    let sam = user(&app, "Sam").await;
    let chat_id = chat(&app, &sam, &[], false).await;
    let room = format!("chat:{chat_id}");
    let mut ws = open(&app.address, &sam.token).await;
    let joined = ws.join("joinChatRoom", json!({"chatId": chat_id})).await;
    let epoch = joined["epoch"].as_str().unwrap().to_owned();
    for n in 1..=3 {
        publish(&app.client, &app.address, &room, json!({"n": n})).await;
    }
    for n in 1..=3 {
        assert_eq!(ws.event().await["offset"], n);
    }
    drop(ws);
    for n in 4..=6 {
        publish(&app.client, &app.address, &room, json!({"n": n})).await;
    }

    // Back with {offset, epoch}: exactly the missed events, after the ack, then live ones.
    let mut ws = open(&app.address, &sam.token).await;
    let joined = ws
        .join(
            "joinChatRoom",
            json!({"chatId": chat_id, "offset": 3, "epoch": epoch}),
        )
        .await;
    assert_eq!(joined["recovered"], true);
    assert_eq!(joined["offset"], 6);
    for n in 4..=6 {
        assert_eq!(ws.event().await["data"]["n"], n);
    }
    publish(&app.client, &app.address, &room, json!({"n": 7})).await;
    assert_eq!(ws.event().await["data"]["n"], 7);
    assert!(
        ws.quiet_for(Duration::from_millis(200)).await,
        "nothing twice"
    );

    // An epoch the room no longer has: recovered false (refetch over REST).
    let mut other = open(&app.address, &sam.token).await;
    let joined = other
        .join(
            "joinChatRoom",
            json!({"chatId": chat_id, "offset": 1, "epoch": "gone"}),
        )
        .await;
    assert_eq!(joined["recovered"], false);
}

#[tokio::test]
async fn reconnect_recovers_missed_events_with_redis() {
    reconnect_recovers_missed_events(true).await;
}

#[tokio::test]
async fn reconnect_recovers_missed_events_single_node() {
    reconnect_recovers_missed_events(false).await;
}

#[tokio::test]
async fn the_handshake_needs_a_session_and_a_safe_origin() {
    let app = app(true).await;
    let sam = user(&app, "Sam").await;
    assert_eq!(try_open(&app.address, "", &[]).await.err(), Some(401));
    assert_eq!(
        try_open(
            &app.address,
            "",
            &[("cookie", "session-v2=forged.token.here")]
        )
        .await
        .err(),
        Some(401)
    );
    let cookie = format!("session-v2={}", sam.token);
    assert_eq!(
        try_open(
            &app.address,
            "",
            &[("cookie", &cookie), ("origin", "https://evil.example")]
        )
        .await
        .err(),
        Some(403)
    );
    // A token in the query, or as a subprotocol entry.
    let mut ws = try_open(&app.address, &format!("?token={}", sam.token), &[])
        .await
        .expect("query token");
    ws.join("joinUserRoom", json!({"userId": sam.id})).await;
    let protocols = format!("vrooli.v1, bearer.{}", sam.token);
    let mut ws = try_open(&app.address, "", &[("sec-websocket-protocol", &protocols)])
        .await
        .expect("subprotocol token");
    ws.join("joinUserRoom", json!({"userId": sam.id})).await;
}

#[tokio::test]
async fn typing_that_is_not_renewed_stops_by_itself() {
    let app = spawn_app_with(
        |s| {
            with_system_key(s);
            s.ws.typing_ttl_secs = 1;
        },
        None,
    )
    .await;
    let sam = user(&app, "Sam").await;
    let kim = user(&app, "Kim").await;
    let chat_id = chat(&app, &sam, &[&kim], false).await;
    let mut a = open(&app.address, &sam.token).await;
    let mut b = open(&app.address, &kim.token).await;
    a.join("joinChatRoom", json!({"chatId": chat_id})).await;
    b.join("joinChatRoom", json!({"chatId": chat_id})).await;
    a.command("typing", json!({"chatId": chat_id})).await;
    let started = b.event().await;
    assert_eq!(started["data"]["starting"], json!([sam.id]));
    assert_eq!(started["data"]["ttlMs"], 1000);
    let since = std::time::Instant::now();
    let stopped = b.event().await;
    assert_eq!(stopped["data"], json!({"stopping": [sam.id]}));
    assert!(
        since.elapsed() < Duration::from_secs(3),
        "{:?}",
        since.elapsed()
    );
}

#[tokio::test]
async fn a_removed_participant_is_taken_out_of_the_room_on_every_node() {
    let a = spawn_app_with(with_system_key, None).await;
    let b = crate::helpers::SecondNode::start(&a).await;
    let sam = user(&a, "Sam").await;
    let kim = user(&a, "Kim").await;
    let lee = user(&a, "Lee").await;
    let private = chat(&a, &sam, &[&sam, &kim], false).await;
    let mut kim_ws = open(&b.address, &kim.token).await;
    kim_ws
        .join("joinChatRoom", json!({"chatId": private}))
        .await;

    let removed = a
        .client
        .delete(a.url(&format!("/api/v2/chatParticipant/{private}/{}", kim.id)))
        .header("cookie", format!("session-v2={}", sam.token))
        .reply()
        .await;
    assert_eq!(removed.status, 200);
    let notice = loop {
        let event = kim_ws.event().await;
        if event["type"] == "room/removed" {
            break event;
        }
    };
    assert_eq!(notice["room"], format!("chat:{private}"));
    let posted = a
        .client
        .post(a.url("/api/v2/chatMessage"))
        .header("cookie", format!("session-v2={}", sam.token))
        .json(&json!({"chatId": private, "text": "after Kim left"}))
        .reply()
        .await;
    assert_eq!(posted.status, 200);
    assert!(
        kim_ws.quiet_for(Duration::from_millis(800)).await,
        "nothing more of the chat reaches Kim"
    );

    // A public chat made private: a reader who is not a participant is taken out too.
    let public = chat(&a, &sam, &[&sam], false).await;
    sqlx::query("UPDATE chats SET is_private = false WHERE id = $1::BIGINT")
        .bind(&public)
        .execute(&a.db.pool)
        .await
        .unwrap();
    let mut lee_ws = open(&b.address, &lee.token).await;
    lee_ws.join("joinChatRoom", json!({"chatId": public})).await;
    let made_private = a
        .client
        .put(a.url(&format!("/api/v2/chat/{public}")))
        .header("cookie", format!("session-v2={}", sam.token))
        .json(&json!({"isPrivate": true}))
        .reply()
        .await;
    assert_eq!(made_private.status, 200);
    let notice = loop {
        let event = lee_ws.event().await;
        if event["type"] == "room/removed" {
            break event;
        }
    };
    assert_eq!(notice["data"]["reason"], "AccessRevoked");
    drop((kim_ws, lee_ws));
    b.stop().await;
}
