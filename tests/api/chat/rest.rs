//! Chat and message endpoints: each flow, the events it publishes, paging, bad input, and who
//! may do what (private chats, open chats, API keys with only ReadPublic).

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
    let (status, body) = get(&app, &format!("/chat/{chat}"), Some(&sam)).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["participants"][0]["userId"], sam.id);

    let mut ws = open(&app.address, &sam.token).await;
    ws.join("joinChatRoom", json!({"chatId": chat})).await;

    let mut ids = Vec::new();
    for n in 0..3 {
        let (status, body) = post(
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
    let (status, reply) = post(
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
    let (_, page1) = get(
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
    let (_, page2) = get(
        &app,
        &format!("/chatMessages?chatId={chat}&take=2&after={cursor}"),
        Some(&sam),
    )
    .await;
    assert_eq!(page2["data"]["edges"].as_array().unwrap().len(), 2);
    assert_eq!(page2["data"]["pageInfo"]["hasNextPage"], false);

    // Edit and delete publish too.
    let (status, _) = api(
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
    let (status, _) = api(
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
    let (_, chats) = get(&app, "/chats", Some(&sam)).await;
    assert_eq!(chats["data"]["edges"][0]["node"]["id"], chat);
}

#[tokio::test]
async fn who_may_do_what() {
    let app = spawn_app_with(with_system_key, None).await;
    let sam = user(&app, "Sam").await;
    let kim = user(&app, "Kim").await;
    let private = create_chat(&app, &sam, &[], json!({})).await;
    let public = create_chat(&app, &sam, &[], json!({"isPrivate": false})).await;
    let open_chat = create_chat(&app, &sam, &[], json!({"openToAnyoneWithInvite": true})).await;
    let (_, message) = post(
        &app,
        "/chatMessage",
        &sam,
        json!({"chatId": private, "text": "mine"}),
    )
    .await;
    let message = message["data"]["id"].as_str().unwrap().to_owned();

    // A stranger: private chats do not exist for them.
    assert_eq!(
        get(&app, &format!("/chat/{private}"), Some(&kim)).await.0,
        404
    );
    assert_eq!(
        get(&app, &format!("/chatMessages?chatId={private}"), Some(&kim))
            .await
            .0,
        404
    );
    assert_eq!(
        post(
            &app,
            "/chatMessage",
            &kim,
            json!({"chatId": private, "text": "hi"})
        )
        .await
        .0,
        404
    );
    assert_eq!(
        api(
            &app,
            Method::PUT,
            &format!("/chatMessage/{message}"),
            Some(&kim),
            Some(json!({"text": "x"}))
        )
        .await
        .0,
        404,
        "a message of a chat one cannot read does not exist for them"
    );
    assert_eq!(
        api(
            &app,
            Method::DELETE,
            &format!("/chatMessage/{message}"),
            Some(&kim),
            None
        )
        .await
        .0,
        404
    );
    assert_eq!(
        api(
            &app,
            Method::PUT,
            &format!("/chat/{private}"),
            Some(&kim),
            Some(json!({"name": "mine now"}))
        )
        .await
        .0,
        404
    );
    assert_eq!(
        api(
            &app,
            Method::DELETE,
            &format!("/chat/{private}"),
            Some(&kim),
            None
        )
        .await
        .0,
        404
    );
    // Public chats can be read by anyone, even signed out, but not written to.
    assert_eq!(get(&app, &format!("/chat/{public}"), None).await.0, 200);
    assert_eq!(
        get(&app, &format!("/chatMessages?chatId={public}"), None)
            .await
            .0,
        200
    );
    assert_eq!(
        post(
            &app,
            "/chatMessage",
            &kim,
            json!({"chatId": public, "text": "hi"})
        )
        .await
        .0,
        403
    );
    // Open chats: the id alone opens nothing; the invite secret (which only managers see)
    // makes one a participant.
    assert_eq!(
        get(&app, &format!("/chat/{open_chat}"), Some(&kim)).await.0,
        404
    );
    let (_, owners_view) = get(&app, &format!("/chat/{open_chat}"), Some(&sam)).await;
    let secret = owners_view["data"]["inviteSecret"]
        .as_str()
        .expect("managers see the invite secret")
        .to_owned();
    let (status, _) = post(
        &app,
        &format!("/chat/{open_chat}/join"),
        &kim,
        json!({"inviteSecret": "guessed-secret-000000000"}),
    )
    .await;
    assert_eq!(status, 404, "a wrong secret is a chat that does not exist");
    let (status, joined) = post(
        &app,
        &format!("/chat/{open_chat}/join"),
        &kim,
        json!({"inviteSecret": secret}),
    )
    .await;
    assert_eq!(status, 200, "{joined}");
    let (status, kims_view) = get(&app, &format!("/chat/{open_chat}"), Some(&kim)).await;
    assert_eq!(status, 200);
    assert!(
        kims_view["data"].get("inviteSecret").is_none(),
        "{kims_view}"
    );
    assert_eq!(get(&app, &format!("/chat/{open_chat}"), None).await.0, 404);
    // Signed out: no writes at all.
    let (status, _) = api(
        &app,
        Method::POST,
        "/chatMessage",
        None,
        Some(json!({"chatId": public, "text": "hi"})),
    )
    .await;
    assert_eq!(status, 401);

    // An API key with only ReadPublic reads public data, nothing private, and writes nothing.
    let (status, key) = post(
        &app,
        "/apiKey",
        &sam,
        json!({"name": "reader", "permissions": ["ReadPublic"], "limitHard": 1000}),
    )
    .await;
    assert_eq!(status, 200, "{key}");
    let secret = key["data"]["key"].as_str().unwrap().to_owned();
    let with_key = |method: Method, path: String, body: Option<serde_json::Value>| {
        let mut request = app
            .client
            .request(method, app.url(&format!("/api/v2{path}")))
            .header("x-api-key", &secret);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send()
    };
    assert_eq!(
        with_key(Method::GET, format!("/chat/{public}"), None)
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        with_key(Method::GET, format!("/chat/{private}"), None)
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        with_key(
            Method::POST,
            "/chatMessage".into(),
            Some(json!({"chatId": public, "text": "hi"}))
        )
        .await
        .unwrap()
        .status(),
        403
    );
    assert_eq!(
        with_key(Method::GET, "/chats".into(), None)
            .await
            .unwrap()
            .status(),
        403
    );

    // The owner manages; leaving works for oneself.
    assert_eq!(
        api(
            &app,
            Method::PUT,
            &format!("/chat/{private}"),
            Some(&sam),
            Some(json!({"name": "Renamed"}))
        )
        .await
        .0,
        200
    );
    assert_eq!(
        api(
            &app,
            Method::DELETE,
            &format!("/chatParticipant/{open_chat}/{}", sam.id),
            Some(&kim),
            None
        )
        .await
        .0,
        403
    );
    assert_eq!(
        api(
            &app,
            Method::DELETE,
            &format!("/chat/{private}"),
            Some(&sam),
            None
        )
        .await
        .0,
        200
    );
    assert_eq!(
        get(&app, &format!("/chat/{private}"), Some(&sam)).await.0,
        404
    );
}

#[tokio::test]
async fn bad_input_is_refused_and_nothing_is_written() {
    let app = spawn_app_with(with_system_key, None).await;
    let sam = user(&app, "Sam").await;
    let chat = create_chat(&app, &sam, &[], json!({})).await;
    let code =
        |body: &serde_json::Value| body["errors"][0]["code"].as_str().unwrap_or("").to_owned();
    let (status, body) = post(
        &app,
        "/chatMessage",
        &sam,
        json!({"chatId": chat, "text": "  "}),
    )
    .await;
    assert_eq!((status, code(&body)), (422, "InvalidText".into()));
    let (status, body) = post(
        &app,
        "/chatMessage",
        &sam,
        json!({"chatId": chat, "text": "x".repeat(32_769)}),
    )
    .await;
    assert_eq!((status, code(&body)), (422, "InvalidText".into()));
    let (status, _) = post(
        &app,
        "/chatMessage",
        &sam,
        json!({"chatId": "nope", "text": "hi"}),
    )
    .await;
    assert!(status == 400 || status == 422, "{status}");
    let (status, body) = post(
        &app,
        "/chatMessage",
        &sam,
        json!({"chatId": chat, "text": "hi", "parentId": "12345"}),
    )
    .await;
    assert_eq!((status, code(&body)), (422, "InvalidParent".into()));
    let (status, body) = post(&app, "/chat", &sam, json!({"botIds": [sam.id]})).await;
    assert_eq!((status, code(&body)), (422, "NotABot".into()));
    let (status, body) = get(
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
async fn every_endpoint_refuses_strangers_and_the_signed_out() {
    let app = spawn_app_with(with_system_key, None).await;
    let sam = user(&app, "Sam").await;
    let kim = user(&app, "Kim").await;
    let echo = bot(&app, "Echo", json!({})).await;
    let chat = create_chat(&app, &sam, &[&echo], json!({})).await;
    let (_, message) = post(
        &app,
        "/chatMessage",
        &sam,
        json!({"chatId": chat, "text": "hi"}),
    )
    .await;
    let message = message["data"]["id"].as_str().unwrap().to_owned();
    let (_, invite) = post(
        &app,
        "/chatInvite",
        &sam,
        json!({"chatId": chat, "userId": kim.id}),
    )
    .await;
    let invite = invite["data"]["id"].as_str().unwrap().to_owned();
    let stranger = user(&app, "Lee").await;

    let routes: Vec<(Method, String, Option<serde_json::Value>)> = vec![
        (Method::GET, format!("/chat/{chat}"), None),
        (
            Method::PUT,
            format!("/chat/{chat}"),
            Some(json!({"name": "x"})),
        ),
        (Method::DELETE, format!("/chat/{chat}"), None),
        (
            Method::GET,
            format!("/chatParticipants?chatId={chat}"),
            None,
        ),
        (
            Method::PUT,
            format!("/chatParticipant/{chat}/{}", sam.id),
            Some(json!({"hasUnread": false})),
        ),
        (
            Method::DELETE,
            format!("/chatParticipant/{chat}/{}", sam.id),
            None,
        ),
        (
            Method::POST,
            "/chatMessage".into(),
            Some(json!({"chatId": chat, "text": "x"})),
        ),
        (Method::GET, format!("/chatMessages?chatId={chat}"), None),
        (Method::GET, format!("/chatMessageTree?chatId={chat}"), None),
        (
            Method::PUT,
            format!("/chatMessage/{message}"),
            Some(json!({"text": "x"})),
        ),
        (Method::DELETE, format!("/chatMessage/{message}"), None),
        (
            Method::POST,
            "/regenerateResponse".into(),
            Some(json!({"messageId": message})),
        ),
        (
            Method::POST,
            "/chatInvite".into(),
            Some(json!({"chatId": chat, "userId": stranger.id})),
        ),
        (
            Method::POST,
            format!("/chatInvite/{invite}/accept"),
            Some(json!({})),
        ),
        (
            Method::POST,
            format!("/chatInvite/{invite}/decline"),
            Some(json!({})),
        ),
    ];
    for (method, path, body) in routes {
        let (status, _) = api(&app, method.clone(), &path, Some(&stranger), body.clone()).await;
        assert!(
            matches!(status, 403 | 404),
            "stranger {method} {path}: {status}"
        );
        let (status, _) = api(&app, method.clone(), &path, None, body).await;
        assert!(
            matches!(status, 401 | 404),
            "signed out {method} {path}: {status}"
        );
    }
    // Nothing changed.
    let (_, body) = get(&app, &format!("/chat/{chat}"), Some(&sam)).await;
    assert_eq!(body["data"]["chat"]["name"], "Test chat");
    assert_eq!(body["data"]["participants"].as_array().unwrap().len(), 2);
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM chat_messages WHERE user_id <> $1")
        .bind(echo.parse::<i64>().unwrap())
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(count, 1);
    // Signed out, the personal lists ask for a sign-in.
    for path in ["/chats", "/chatInvites", "/notifications", "/credits"] {
        assert_eq!(get(&app, path, None).await.0, 401, "{path}");
    }
}

#[tokio::test]
async fn a_team_chat_is_open_to_the_teams_members() {
    let app = spawn_app_with(with_system_key, None).await;
    let sam = user(&app, "Sam").await;
    let kim = user(&app, "Kim").await;
    let lee = user(&app, "Lee").await;
    let team: i64 = sqlx::query_scalar(
        "INSERT INTO teams (id, public_id, name) VALUES (777, 'teamtest0001', 'Crew') RETURNING id",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    for (i, member) in [&sam, &kim].iter().enumerate() {
        sqlx::query(
            "INSERT INTO members (id, public_id, team_id, user_id) VALUES ($1, $2, $3, $4)",
        )
        .bind(800 + i as i64)
        .bind(format!("member{i:06}"))
        .bind(team)
        .bind(member.id.parse::<i64>().unwrap())
        .execute(&app.db.pool)
        .await
        .unwrap();
    }
    let chat = create_chat(&app, &sam, &[], json!({"teamId": team.to_string()})).await;
    assert_eq!(get(&app, &format!("/chat/{chat}"), Some(&kim)).await.0, 200);
    assert_eq!(
        post(
            &app,
            "/chatMessage",
            &kim,
            json!({"chatId": chat, "text": "team hello"})
        )
        .await
        .0,
        200
    );
    assert_eq!(get(&app, &format!("/chat/{chat}"), Some(&lee)).await.0, 404);
    let (status, body) = post(&app, "/chat", &lee, json!({"teamId": team.to_string()})).await;
    assert_eq!(
        (status, body["errors"][0]["code"].clone()),
        (403, json!("NotATeamMember"))
    );
}

#[tokio::test]
async fn concurrent_replies_to_one_message_get_distinct_versions() {
    let app = spawn_app_with(with_system_key, None).await;
    let sam = user(&app, "Sam").await;
    let chat = create_chat(&app, &sam, &[], json!({})).await;
    let (_, root) = post(
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
        .map(|(status, body)| {
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
    let (status, message) = post(
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
    assert_eq!(edit("still here").await.0, 200, "a participant edits");

    let removed = api(
        &app,
        Method::DELETE,
        &format!("/chatParticipant/{chat}/{}", kim.id),
        Some(&sam),
        None,
    )
    .await;
    assert_eq!(removed.0, 200, "{:?}", removed.1);
    assert_eq!(edit("rewritten after removal").await.0, 404);
    let delete = api(
        &app,
        Method::DELETE,
        &format!("/chatMessage/{message}"),
        Some(&kim),
        None,
    )
    .await;
    assert_eq!(delete.0, 404);
    let text: String = sqlx::query_scalar("SELECT text FROM chat_messages WHERE id = $1::BIGINT")
        .bind(&message)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(text, "still here");
}
