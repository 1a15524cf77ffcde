//! Invites and notifications, participants, the message tree, regenerating an answer, and an
//! API key's credit limit.

use reqwest::Method;
use serde_json::json;

use super::*;
use crate::helpers::SendReply;
use crate::helpers::spawn_app_with;
use crate::ws::{open, user, with_system_key};

#[tokio::test]
async fn an_invite_notifies_and_accepting_makes_a_participant() {
    let app = spawn_app_with(with_system_key, None).await;
    let sam = user(&app, "Sam").await;
    let kim = user(&app, "Kim").await;
    let chat = create_chat(&app, &sam, &[], json!({"name": "Plans"})).await;
    let mut kim_ws = open(&app.address, &kim.token).await;
    kim_ws.join("joinUserRoom", json!({"userId": kim.id})).await;
    let mut sam_ws = open(&app.address, &sam.token).await;
    sam_ws.join("joinChatRoom", json!({"chatId": chat})).await;

    // Kim cannot invite into a private chat she is not part of (for her it does not exist).
    assert_eq!(
        post(
            &app,
            "/chatInvite",
            &kim,
            json!({"chatId": chat, "userId": kim.id})
        )
        .await
        .status,
        404
    );
    let Reply {
        status,
        body: invite,
        ..
    } = post(
        &app,
        "/chatInvite",
        &sam,
        json!({"chatId": chat, "userId": kim.id, "message": "join us"}),
    )
    .await;
    assert_eq!(status, 200, "{invite}");
    let invite_id = invite["data"]["id"].as_str().unwrap().to_owned();
    let event = kim_ws.event().await;
    assert_eq!(event["type"], "user/notification/received");
    assert_eq!(
        event["data"]["notification"]["title"],
        "You are invited to Plans"
    );

    let Reply { body: notes, .. } = get(&app, "/notifications", Some(&kim)).await;
    let note = &notes["data"]["edges"][0]["node"];
    assert_eq!(
        (note["category"].clone(), note["isRead"].clone()),
        (json!("ChatInvite"), json!(false))
    );
    let Reply { body: invites, .. } = get(&app, "/chatInvites", Some(&kim)).await;
    assert_eq!(invites["data"]["edges"][0]["node"]["id"], invite_id);

    // Only the invitee answers; accepting adds her and tells the room.
    assert_eq!(
        post(
            &app,
            &format!("/chatInvite/{invite_id}/accept"),
            &sam,
            json!({})
        )
        .await
        .status,
        404
    );
    let Reply { status, .. } = post(
        &app,
        &format!("/chatInvite/{invite_id}/accept"),
        &kim,
        json!({}),
    )
    .await;
    assert_eq!(status, 200);
    let event = sam_ws.event().await;
    assert_eq!(event["type"], "chat/participants/changed");
    assert_eq!(event["data"]["participants"].as_array().unwrap().len(), 2);
    assert_eq!(
        post(
            &app,
            &format!("/chatInvite/{invite_id}/decline"),
            &kim,
            json!({})
        )
        .await
        .status,
        409
    );
    assert_eq!(
        post(
            &app,
            "/chatInvite",
            &sam,
            json!({"chatId": chat, "userId": kim.id})
        )
        .await
        .status,
        409
    );
    assert_eq!(
        post(
            &app,
            "/chatMessage",
            &kim,
            json!({"chatId": chat, "text": "hi all"})
        )
        .await
        .status,
        200
    );

    // Unread flags: Sam has one now; he clears it.
    let Reply { body: parts, .. } = get(
        &app,
        &format!("/chatParticipants?chatId={chat}"),
        Some(&sam),
    )
    .await;
    let sam_part = parts["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["userId"] == sam.id)
        .unwrap()
        .clone();
    assert_eq!(sam_part["hasUnread"], true);
    let Reply { status, .. } = api(
        &app,
        Method::PUT,
        &format!("/chatParticipant/{chat}/{}", sam.id),
        Some(&sam),
        Some(json!({"hasUnread": false})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        api(
            &app,
            Method::PUT,
            &format!("/chatParticipant/{chat}/{}", kim.id),
            Some(&sam),
            Some(json!({"hasUnread": false}))
        )
        .await
        .status,
        403
    );

    // Notifications marked read.
    let Reply {
        status,
        body: marked,
        ..
    } = api(
        &app,
        Method::PUT,
        "/notifications/markAllAsRead",
        Some(&kim),
        None,
    )
    .await;
    assert_eq!((status, marked["data"]["updated"].clone()), (200, json!(1)));
}

#[tokio::test]
async fn regenerating_an_answer_adds_a_version_to_the_tree() {
    let app = spawn_app_with(with_system_key, None).await;
    let sam = user(&app, "Sam").await;
    let echo = bot(&app, "Echo", json!({})).await;
    let chat = create_chat(&app, &sam, &[&echo], json!({})).await;
    let mut ws = open(&app.address, &sam.token).await;
    ws.join("joinChatRoom", json!({"chatId": chat})).await;
    let Reply { body: question, .. } = post(
        &app,
        "/chatMessage",
        &sam,
        json!({"chatId": chat, "text": "say this"}),
    )
    .await;
    let question = question["data"]["id"].as_str().unwrap().to_owned();
    let answer = loop {
        let event = ws.event().await;
        if event["type"] == "bot/response/stream" && event["data"]["__type"] == "end" {
            break event["data"]["finalMessage"]["id"]
                .as_str()
                .unwrap()
                .to_owned();
        }
    };
    let Reply { status, body, .. } = post(
        &app,
        "/regenerateResponse",
        &sam,
        json!({"messageId": answer}),
    )
    .await;
    assert_eq!(
        (status, body["data"]["version"].clone()),
        (200, json!(1)),
        "{body}"
    );
    loop {
        let event = ws.event().await;
        if event["type"] == "bot/response/stream" && event["data"]["__type"] == "end" {
            assert_eq!(event["data"]["finalMessage"]["versionIndex"], 1);
            break;
        }
    }
    let Reply { body: tree, .. } =
        get(&app, &format!("/chatMessageTree?chatId={chat}"), Some(&sam)).await;
    let nodes = tree["data"]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 3);
    let answers: Vec<_> = nodes
        .iter()
        .filter(|n| n["parentId"] == question)
        .map(|n| n["versionIndex"].clone())
        .collect();
    assert_eq!(answers, vec![json!(0), json!(1)]);
    // A person's message cannot be regenerated.
    assert_eq!(
        post(
            &app,
            "/regenerateResponse",
            &sam,
            json!({"messageId": question})
        )
        .await
        .status,
        422
    );
}

#[tokio::test]
async fn an_api_key_stops_at_its_credit_limit() {
    let app = spawn_app_with(with_system_key, None).await;
    let sam = user(&app, "Sam").await;
    let echo = bot(&app, "Echo", json!({})).await;
    let chat = create_chat(&app, &sam, &[&echo], json!({})).await;
    let Reply { body: key, .. } = post(&app, "/apiKey", &sam, json!({"name": "bot", "permissions": ["ReadPrivate", "WritePrivate"], "limitHard": 1000, "limitSoft": 500, "stopAtLimit": true})).await;
    let secret = key["data"]["key"].as_str().unwrap().to_owned();
    let key_id: i64 = key["data"]["apiKey"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let send = || {
        app.client
            .post(app.url("/api/v2/chatMessage"))
            .header("x-api-key", &secret)
            .json(&json!({"chatId": chat, "text": "hello"}))
            .reply()
    };
    assert_eq!(send().await.status, 200);
    // Past the soft limit with stopAtLimit: refused up front, nothing written.
    sqlx::query("UPDATE api_keys SET credits_used = 600 WHERE id = $1")
        .bind(key_id)
        .execute(&app.db.pool)
        .await
        .unwrap();
    let refused = send().await;
    assert_eq!(refused.status, 402);
    let body: serde_json::Value = refused.body;
    assert_eq!(body["errors"][0]["code"], "ApiKeyCreditLimit");
    // Without stopAtLimit the soft limit only warns; the hard limit always stops.
    sqlx::query("UPDATE api_keys SET stop_at_limit = false WHERE id = $1")
        .bind(key_id)
        .execute(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(send().await.status, 200);
    sqlx::query("UPDATE api_keys SET credits_used = 1000 WHERE id = $1")
        .bind(key_id)
        .execute(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(send().await.status, 402);
}
