//! Chat and message endpoints: each flow, the events it publishes, paging, bad input, replies.
//! Who may do what is in `permissions.rs`.

use reqwest::Method;
use serde_json::json;

use super::*;
use crate::helpers::spawn_app_with;
use crate::ws::{open, user, with_system_key};

#[tokio::test]
async fn messages_are_stored_paged_and_published_to_the_room() {
    let app = spawn_app_with(with_system_key, None).await;
    let sam = user(&app, "Sam").await;
    let chat = create_chat(&app, &sam, &[], json!({})).await;
    let Reply { status, body, .. } = get(&app, &format!("/chat/{chat}"), Some(&sam)).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["participants"][0]["userId"], sam.id);
    // A chat without messages: an empty page (the access check and the page are one query).
    let Reply { status, body, .. } =
        get(&app, &format!("/chatMessages?chatId={chat}"), Some(&sam)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["edges"], json!([]));
    assert_eq!(body["data"]["pageInfo"]["hasNextPage"], false);
    // One that does not exist: 404, as for one the caller may not read.
    let Reply { status, .. } = get(&app, "/chatMessages?chatId=123456789", Some(&sam)).await;
    assert_eq!(status, 404);

    let mut ws = open(&app.address, &sam.token).await;
    ws.join("joinChatRoom", json!({"chatId": chat})).await;

    let mut ids = Vec::new();
    for n in 0..3 {
        let Reply { status, body, .. } = post(
            &app,
            "/chatMessage",
            &sam,
            json!({"chatId": chat, "text": format!("message {n}")}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        ids.push(body["data"]["id"].as_str().unwrap().to_owned());
        let event = ws.event().await;
        assert_eq!(event["type"], "chat/message/added");
        assert_eq!(event["data"]["message"]["text"], format!("message {n}"));
    }
    // A reply makes a branch.
    let Reply {
        status,
        body: reply,
        ..
    } = post(
        &app,
        "/chatMessage",
        &sam,
        json!({"chatId": chat, "text": "reply", "parentId": ids[0]}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(reply["data"]["parentId"], ids[0]);
    ws.event().await;

    // Newest first, two at a time.
    let Reply { body: page1, .. } = get(
        &app,
        &format!("/chatMessages?chatId={chat}&take=2"),
        Some(&sam),
    )
    .await;
    let texts: Vec<_> = page1["data"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["text"].clone())
        .collect();
    assert_eq!(texts, vec![json!("reply"), json!("message 2")]);
    assert_eq!(page1["data"]["pageInfo"]["hasNextPage"], true);
    let cursor = page1["data"]["pageInfo"]["endCursor"].as_str().unwrap();
    let Reply { body: page2, .. } = get(
        &app,
        &format!("/chatMessages?chatId={chat}&take=2&after={cursor}"),
        Some(&sam),
    )
    .await;
    assert_eq!(page2["data"]["edges"].as_array().unwrap().len(), 2);
    assert_eq!(page2["data"]["pageInfo"]["hasNextPage"], false);

    // Edit and delete publish too.
    let Reply { status, .. } = api(
        &app,
        Method::PUT,
        &format!("/chatMessage/{}", ids[1]),
        Some(&sam),
        Some(json!({"text": "edited"})),
    )
    .await;
    assert_eq!(status, 200);
    let event = ws.event().await;
    assert_eq!(
        (
            event["type"].clone(),
            event["data"]["message"]["text"].clone()
        ),
        (json!("chat/message/updated"), json!("edited"))
    );
    let Reply { status, .. } = api(
        &app,
        Method::DELETE,
        &format!("/chatMessage/{}", ids[2]),
        Some(&sam),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let event = ws.event().await;
    assert_eq!(
        (event["type"].clone(), event["data"]["id"].clone()),
        (json!("chat/message/removed"), json!(ids[2]))
    );

    // My chats.
    let Reply { body: chats, .. } = get(&app, "/chats", Some(&sam)).await;
    assert_eq!(chats["data"]["edges"][0]["node"]["id"], chat);
}

#[tokio::test]
async fn bad_input_is_refused_and_nothing_is_written() {
    let app = spawn_app_with(with_system_key, None).await;
    let sam = user(&app, "Sam").await;
    let chat = create_chat(&app, &sam, &[], json!({})).await;
    let code =
        |body: &serde_json::Value| body["errors"][0]["code"].as_str().unwrap_or("").to_owned();
    let Reply { status, body, .. } = post(
        &app,
        "/chatMessage",
        &sam,
        json!({"chatId": chat, "text": "  "}),
    )
    .await;
    assert_eq!((status, code(&body)), (422, "InvalidText".into()));
    let Reply { status, body, .. } = post(
        &app,
        "/chatMessage",
        &sam,
        json!({"chatId": chat, "text": "x".repeat(32_769)}),
    )
    .await;
    assert_eq!((status, code(&body)), (422, "InvalidText".into()));
    let Reply { status, .. } = post(
        &app,
        "/chatMessage",
        &sam,
        json!({"chatId": "nope", "text": "hi"}),
    )
    .await;
    assert!(status == 400 || status == 422, "{status}");
    let Reply { status, body, .. } = post(
        &app,
        "/chatMessage",
        &sam,
        json!({"chatId": chat, "text": "hi", "parentId": "12345"}),
    )
    .await;
    assert_eq!((status, code(&body)), (422, "InvalidParent".into()));
    let Reply { status, body, .. } = post(&app, "/chat", &sam, json!({"botIds": [sam.id]})).await;
    assert_eq!((status, code(&body)), (422, "NotABot".into()));
    let Reply { status, body, .. } = get(
        &app,
        &format!("/chatMessages?chatId={chat}&take=500"),
        Some(&sam),
    )
    .await;
    assert_eq!((status, code(&body)), (400, "InvalidTake".into()));
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM chat_messages")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(count, 0);
}

#[tokio::test]
async fn concurrent_replies_to_one_message_get_distinct_versions() {
    let app = spawn_app_with(with_system_key, None).await;
    let sam = user(&app, "Sam").await;
    let chat = create_chat(&app, &sam, &[], json!({})).await;
    let Reply { body: root, .. } = post(
        &app,
        "/chatMessage",
        &sam,
        json!({"chatId": chat, "text": "root"}),
    )
    .await;
    let root = root["data"]["id"].as_str().unwrap().to_owned();
    let replies = (0..10).map(|n| {
        post(
            &app,
            "/chatMessage",
            &sam,
            json!({"chatId": chat, "text": format!("reply {n}"), "parentId": root}),
        )
    });
    let mut versions: Vec<i64> = futures_util::future::join_all(replies)
        .await
        .into_iter()
        .map(|Reply { status, body, .. }| {
            assert_eq!(status, 200, "{body}");
            body["data"]["versionIndex"].as_i64().unwrap()
        })
        .collect();
    versions.sort_unstable();
    assert_eq!(versions, (0..10).collect::<Vec<_>>());
}

#[tokio::test]
async fn removed_participants_no_longer_edit_or_delete_their_messages() {
    let app = spawn_app_with(with_system_key, None).await;
    let sam = user(&app, "Sam").await;
    let kim = user(&app, "Kim").await;
    let chat = create_chat(&app, &sam, &[], json!({})).await;
    sqlx::query("INSERT INTO chat_participants (id, chat_id, user_id) VALUES ((SELECT COALESCE(MAX(id), 0) + 1 FROM chat_participants), $1::BIGINT, $2::BIGINT)")
        .bind(&chat)
        .bind(&kim.id)
        .execute(&app.db.pool)
        .await
        .unwrap();
    let Reply {
        status,
        body: message,
        ..
    } = post(
        &app,
        "/chatMessage",
        &kim,
        json!({"chatId": chat, "text": "kim was here"}),
    )
    .await;
    assert_eq!(status, 200, "{message}");
    let message = message["data"]["id"].as_str().unwrap().to_owned();
    let path = format!("/chatMessage/{message}");
    let edit = |text: &'static str| {
        api(
            &app,
            Method::PUT,
            &path,
            Some(&kim),
            Some(json!({"text": text})),
        )
    };
    assert_eq!(edit("still here").await.status, 200, "a participant edits");

    let removed = api(
        &app,
        Method::DELETE,
        &format!("/chatParticipant/{chat}/{}", kim.id),
        Some(&sam),
        None,
    )
    .await;
    assert_eq!(removed.status, 200, "{:?}", removed.body);
    assert_eq!(edit("rewritten after removal").await.status, 404);
    let delete = api(
        &app,
        Method::DELETE,
        &format!("/chatMessage/{message}"),
        Some(&kim),
        None,
    )
    .await;
    assert_eq!(delete.status, 404);
    let text: String = sqlx::query_scalar("SELECT text FROM chat_messages WHERE id = $1::BIGINT")
        .bind(&message)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(text, "still here");
}

/// The page GET looks its session up in its own statement, not in the revocation list
/// (`http::auth::session`, `CONFIRMED_BY_HANDLER`). A session signed out on one node reads as
/// nobody on another at once; one revoked in its row behind the list's back (which the list
/// alone would miss until the access window ends) too; either way the cookie is removed.
#[tokio::test]
async fn a_page_read_with_an_ended_session_reads_as_nobody_and_drops_the_cookie() {
    use crate::auth::set_cookie;
    use crate::helpers::{SecondNode, SendReply, spawn_app_with_redis};
    for redis in [true, false] {
        let app = spawn_app_with_redis(redis).await;
        let second = redis.then_some(SecondNode::start(&app).await);
        let (sam, ann) = (user(&app, "Sam").await, user(&app, "Ann").await);
        let private = create_chat(&app, &sam, &[], json!({"isPrivate": true})).await;
        let public = create_chat(&app, &sam, &[], json!({"isPrivate": false})).await;
        let anns = create_chat(&app, &ann, &[], json!({"isPrivate": true})).await;
        for (chat, who) in [(&private, &sam), (&public, &sam), (&anns, &ann)] {
            let Reply { status, .. } = post(
                &app,
                "/chatMessage",
                who,
                json!({"chatId": chat, "text": "hello"}),
            )
            .await;
            assert_eq!(status, 200);
        }
        let page = |base: String, chat: &str, who: &crate::ws::User| {
            app.client
                .get(format!("{base}/api/v2/chatMessages?chatId={chat}"))
                .header("cookie", format!("{}={}", crate::auth::COOKIE, who.token))
                .reply()
        };
        // Live: the private chat reads, and nothing touches the cookie.
        let live = page(app.address.clone(), &private, &sam).await;
        assert_eq!(live.status, 200, "redis: {redis}");
        assert_eq!(live.body["data"]["edges"].as_array().unwrap().len(), 1);
        assert_eq!(set_cookie(&live), None);

        // Sam signs out here; the page is read on the other node (or here, without Redis).
        let Reply { status, .. } = post(&app, "/auth/logout", &sam, json!({})).await;
        assert_eq!(status, 200);
        let elsewhere = second
            .as_ref()
            .map_or(app.address.clone(), |b| b.address.clone());
        let gone = page(elsewhere.clone(), &private, &sam).await;
        assert_eq!(gone.status, 404, "redis: {redis}: read as nobody");
        assert_eq!(gone.body["errors"][0]["code"], "ChatNotFound");
        assert_eq!(
            set_cookie(&gone).as_deref(),
            Some(""),
            "the dead cookie is removed"
        );
        // A public chat still reads, as nobody.
        let public_page = page(elsewhere.clone(), &public, &sam).await;
        assert_eq!(public_page.status, 200);
        assert_eq!(
            public_page.body["data"]["edges"].as_array().unwrap().len(),
            1
        );
        assert_eq!(set_cookie(&public_page).as_deref(), Some(""));
        // A chat that does not exist: 404 either way, and the dead cookie still goes (the
        // session is then looked up on its own).
        let missing = page(elsewhere, "123456789", &sam).await;
        assert_eq!(missing.status, 404);
        assert_eq!(set_cookie(&missing).as_deref(), Some(""), "redis: {redis}");

        // Ann's session ends in its row only: the revocation list never hears of it.
        sqlx::query("UPDATE sessions SET revoked_at = now() WHERE user_id = $1")
            .bind(ann.id.parse::<i64>().unwrap())
            .execute(&app.db.pool)
            .await
            .unwrap();
        let behind = page(app.address.clone(), &anns, &ann).await;
        assert_eq!(behind.status, 404, "redis: {redis}: read as nobody");
        assert_eq!(set_cookie(&behind).as_deref(), Some(""));
        if let Some(second) = second {
            second.stop().await;
        }
    }
}
