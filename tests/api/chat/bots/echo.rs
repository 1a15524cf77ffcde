//! The built-in echo model: its chunks gathered per `ai.stream_interval_ms`, two people and a
//! bot on two nodes seeing everything in order, and a single node without Redis. Helpers come
//! from the parent module.

use super::*;

#[tokio::test]
async fn chunks_go_out_at_most_once_per_interval_with_all_that_arrived_meanwhile() {
    // The echo model streams word by word as fast as it can. After the first, a chunk is
    // published at most once per `ai.stream_interval_ms`, whole and in order.
    let interval_ms = 40;
    let a = app_with_providers(move |s| s.ai.stream_interval_ms = interval_ms).await;
    let sam = user(&a, "Sam").await;
    let echo = bot(&a, "Echo", json!({})).await;
    let chat = create_chat(&a, &sam, &[&echo], json!({})).await;
    let mut ws = open(&a.address, &sam.token).await;
    ws.join("joinChatRoom", json!({"chatId": chat})).await;
    let words = 400;
    let text = (0..words)
        .map(|i| format!("w{i}"))
        .collect::<Vec<_>>()
        .join(" ");
    let asked = std::time::Instant::now();
    let Reply { status, body, .. } = post(
        &a,
        "/chatMessage",
        &sam,
        json!({"chatId": chat, "text": text}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let seen = until_idle(&mut ws).await;
    let elapsed_ms = asked.elapsed().as_millis() as u64;
    assert_eq!(streamed_text(&seen), text, "every word, once, in order");
    let chunks: Vec<u64> = seen
        .iter()
        .filter(|e| e["type"] == "bot/response/stream" && e["data"]["__type"] == "stream")
        .map(|e| e["data"]["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(chunks, (0..chunks.len() as u64).collect::<Vec<_>>());
    // The first chunk, one per interval after it, and the last as the stream ended. (Without
    // the interval this echo gave 105-197 chunks here, a few words each, in about a second.)
    assert!(
        chunks.len() as u64 <= elapsed_ms / interval_ms + 2,
        "{} chunks in {elapsed_ms} ms",
        chunks.len()
    );
}

#[tokio::test]
async fn two_people_and_a_bot_on_two_nodes_see_everything_in_order() {
    let a = spawn_app_with(with_system_key, None).await;
    let b = SecondNode::start(&a).await;
    let sam = user(&a, "Sam").await;
    let kim = user(&a, "Kim").await;
    let echo = bot(&a, "Echo", json!({})).await;
    let chat = create_chat(&a, &sam, &[&echo], json!({})).await;
    sqlx::query("INSERT INTO chat_participants (id, chat_id, user_id) VALUES (99, $1, $2)")
        .bind(chat.parse::<i64>().unwrap())
        .bind(kim.id.parse::<i64>().unwrap())
        .execute(&a.db.pool)
        .await
        .unwrap();
    let mut on_a = open(&a.address, &sam.token).await;
    let mut on_b = open(&b.address, &kim.token).await;
    on_a.join("joinChatRoom", json!({"chatId": chat})).await;
    on_b.join("joinChatRoom", json!({"chatId": chat})).await;

    let Reply { status, .. } = post(
        &a,
        "/chatMessage",
        &sam,
        json!({"chatId": chat, "text": "hello there"}),
    )
    .await;
    assert_eq!(status, 200);
    let seen_a = until_idle(&mut on_a).await;
    let seen_b = until_idle(&mut on_b).await;
    for seen in [&seen_a, &seen_b] {
        assert_eq!(streamed_text(seen), "hello there");
        let end = end_of(seen);
        assert_eq!(end["__type"], "end");
        assert_eq!(end["finalMessage"]["text"], "hello there");
        assert_eq!(end["finalMessage"]["userId"], echo);
        let added: Vec<_> = seen
            .iter()
            .filter(|e| e["type"] == "chat/message/added")
            .map(|e| e["data"]["message"]["text"].clone())
            .collect();
        assert_eq!(
            added,
            vec![json!("hello there"), json!("hello there")],
            "the user's and the bot's"
        );
        // Offsets strictly increase: one order for everyone.
        let offsets: Vec<u64> = seen.iter().filter_map(|e| e["offset"].as_u64()).collect();
        assert!(offsets.windows(2).all(|w| w[0] < w[1]), "{offsets:?}");
    }
    assert_eq!(
        seen_a, seen_b,
        "both nodes delivered the same events in the same order"
    );

    // Kim writes through node B; Sam sees it on node A.
    let Reply { status, .. } = api(
        &a,
        reqwest::Method::POST,
        "/chatMessage",
        Some(&kim),
        Some(json!({"chatId": chat, "text": "from kim"})),
    )
    .await;
    assert_eq!(status, 200);
    let seen = until_idle(&mut on_a).await;
    assert_eq!(seen[0]["type"], "chat/message/added");
    assert_eq!(streamed_text(&seen), "from kim");
    drop((on_a, on_b));
    b.stop().await;
}

#[tokio::test]
async fn a_single_node_without_redis_answers_with_the_echo_model() {
    let app = app_with_providers(|s| s.redis.url = String::new().into()).await;
    let mut scene = scene(&app, json!({})).await;
    let seen = scene.ask(&app, "nothing installed").await;
    assert_eq!(streamed_text(&seen), "nothing installed");
    assert_eq!(end_of(&seen)["finalMessage"]["status"], "Sent");
    assert_eq!(end_of(&seen)["finalMessage"]["userId"], scene.bot);
    let Reply { body: health, .. } = app.healthcheck().await;
    assert_eq!(health["mode"], "single-node");
}
