//! The outbox under faults: a Redis that stalls (SIGSTOP) past its response timeout while
//! messages and bot answers are written, and a node killed (-9) between its commits and their
//! publication. Every member ends with every event exactly once, in order. And events that
//! piled up go to a distant Redis a batch per round trip, even after Redis lost its scripts.

use std::collections::HashSet;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::chat::{bot, create_chat};
use crate::helpers::SendReply;
use crate::helpers::{
    PrivateRedis, SecondNode, SlowLink, TestApp, signal, spawn_app_with, wait_until,
};
use crate::ws::{User, Ws, open, user, with_system_key};

/// A node on a Redis of the test's own (so it can be paused without disturbing other tests).
async fn app_on(redis: &PrivateRedis) -> TestApp {
    app_at(redis.url()).await
}

/// A node whose Redis is at `url` (a private one, or a proxy in front of it).
async fn app_at(url: String) -> TestApp {
    spawn_app_with(
        move |s| {
            with_system_key(s);
            s.redis.url = url.into();
        },
        None,
    )
    .await
}

/// `POST /api/v2/chatMessage` on the node at `base` as `who`: the status.
async fn say(client: &reqwest::Client, base: &str, who: &User, chat: &str, text: &str) -> u16 {
    client
        .post(format!("{base}/api/v2/chatMessage"))
        .header("cookie", format!("session-v2={}", who.token))
        .json(&json!({"chatId": chat, "text": text}))
        .reply()
        .await
        .status
}

/// Room events (those with an offset) until `done` holds for them; volatile ones are checked
/// for repeats and set aside.
async fn collect_until(ws: &mut Ws, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let mut events = Vec::new();
    let mut chunks = HashSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !done(&events) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up; had {events:?}"
        );
        let event = ws.event().await;
        if event["offset"].is_null() {
            if event["type"] == "bot/response/stream" {
                let key = (
                    event["data"]["replyTo"].to_string(),
                    event["data"]["seq"].as_u64().expect("chunks are numbered"),
                );
                assert!(chunks.insert(key), "a chunk came twice: {event}");
            }
            continue;
        }
        events.push(event);
    }
    events
}

/// The room events that still arrive until the room is quiet for 1.5 s.
async fn rest(ws: &mut Ws) -> Vec<Value> {
    let mut events = Vec::new();
    while let Some(event) = ws.next_within(Duration::from_millis(1500)).await {
        if !event["offset"].is_null() {
            events.push(event);
        }
    }
    events
}

fn assert_once_in_order(events: &[Value]) {
    let mut ids = HashSet::new();
    let mut last = 0;
    for event in events {
        assert!(
            ids.insert(event["id"].as_str().unwrap().to_owned()),
            "event {} arrived twice",
            event["id"]
        );
        let offset = event["offset"].as_u64().unwrap();
        assert!(offset > last, "offset {offset} after {last}: {events:?}");
        last = offset;
        assert_ne!(event["type"], "room/gap", "nothing was lost: {event}");
    }
}

fn added(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["type"] == "chat/message/added")
        .map(|e| e["data"]["message"]["text"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_stalled_redis_neither_duplicates_nor_reorders_events() {
    let redis = PrivateRedis::start().await;
    let a = app_on(&redis).await;
    let b = SecondNode::start(&a).await;
    let sam = user(&a, "Sam").await;
    let echo = bot(&a, "Echo", json!({})).await;
    let chat = create_chat(&a, &sam, &[&echo], json!({})).await;
    let mut ws = open(&b.address, &sam.token).await;
    ws.join("joinChatRoom", json!({"chatId": chat})).await;
    // A second device that goes away before the stall and comes back after it.
    let mut away = open(&a.address, &sam.token).await;
    let left = away.join("joinChatRoom", json!({"chatId": chat})).await;
    drop(away);
    assert_eq!(say(&a.client, &a.address, &sam, &chat, "one").await, 200);
    // Redis stops answering for longer than the response timeout (2 s) while the server keeps
    // committing messages and the bot keeps answering.
    redis.pause();
    for text in ["two", "three"] {
        let status = tokio::time::timeout(
            Duration::from_secs(10),
            say(&a.client, &a.address, &sam, &chat, text),
        )
        .await
        .expect("a post does not wait on Redis");
        assert_eq!(status, 200, "writes go on while Redis stalls");
    }
    // The stall itself (what is tested is its length, past the 2 s response timeout), not a wait
    // for something to happen.
    tokio::time::sleep(Duration::from_secs(5)).await;
    redis.resume();

    // Three questions and three answers, each announced once, in order.
    let events = collect_until(&mut ws, |events| added(events).len() >= 6).await;
    assert_once_in_order(&events);
    let texts = added(&events);
    for question in ["one", "two", "three"] {
        assert_eq!(
            texts.iter().filter(|t| *t == question).count(),
            2,
            "{question}: the question and the echo's answer, once each: {texts:?}"
        );
    }
    let mut all = events.clone();
    all.extend(rest(&mut ws).await);
    assert_once_in_order(&all);
    assert_eq!(added(&all).len(), 6, "no repeats after the stall");

    // The device that was away recovers exactly what the other one saw, and says so truly.
    let mut back = open(&a.address, &sam.token).await;
    let joined = back
        .join(
            "joinChatRoom",
            json!({"chatId": chat, "offset": left["offset"], "epoch": left["epoch"]}),
        )
        .await;
    assert_eq!(joined["recovered"], true, "{joined}");
    let recovered = rest(&mut back).await;
    let ids = |events: &[Value]| -> Vec<String> {
        events
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        ids(&recovered),
        ids(&all),
        "the same events, once, in the same order"
    );
    wait_until(Duration::from_secs(10), "the outbox drained", || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM outbox_events")
            .fetch_one(&a.db.pool)
            .await
            .unwrap()
            == 0
    })
    .await;
    drop(ws);
    b.stop().await;
}

#[tokio::test]
async fn a_node_killed_between_commit_and_publish_loses_no_event() {
    let redis = PrivateRedis::start().await;
    let b = app_on(&redis).await;
    let sam = user(&b, "Sam").await;
    let chat = create_chat(&b, &sam, &[], json!({})).await;
    let mut ws = open(&b.address, &sam.token).await;
    ws.join("joinChatRoom", json!({"chatId": chat})).await;

    // Node A: the real binary, same database, Redis and signing keys.
    let mut node = tokio::process::Command::new(env!("CARGO_BIN_EXE_vrooli"))
        .arg("serve")
        .env_remove("RUST_LOG")
        .env("VROOLI__DATABASE__URL", &b.db.url)
        .env("VROOLI__REDIS__URL", redis.url())
        .env("VROOLI__REDIS__KEY_PREFIX", &b.settings.redis.key_prefix)
        .env("VROOLI__AUTH__KEY_DIR", &b.settings.auth.key_dir)
        .env("VROOLI__NODE__WORKER_ID", "7")
        .env("VROOLI__SERVER__HOST", "127.0.0.1")
        .env("VROOLI__SERVER__PORT", "0")
        .env("VROOLI__SERVER__WORKERS", "1")
        .env("VROOLI__SERVER__DEVELOPMENT", "true")
        // Rate limits live in Redis and fail closed while it stalls; the other tests turn them
        // off too.
        .env("VROOLI__RATE_LIMIT__ENABLED", "false")
        .env("VROOLI__LOG__FORMAT", "json")
        .env("VROOLI__LOG__LEVEL", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("vrooli runs");
    let mut lines = BufReader::new(node.stdout.take().unwrap()).lines();
    let port = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let event: Value = serde_json::from_str(&line).unwrap_or_default();
            if event["message"] == "http server listening" {
                return event["port"].as_u64().unwrap();
            }
        }
        panic!("node A exited before listening")
    })
    .await
    .expect("node A listens");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

    // Redis stalls; A commits three messages whose events it cannot publish; A is killed.
    redis.pause();
    for text in ["first", "second", "third"] {
        let node_a = format!("http://127.0.0.1:{port}");
        assert_eq!(say(&b.client, &node_a, &sam, &chat, text).await, 200);
    }
    signal(node.id().unwrap(), "-KILL");
    node.wait().await.unwrap();
    redis.resume();

    // Node B's sweeper publishes what A committed: each once, in order.
    let events = collect_until(&mut ws, |events| added(events).len() >= 3).await;
    assert_once_in_order(&events);
    assert_eq!(added(&events), ["first", "second", "third"]);
    let mut all = events.clone();
    all.extend(rest(&mut ws).await);
    assert_once_in_order(&all);
    assert_eq!(added(&all).len(), 3, "no repeats");
}

#[tokio::test]
async fn an_event_that_outlives_the_history_window_becomes_a_gap_not_silence() {
    let a = spawn_app_with(with_system_key, None).await;
    let sam = user(&a, "Sam").await;
    let chat = create_chat(&a, &sam, &[], json!({})).await;
    let mut ws = open(&a.address, &sam.token).await;
    ws.join("joinChatRoom", json!({"chatId": chat})).await;
    // An event committed long ago that nobody could publish (its node died while Redis was
    // away for longer than the history window): too late for any member to recover from the
    // history, so it must not appear as if it were new — and must not vanish either.
    sqlx::query(
        "INSERT INTO outbox_events (room, event_id, event_type, data, timestamp_ms, created_at)
         VALUES ('chat:' || $1, 'stale-1', 'chat/message/added', '{\"message\":{\"text\":\"stale\"}}',
                 0, now() - interval '1 hour')",
    )
    .bind(&chat)
    .execute(&a.db.pool)
    .await
    .unwrap();
    wait_until(
        Duration::from_secs(10),
        "the sweeper gave the event up",
        || async {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM outbox_events")
                .fetch_one(&a.db.pool)
                .await
                .unwrap()
                == 0
        },
    )
    .await;
    // The next event shows the room skipped an offset: the member is told of the gap (and
    // refetches over REST).
    assert_eq!(say(&a.client, &a.address, &sam, &chat, "after").await, 200);
    let mut gap = None;
    let texts = loop {
        let event = ws.event().await;
        if event["type"] == "room/gap" {
            gap = Some(event);
        } else if event["type"] == "chat/message/added" {
            break vec![
                event["data"]["message"]["text"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            ];
        }
    };
    let gap = gap.expect("a gap notice before the next message");
    assert_eq!(gap["data"]["recovered"], false, "{gap}");
    assert_eq!(texts, ["after"], "the stale event was not published as new");
}

#[tokio::test]
async fn events_that_piled_up_go_to_redis_a_batch_per_round_trip_not_one_each() {
    // Redis 15 ms away each way: publishing 300 events one round trip at a time would take at
    // least 300 × 30 ms = 9 s.
    let redis = PrivateRedis::start().await;
    let link = SlowLink::start(redis.port, Duration::from_millis(15)).await;
    let a = app_at(link.url()).await;
    let sam = user(&a, "Sam").await;
    let chat = create_chat(&a, &sam, &[], json!({})).await;
    let mut ws = open(&a.address, &sam.token).await;
    ws.join("joinChatRoom", json!({"chatId": chat})).await;
    // As after a Redis restart: the publish script is not cached, so the first pipeline is
    // refused (NOSCRIPT) and must load it and send the batch again.
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut conn)
        .await
        .unwrap();
    // 300 events committed by a node that died before publishing any: the sweeper finds them.
    sqlx::query(
        "INSERT INTO outbox_events (room, event_id, event_type, data, timestamp_ms, created_at)
         SELECT 'chat:' || $1, 'piled-' || n, 'chat/message/added',
                jsonb_build_object('message', jsonb_build_object('text', n::text)),
                (extract(epoch FROM now()) * 1000)::BIGINT, now() - interval '2 seconds'
           FROM generate_series(1, 300) AS n ORDER BY n",
    )
    .bind(&chat)
    .execute(&a.db.pool)
    .await
    .unwrap();
    let started = std::time::Instant::now();
    let events = collect_until(&mut ws, |events| added(events).len() >= 300).await;
    let took = started.elapsed();
    assert_once_in_order(&events);
    let expected: Vec<String> = (1..=300).map(|n| n.to_string()).collect();
    assert_eq!(
        added(&events),
        expected,
        "every event once, in commit order"
    );
    // The sweep interval (0.5 s), three batches of 100 (a round trip each, plus the database)
    // and the deliveries' own 15 ms: well under the 9 s of one round trip per event.
    assert!(
        took < Duration::from_secs(4),
        "300 piled-up events took {took:?} to reach the member"
    );
}

#[tokio::test]
async fn a_bots_chunks_do_not_overtake_the_message_they_answer_while_it_is_in_the_outbox() {
    let a = spawn_app_with(with_system_key, None).await;
    let sam = user(&a, "Sam").await;
    let echo = bot(&a, "Echo", json!({})).await;
    let chat = create_chat(&a, &sam, &[&echo], json!({})).await;
    let mut ws = open(&a.address, &sam.token).await;
    ws.join("joinChatRoom", json!({"chatId": chat})).await;
    // The room's relay lock held elsewhere (as by a relay on a node whose Redis is slow): the
    // message stays in the outbox while the bot's job starts answering it at once.
    let mut holder = a.db.pool.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 7107))")
        .bind(format!("chat:{chat}"))
        .execute(&mut *holder)
        .await
        .unwrap();
    assert_eq!(say(&a.client, &a.address, &sam, &chat, "hello").await, 200);
    // The hold itself (under ws.outbox_order_wait_ms), not a wait for something to happen.
    tokio::time::sleep(Duration::from_millis(500)).await;
    holder.rollback().await.unwrap();

    let room = format!("chat:{chat}");
    let mut seen = Vec::new();
    loop {
        let event = ws.event().await;
        if event["room"] != room.as_str() {
            continue;
        }
        let end = event["type"] == "bot/response/stream" && event["data"]["__type"] == "end";
        seen.push(event);
        if end {
            break;
        }
    }
    assert_eq!(seen[0]["type"], "chat/message/added", "{seen:?}");
    assert_eq!(seen[0]["data"]["message"]["text"], "hello");
    let thinking = seen
        .iter()
        .position(|e| e["type"] == "bot/status/updated" && e["data"]["status"] == "thinking")
        .expect("the bot's status");
    let first_chunk = seen
        .iter()
        .position(|e| e["type"] == "bot/response/stream")
        .expect("chunks");
    assert!(
        thinking < first_chunk,
        "a chunk came before the status: {seen:?}"
    );
}
