//! A member removed from a team keeps nothing of it (issue 34, A4): not the team chats they
//! made (reading, posting, renaming, inviting), not their open sockets in its chat and run rooms
//! (`room/removed`, then silence), not those chats in their data export.

use std::time::Duration;

use serde_json::{Value, json};

use super::{code, delete, join, put, team};
use crate::chat::{create_chat, get, post};
use crate::helpers::{TestApp, spawn_app, wait_until};
use crate::ws::{User, open, user};

/// A team routine that waits a minute, and a run of it started by `who`; the run's id.
async fn team_run(app: &TestApp, admin: &User, who: &User, team: &str) -> String {
    let graph = json!({"graph": {"__type": "Graph-1.0", "schema": {
        "start": "w", "nodes": [{"id": "w", "kind": "wait", "durationMs": 60000}], "edges": []}}});
    let routine = json!({"resourceType": "Routine", "name": "Team routine", "teamId": team,
                         "config": graph});
    let made = post(app, "/resource", admin, routine).await;
    assert_eq!(made.status, 200, "{}", made.body);
    let version = made.body["data"]["versionId"].as_str().unwrap().to_owned();
    let started = post(
        app,
        "/task/start/run",
        who,
        json!({"resourceVersionId": version, "teamId": team, "formValues": {}}),
    )
    .await;
    assert_eq!(started.status, 200, "{}", started.body);
    started.body["data"]["runId"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_removed_member_keeps_nothing_of_the_team_chats_they_made() {
    let app = spawn_app().await;
    let sam = user(&app, "Sam").await;
    let kim = user(&app, "Kim").await;
    let lee = user(&app, "Lee").await;
    let crew = team(&app, &sam, json!({"name": "Crew", "isPrivate": true})).await;
    let kim_member = join(
        &app,
        &crew,
        &sam,
        &kim,
        Some(json!(["CreateChats", "WriteChats", "StartRuns"])),
    )
    .await;
    // Kim makes a private team chat and a public one, and starts a team run.
    let private = create_chat(&app, &kim, &[], json!({"teamId": crew, "name": "Plans"})).await;
    let public = create_chat(
        &app,
        &kim,
        &[],
        json!({"teamId": crew, "name": "Lobby", "isPrivate": false}),
    )
    .await;
    let run = team_run(&app, &sam, &kim, &crew).await;
    let said = post(
        &app,
        "/chatMessage",
        &kim,
        json!({"chatId": private, "text": "before"}),
    )
    .await;
    assert_eq!(said.status, 200, "{}", said.body);
    let mut ws = open(&app.address, &kim.token).await;
    ws.join("joinChatRoom", json!({"chatId": private})).await;
    ws.join("joinRunRoom", json!({"runId": run})).await;

    let removed = delete(&app, &format!("/member/{kim_member}"), Some(&sam)).await;
    assert_eq!(removed.status, 200, "{}", removed.body);

    // The socket leaves both rooms, and nothing more of them reaches it.
    let mut left = Vec::new();
    while left.len() < 2 {
        let event = ws
            .next_within(Duration::from_secs(10))
            .await
            .expect("room/removed for the chat and the run");
        if event["type"] == "room/removed" {
            assert_eq!(event["data"]["reason"], "AccessRevoked");
            left.push(event["room"].as_str().unwrap().to_owned());
        }
    }
    left.sort();
    let mut expected = vec![format!("chat:{private}"), format!("run:{run}")];
    expected.sort();
    assert_eq!(left, expected);
    let after = post(
        &app,
        "/chatMessage",
        &sam,
        json!({"chatId": private, "text": "after Kim left"}),
    )
    .await;
    assert_eq!(after.status, 200, "{}", after.body);
    assert!(
        ws.quiet_for(Duration::from_millis(800)).await,
        "nothing more of the team reaches Kim"
    );

    // REST: the private chat is not Kim's to find any more, the public one not to change.
    let read = get(&app, &format!("/chatMessages?chatId={private}"), Some(&kim)).await;
    assert_eq!((read.status, code(&read)), (404, json!("ChatNotFound")));
    let chat = get(&app, &format!("/chat/{private}"), Some(&kim)).await;
    assert_eq!((chat.status, code(&chat)), (404, json!("ChatNotFound")));
    for chat in [&private, &public] {
        let expected = if chat == &private {
            (404, json!("ChatNotFound"))
        } else {
            (403, json!("NotAllowed"))
        };
        let posted = post(
            &app,
            "/chatMessage",
            &kim,
            json!({"chatId": chat, "text": "still here?"}),
        )
        .await;
        assert_eq!((posted.status, code(&posted)), expected, "post in {chat}");
        let renamed = put(
            &app,
            &format!("/chat/{chat}"),
            Some(&kim),
            json!({"name": "Mine"}),
        )
        .await;
        assert_eq!((renamed.status, code(&renamed)), expected, "rename {chat}");
        let invited = post(
            &app,
            "/chatInvite",
            &kim,
            json!({"chatId": chat, "userId": lee.id}),
        )
        .await;
        assert_eq!(
            (invited.status, code(&invited)),
            expected,
            "invite to {chat}"
        );
    }
    let run_read = get(&app, &format!("/run/{run}"), Some(&kim)).await;
    assert_eq!(run_read.status, 404, "{}", run_read.body);
    // Nor through the socket: joining again is refused.
    let again = ws.command("joinChatRoom", json!({"chatId": private})).await;
    assert_eq!(again["error"]["code"], "NotFound", "{again}");
    // The team's remaining members still see the chat; Kim is no longer among its participants.
    let people = get(&app, &format!("/chat/{private}"), Some(&sam)).await;
    assert_eq!(people.status, 200, "{}", people.body);
    assert!(
        !people.text.contains(&format!("\"userId\":\"{}\"", kim.id)),
        "{}",
        people.text
    );

    // Kim's export holds neither team chat nor the team run.
    let asked = post(&app, "/user/exportData", &kim, json!({})).await;
    assert_eq!(asked.status, 200, "{}", asked.body);
    let export = asked.body["data"]["id"].as_str().unwrap().to_owned();
    let id: i64 = export.parse().unwrap();
    wait_until(Duration::from_secs(20), "the export to be made", || async {
        let status: String = sqlx::query_scalar("SELECT status FROM user_exports WHERE id = $1")
            .bind(id)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
        status != "Pending"
    })
    .await;
    let archive = get(&app, &format!("/user/exportData/{export}"), Some(&kim)).await;
    assert_eq!(archive.status, 200, "{}", archive.text);
    let archive: Value = serde_json::from_str(&archive.text).unwrap();
    assert_eq!(archive["chats"], json!([]), "{archive}");
    assert_eq!(archive["messages"], json!([]), "{archive}");
    assert_eq!(archive["runs"], json!([]), "{archive}");
}
