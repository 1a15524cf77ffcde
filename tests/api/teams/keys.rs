//! A team's API key: made by an admin, it acts as them within the team only (its chats'
//! messages, its runs, its credits), is refused everywhere else, and stops at once when its
//! maker is no longer an admin.

use reqwest::Method;
use serde_json::{Value, json};

use super::{code, join, member_of, put, team};
use crate::chat::{bot, create_chat, get, post};
use crate::helpers::{Reply, TestApp, spawn_app};
use crate::ws::{User, user};

async fn with_key(
    app: &TestApp,
    key: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Reply {
    let mut request = app
        .client
        .request(method, app.url(&format!("/api/v2{path}")))
        .header("x-api-key", key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    Reply::of(request).await
}

async fn team_key(app: &TestApp, who: &User, team: &str) -> Reply {
    post(
        app,
        "/apiKey",
        who,
        json!({"name": "integration", "teamId": team, "limitHard": 1_000_000_000,
               "permissions": ["ReadPrivate", "WritePrivate"]}),
    )
    .await
}

#[tokio::test]
async fn a_team_key_acts_within_its_team_only_and_stops_with_its_makers_standing() {
    let app = spawn_app().await;
    let ada = user(&app, "Ada").await;
    let wes = user(&app, "Wes").await;
    let sol = user(&app, "Sol").await;
    let team = team(&app, &ada, json!({"name": "Crew", "isPrivate": true})).await;
    join(&app, &team, &ada, &wes, None).await;
    let echo = bot(&app, "Echo", json!({"model": "echo"})).await;
    let team_chat = create_chat(&app, &ada, &[&echo], json!({"teamId": team})).await;
    let own_chat = create_chat(&app, &ada, &[], json!({"name": "Mine"})).await;

    // Only an admin makes the team's keys; strangers do not find the team.
    let by_writer = team_key(&app, &wes, &team).await;
    assert_eq!(
        (by_writer.status, code(&by_writer)),
        (403, json!("NotAllowed"))
    );
    let by_stranger = team_key(&app, &sol, &team).await;
    assert_eq!(
        (by_stranger.status, code(&by_stranger)),
        (404, json!("TeamNotFound"))
    );
    let made = team_key(&app, &ada, &team).await;
    assert_eq!(made.status, 200, "{}", made.body);
    assert_eq!(made.body["data"]["apiKey"]["teamId"], team.as_str());
    assert_eq!(made.body["data"]["apiKey"]["createdBy"], ada.id.as_str());
    let key = made.body["data"]["key"].as_str().unwrap().to_owned();
    let listed = get(&app, &format!("/apiKeys?teamId={team}"), Some(&ada)).await;
    assert_eq!(listed.body["data"].as_array().map(Vec::len), Some(1));
    let mine = get(&app, "/apiKeys", Some(&ada)).await;
    assert_eq!(
        mine.body["data"].as_array().map(Vec::len),
        Some(0),
        "not Ada's own"
    );
    let not_admin = get(&app, &format!("/apiKeys?teamId={team}"), Some(&wes)).await;
    assert_eq!(not_admin.status, 403);

    // Within the team: it posts as Ada in the team's chat, reads it, starts and reads a run
    // of the team, and sees the team's credits.
    let said = with_key(
        &app,
        &key,
        Method::POST,
        "/chatMessage",
        Some(json!({"chatId": team_chat, "text": "from the integration"})),
    )
    .await;
    assert_eq!(said.status, 200, "{}", said.body);
    assert_eq!(said.body["data"]["userId"], ada.id.as_str());
    let read = with_key(
        &app,
        &key,
        Method::GET,
        &format!("/chatMessages?chatId={team_chat}"),
        None,
    )
    .await;
    assert_eq!(read.status, 200, "{}", read.body);
    let graph = json!({"graph": {"__type": "Graph-1.0", "schema": {
        "start": "w", "nodes": [{"id": "w", "kind": "wait", "durationMs": 1}], "edges": []}}});
    let routine = post(
        &app,
        "/resource",
        &ada,
        json!({"resourceType": "Routine", "name": "R", "teamId": team, "config": graph}),
    )
    .await;
    let version = routine.body["data"]["versionId"]
        .as_str()
        .unwrap()
        .to_owned();
    let started = with_key(
        &app,
        &key,
        Method::POST,
        "/task/start/run",
        Some(json!({"resourceVersionId": version, "formValues": {}})),
    )
    .await;
    assert_eq!(started.status, 200, "{}", started.body);
    let run = started.body["data"]["runId"].as_str().unwrap().to_owned();
    let team_of_run: Option<i64> =
        sqlx::query_scalar("SELECT team_id FROM runs WHERE id = $1::BIGINT")
            .bind(&run)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(
        team_of_run.map(|t| t.to_string()),
        Some(team.clone()),
        "a run of the team"
    );
    let seen = with_key(&app, &key, Method::GET, &format!("/run/{run}"), None).await;
    assert_eq!(seen.status, 200, "{}", seen.body);
    let credits = with_key(&app, &key, Method::GET, "/credits", None).await;
    let team_credits = get(&app, &format!("/credits?teamId={team}"), Some(&ada)).await;
    assert_eq!(credits.body["data"], team_credits.body["data"]);

    // Outside the team: Ada's own chat, her profile, her chats, another team's things.
    let outside = [
        (
            Method::POST,
            "/chatMessage".to_owned(),
            Some(json!({"chatId": own_chat, "text": "x"})),
        ),
        (
            Method::GET,
            format!("/chatMessages?chatId={own_chat}"),
            None,
        ),
        (Method::GET, "/profile".to_owned(), None),
        (Method::GET, "/chats".to_owned(), None),
        (Method::GET, "/credits?teamId=1".to_owned(), None),
        (
            Method::POST,
            "/team".to_owned(),
            Some(json!({"name": "Other"})),
        ),
    ];
    for (method, path, body) in outside {
        let reply = with_key(&app, &key, method.clone(), &path, body).await;
        assert_eq!(
            (reply.status, code(&reply)),
            (403, json!("TeamKeyNotAccepted")),
            "{method} {path}: {}",
            reply.body
        );
    }

    // Ada made Wes an admin; Wes makes Ada a member again: her key stops at once.
    let wes_member = member_of(&app, &team, &wes).await;
    let promoted = put(
        &app,
        &format!("/member/{wes_member}"),
        Some(&ada),
        json!({"isAdmin": true}),
    )
    .await;
    assert_eq!(promoted.status, 200, "{}", promoted.body);
    let ada_member = member_of(&app, &team, &ada).await;
    let demoted = put(
        &app,
        &format!("/member/{ada_member}"),
        Some(&wes),
        json!({"isAdmin": false}),
    )
    .await;
    assert_eq!(demoted.status, 200, "{}", demoted.body);
    let after = with_key(
        &app,
        &key,
        Method::POST,
        "/chatMessage",
        Some(json!({"chatId": team_chat, "text": "still here?"})),
    )
    .await;
    assert_eq!(
        (after.status, code(&after)),
        (401, json!("InvalidApiKey")),
        "{}",
        after.body
    );
}
