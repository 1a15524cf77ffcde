//! Who may do what with chats: the permission table (owner, stranger, signed out, a ReadPublic
//! API key × each endpoint), open chats joined with their invite secret, strangers and the
//! signed-out refused everywhere, and team chats open to the team's members.

use reqwest::Method;
use serde_json::json;

use super::*;
use crate::helpers::{Auth, spawn_app_with};
use crate::ws::{user, with_system_key};

/// Who makes a request in the permission table.
#[derive(Clone, Copy, Debug)]
enum Who {
    Owner,
    Stranger,
    SignedOut,
    /// An API key of the owner's with only `ReadPublic`.
    ReadPublicKey,
}

/// One row of the permission table: who, what, and the status they get.
struct Case {
    who: Who,
    method: Method,
    path: String,
    body: Option<serde_json::Value>,
    status: u16,
}

fn case(
    who: Who,
    method: Method,
    path: impl Into<String>,
    body: Option<serde_json::Value>,
    status: u16,
) -> Case {
    Case {
        who,
        method,
        path: path.into(),
        body,
        status,
    }
}

#[tokio::test]
async fn who_may_do_what() {
    let app = spawn_app_with(with_system_key, None).await;
    let sam = user(&app, "Sam").await;
    let kim = user(&app, "Kim").await;
    let private = create_chat(&app, &sam, &[], json!({})).await;
    let public = create_chat(&app, &sam, &[], json!({"isPrivate": false})).await;
    let open_chat = create_chat(&app, &sam, &[], json!({"openToAnyoneWithInvite": true})).await;
    let Reply { body: message, .. } = post(
        &app,
        "/chatMessage",
        &sam,
        json!({"chatId": private, "text": "mine"}),
    )
    .await;
    let message = message["data"]["id"].as_str().unwrap().to_owned();
    let Reply {
        status, body: key, ..
    } = post(
        &app,
        "/apiKey",
        &sam,
        json!({"name": "reader", "permissions": ["ReadPublic"], "limitHard": 1000}),
    )
    .await;
    assert_eq!(status, 200, "{key}");
    let key = key["data"]["key"].as_str().unwrap().to_owned();

    use Method as M;
    use Who::*;
    let hi = |chat: &str| Some(json!({"chatId": chat, "text": "hi"}));
    let table = [
        // A stranger: private chats and their messages do not exist for them.
        case(Stranger, M::GET, format!("/chat/{private}"), None, 404),
        case(
            Stranger,
            M::GET,
            format!("/chatMessages?chatId={private}"),
            None,
            404,
        ),
        case(Stranger, M::POST, "/chatMessage", hi(&private), 404),
        case(
            Stranger,
            M::PUT,
            format!("/chatMessage/{message}"),
            Some(json!({"text": "x"})),
            404,
        ),
        case(
            Stranger,
            M::DELETE,
            format!("/chatMessage/{message}"),
            None,
            404,
        ),
        case(
            Stranger,
            M::PUT,
            format!("/chat/{private}"),
            Some(json!({"name": "mine now"})),
            404,
        ),
        case(Stranger, M::DELETE, format!("/chat/{private}"), None, 404),
        // Public chats are read by anyone, even signed out, and written by participants only.
        case(SignedOut, M::GET, format!("/chat/{public}"), None, 200),
        case(
            SignedOut,
            M::GET,
            format!("/chatMessages?chatId={public}"),
            None,
            200,
        ),
        case(Stranger, M::POST, "/chatMessage", hi(&public), 403),
        case(SignedOut, M::POST, "/chatMessage", hi(&public), 401),
        // An open chat's id alone opens nothing.
        case(Stranger, M::GET, format!("/chat/{open_chat}"), None, 404),
        case(SignedOut, M::GET, format!("/chat/{open_chat}"), None, 404),
        // A ReadPublic key reads public data, nothing private, and writes nothing.
        case(ReadPublicKey, M::GET, format!("/chat/{public}"), None, 200),
        case(ReadPublicKey, M::GET, format!("/chat/{private}"), None, 404),
        case(ReadPublicKey, M::POST, "/chatMessage", hi(&public), 403),
        case(ReadPublicKey, M::GET, "/chats", None, 403),
        // The owner manages.
        case(
            Owner,
            M::PUT,
            format!("/chat/{private}"),
            Some(json!({"name": "Renamed"})),
            200,
        ),
    ];
    for row in table {
        let auth = match row.who {
            Owner => Auth::Cookie(&sam.token),
            Stranger => Auth::Cookie(&kim.token),
            ReadPublicKey => Auth::ApiKey(&key),
            SignedOut => Auth::Nobody,
        };
        let reply = app
            .call(row.method.clone(), &row.path, auth, row.body.as_ref())
            .await;
        assert_eq!(
            reply.status, row.status,
            "{:?} {} {}: {}",
            row.who, row.method, row.path, reply.body
        );
    }

    // Open chats: the invite secret (which only managers see) makes one a participant.
    let Reply {
        body: owners_view, ..
    } = get(&app, &format!("/chat/{open_chat}"), Some(&sam)).await;
    let secret = owners_view["data"]["inviteSecret"]
        .as_str()
        .expect("managers see the invite secret")
        .to_owned();
    let Reply { status, .. } = post(
        &app,
        &format!("/chat/{open_chat}/join"),
        &kim,
        json!({"inviteSecret": "guessed-secret-000000000"}),
    )
    .await;
    assert_eq!(status, 404, "a wrong secret is a chat that does not exist");
    let Reply {
        status,
        body: joined,
        ..
    } = post(
        &app,
        &format!("/chat/{open_chat}/join"),
        &kim,
        json!({"inviteSecret": secret}),
    )
    .await;
    assert_eq!(status, 200, "{joined}");
    let Reply {
        status,
        body: kims_view,
        ..
    } = get(&app, &format!("/chat/{open_chat}"), Some(&kim)).await;
    assert_eq!(status, 200);
    assert!(
        kims_view["data"].get("inviteSecret").is_none(),
        "{kims_view}"
    );
    // A participant removes only themselves; the owner deletes.
    let remove_sam = format!("/chatParticipant/{open_chat}/{}", sam.id);
    assert_eq!(
        api(&app, M::DELETE, &remove_sam, Some(&kim), None)
            .await
            .status,
        403
    );
    assert_eq!(
        api(
            &app,
            M::DELETE,
            &format!("/chat/{private}"),
            Some(&sam),
            None
        )
        .await
        .status,
        200
    );
    assert_eq!(
        get(&app, &format!("/chat/{private}"), Some(&sam))
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn every_endpoint_refuses_strangers_and_the_signed_out() {
    let app = spawn_app_with(with_system_key, None).await;
    let sam = user(&app, "Sam").await;
    let kim = user(&app, "Kim").await;
    let echo = bot(&app, "Echo", json!({})).await;
    let chat = create_chat(&app, &sam, &[&echo], json!({})).await;
    let Reply { body: message, .. } = post(
        &app,
        "/chatMessage",
        &sam,
        json!({"chatId": chat, "text": "hi"}),
    )
    .await;
    let message = message["data"]["id"].as_str().unwrap().to_owned();
    let Reply { body: invite, .. } = post(
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
        let Reply { status, .. } =
            api(&app, method.clone(), &path, Some(&stranger), body.clone()).await;
        assert!(
            matches!(status, 403 | 404),
            "stranger {method} {path}: {status}"
        );
        let Reply { status, .. } = api(&app, method.clone(), &path, None, body).await;
        assert!(
            matches!(status, 401 | 404),
            "signed out {method} {path}: {status}"
        );
    }
    // Nothing changed.
    let Reply { body, .. } = get(&app, &format!("/chat/{chat}"), Some(&sam)).await;
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
        assert_eq!(get(&app, path, None).await.status, 401, "{path}");
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
            "INSERT INTO members (id, public_id, team_id, user_id, permissions)
             VALUES ($1, $2, $3, $4, '[\"CreateChats\", \"WriteChats\"]')",
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
    assert_eq!(
        get(&app, &format!("/chat/{chat}"), Some(&kim)).await.status,
        200
    );
    assert_eq!(
        post(
            &app,
            "/chatMessage",
            &kim,
            json!({"chatId": chat, "text": "team hello"})
        )
        .await
        .status,
        200
    );
    assert_eq!(
        get(&app, &format!("/chat/{chat}"), Some(&lee)).await.status,
        404
    );
    let Reply { status, body, .. } =
        post(&app, "/chat", &lee, json!({"teamId": team.to_string()})).await;
    assert_eq!(
        (status, body["errors"][0]["code"].clone()),
        (403, json!("NotATeamMember"))
    );
}
