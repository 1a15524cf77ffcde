//! Teams against the real server: made, joined by invite, their chats following the members'
//! permissions; a table of role × action × status; the last admin kept even when two admins
//! demote each other at the same instant; nobody grants what they lack; bad input refused.

use reqwest::Method;
use serde_json::{Value, json};

mod invite_authority;
mod keys;
mod removal;
mod roles;

use crate::chat::{api, get, post};
use crate::helpers::{Reply, TestApp, spawn_app};
use crate::ws::{User, user};

async fn put(app: &TestApp, path: &str, who: Option<&User>, body: Value) -> Reply {
    api(app, Method::PUT, path, who, Some(body)).await
}

async fn delete(app: &TestApp, path: &str, who: Option<&User>) -> Reply {
    api(app, Method::DELETE, path, who, None).await
}

fn code(reply: &Reply) -> Value {
    reply.body["errors"][0]["code"].clone()
}

/// Makes a team as `admin`; its id.
async fn team(app: &TestApp, admin: &User, body: Value) -> String {
    let Reply { status, body, .. } = post(app, "/team", admin, body).await;
    assert_eq!(status, 200, "{body}");
    body["data"]["id"].as_str().unwrap().to_owned()
}

/// Invites `who` with `permissions` (None: the default) and has them accept; their member id.
async fn join(
    app: &TestApp,
    team: &str,
    admin: &User,
    who: &User,
    permissions: Option<Value>,
) -> String {
    let mut body = json!({"teamId": team, "userId": who.id});
    if let Some(p) = permissions {
        body["willHavePermissions"] = p;
    }
    let Reply { status, body, .. } = post(app, "/memberInvite", admin, body).await;
    assert_eq!(status, 200, "{body}");
    let invite = body["data"]["id"].as_str().unwrap().to_owned();
    let Reply { status, body, .. } = post(
        app,
        &format!("/memberInvite/{invite}/accept"),
        who,
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    member_of(app, team, who).await
}

async fn member_of(app: &TestApp, team: &str, who: &User) -> String {
    let Reply { body, .. } = get(app, &format!("/members?teamId={team}&take=100"), Some(who)).await;
    body["data"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["node"]["userId"] == who.id.as_str())
        .map(|e| e["node"]["id"].as_str().unwrap().to_owned())
        .unwrap_or_else(|| panic!("{} not a member: {body}", who.id))
}

#[tokio::test]
async fn a_team_is_made_joined_by_invite_and_its_chats_follow_the_members_permissions() {
    let app = spawn_app().await;
    let sam = user(&app, "Sam").await;
    let kim = user(&app, "Kim").await;
    let lee = user(&app, "Lee").await;
    let crew = team(&app, &sam, json!({"name": "Crew", "handle": "crew_1"})).await;
    let Reply { body, .. } = get(&app, &format!("/team/{crew}"), None).await;
    assert_eq!(
        body["data"]["name"], "Crew",
        "a public team is seen by anyone"
    );

    // Kim is invited with the default permissions and hears of it.
    let Reply { status, body, .. } = post(
        &app,
        "/memberInvite",
        &sam,
        json!({"teamId": crew, "userId": kim.id, "message": "join us"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["willHavePermissions"], json!(["WriteChats"]));
    let invite = body["data"]["id"].as_str().unwrap().to_owned();
    let Reply { body, .. } = get(&app, "/memberInvites", Some(&kim)).await;
    assert_eq!(body["data"]["edges"][0]["node"]["id"], invite.as_str());
    let Reply { body, .. } = get(&app, "/notifications", Some(&kim)).await;
    assert_eq!(
        body["data"]["edges"][0]["node"]["category"], "TeamInvite",
        "{body}"
    );
    // Only Kim answers it; once.
    assert_eq!(
        post(
            &app,
            &format!("/memberInvite/{invite}/accept"),
            &lee,
            json!({})
        )
        .await
        .status,
        404
    );
    assert_eq!(
        post(
            &app,
            &format!("/memberInvite/{invite}/accept"),
            &kim,
            json!({})
        )
        .await
        .status,
        200
    );
    let again = post(
        &app,
        &format!("/memberInvite/{invite}/decline"),
        &kim,
        json!({}),
    )
    .await;
    assert_eq!((again.status, code(&again)), (409, json!("InviteAnswered")));
    let Reply { body, .. } = get(&app, "/teams", Some(&kim)).await;
    assert_eq!(body["data"]["edges"][0]["node"]["id"], crew.as_str());
    let kim_member = member_of(&app, &crew, &kim).await;

    // A team chat: Kim may talk in it, not make or manage one.
    let Reply { status, body, .. } =
        post(&app, "/chat", &sam, json!({"teamId": crew, "name": "ops"})).await;
    assert_eq!(status, 200, "{body}");
    let chat = body["data"]["chat"]["id"].as_str().unwrap().to_owned();
    let said = post(
        &app,
        "/chatMessage",
        &kim,
        json!({"chatId": chat, "text": "hi"}),
    )
    .await;
    assert_eq!(said.status, 200, "{}", said.body);
    // A member is told which permission it lacks, not that it is no member.
    let made = post(&app, "/chat", &kim, json!({"teamId": crew})).await;
    assert_eq!((made.status, code(&made)), (403, json!("NotAllowed")));
    let told = made.body["errors"][0]["message"].as_str().unwrap();
    assert!(told.contains("CreateChats"), "{told}");
    let renamed = put(
        &app,
        &format!("/chat/{chat}"),
        Some(&kim),
        json!({"name": "x"}),
    )
    .await;
    assert_eq!(renamed.status, 403, "{}", renamed.body);
    // Lee, no member, does not see the private team chat.
    assert_eq!(
        get(&app, &format!("/chat/{chat}"), Some(&lee)).await.status,
        404
    );

    // Granted more, Kim may; taken away, Kim may not even talk.
    let granted = put(
        &app,
        &format!("/member/{kim_member}"),
        Some(&sam),
        json!({"permissions": ["WriteChats", "CreateChats", "ManageChats"]}),
    )
    .await;
    assert_eq!(granted.status, 200, "{}", granted.body);
    assert_eq!(
        post(&app, "/chat", &kim, json!({"teamId": crew}))
            .await
            .status,
        200
    );
    assert_eq!(
        put(
            &app,
            &format!("/chat/{chat}"),
            Some(&kim),
            json!({"name": "ops 2"})
        )
        .await
        .status,
        200
    );
    put(
        &app,
        &format!("/member/{kim_member}"),
        Some(&sam),
        json!({"permissions": []}),
    )
    .await;
    let muted = post(
        &app,
        "/chatMessage",
        &kim,
        json!({"chatId": chat, "text": "hi"}),
    )
    .await;
    assert_eq!(muted.status, 403, "{}", muted.body);
    // Kim leaves; the team's chats are no longer Kim's to read.
    assert_eq!(
        delete(&app, &format!("/member/{kim_member}"), Some(&kim))
            .await
            .status,
        200
    );
    assert_eq!(
        get(&app, &format!("/chat/{chat}"), Some(&kim)).await.status,
        404
    );
    // Deleting the team takes its chats with it.
    assert_eq!(
        delete(&app, &format!("/team/{crew}"), Some(&sam))
            .await
            .status,
        200
    );
    assert_eq!(
        get(&app, &format!("/chat/{chat}"), Some(&sam)).await.status,
        404
    );
    assert_eq!(
        get(&app, &format!("/team/{crew}"), Some(&sam)).await.status,
        404
    );
}

#[tokio::test]
async fn the_last_admin_stays_even_when_two_demote_each_other_at_once() {
    let app = spawn_app().await;
    let ada = user(&app, "Ada").await;
    let bo = user(&app, "Bo").await;
    let crew = team(&app, &ada, json!({"name": "Crew"})).await;
    let ada_member = member_of(&app, &crew, &ada).await;
    let alone = put(
        &app,
        &format!("/member/{ada_member}"),
        Some(&ada),
        json!({"isAdmin": false}),
    )
    .await;
    assert_eq!((alone.status, code(&alone)), (409, json!("LastAdmin")));
    let leave = delete(&app, &format!("/member/{ada_member}"), Some(&ada)).await;
    assert_eq!((leave.status, code(&leave)), (409, json!("LastAdmin")));

    // Two admins, each demoting the other at the same instant: one of them stays.
    for round in 0..5 {
        let crew = team(&app, &ada, json!({"name": format!("Crew {round}")})).await;
        let Reply { body, .. } = post(
            &app,
            "/memberInvite",
            &ada,
            json!({"teamId": crew, "userId": bo.id, "willBeAdmin": true}),
        )
        .await;
        let invite = body["data"]["id"].as_str().unwrap().to_owned();
        post(
            &app,
            &format!("/memberInvite/{invite}/accept"),
            &bo,
            json!({}),
        )
        .await;
        let (ada_member, bo_member) = (
            member_of(&app, &crew, &ada).await,
            member_of(&app, &crew, &bo).await,
        );
        let (to_bo, to_ada) = (
            format!("/member/{bo_member}"),
            format!("/member/{ada_member}"),
        );
        let (a, b) = tokio::join!(
            put(&app, &to_bo, Some(&ada), json!({"isAdmin": false})),
            put(&app, &to_ada, Some(&bo), json!({"isAdmin": false})),
        );
        let admins: i64 =
            sqlx::query_scalar("SELECT count(*) FROM members WHERE team_id = $1 AND is_admin")
                .bind(crew.parse::<i64>().unwrap())
                .fetch_one(&app.db.pool)
                .await
                .unwrap();
        assert_eq!(
            admins, 1,
            "round {round}: {} {} / {} {}",
            a.status, a.body, b.status, b.body
        );
        let mut statuses = [a.status, b.status];
        statuses.sort();
        // The loser is refused as the last admin, or (demoted first) as no admin any more.
        assert!(
            statuses == [200, 403] || statuses == [200, 409],
            "{statuses:?}"
        );
    }
}

#[tokio::test]
async fn nobody_grants_what_they_lack_and_bad_input_is_refused_whole() {
    let app = spawn_app().await;
    let ada = user(&app, "Ada").await;
    let max = user(&app, "Max").await;
    let neo = user(&app, "Neo").await;
    let crew = team(&app, &ada, json!({"name": "Crew", "handle": "Crew_Two"})).await;
    let max_member = join(
        &app,
        &crew,
        &ada,
        &max,
        Some(json!(["InviteMembers", "ManageMembers"])),
    )
    .await;
    // A manager cannot hand out what they do not hold, nor make admins, nor raise themselves.
    for body in [
        json!({"teamId": crew, "userId": neo.id, "willHavePermissions": ["ManageChats"]}),
        json!({"teamId": crew, "userId": neo.id, "willBeAdmin": true}),
    ] {
        let reply = post(&app, "/memberInvite", &max, body).await;
        assert_eq!(
            (reply.status, code(&reply)),
            (403, json!("NotAllowed")),
            "{}",
            reply.body
        );
    }
    let raise = put(
        &app,
        &format!("/member/{max_member}"),
        Some(&max),
        json!({"permissions": ["UpdateTeam"]}),
    )
    .await;
    assert_eq!(raise.status, 403, "{}", raise.body);
    let promote = put(
        &app,
        &format!("/member/{max_member}"),
        Some(&max),
        json!({"isAdmin": true}),
    )
    .await;
    assert_eq!(promote.status, 403, "{}", promote.body);

    let refused = [
        (json!({"name": ""}), 422, "InvalidName"),
        (json!({"name": "x".repeat(129)}), 422, "InvalidName"),
        (
            json!({"name": "Ok", "handle": "no spaces"}),
            422,
            "InvalidHandle",
        ),
        (
            json!({"name": "Ok", "handle": "crew_two"}),
            409,
            "HandleTaken",
        ),
        (json!({"name": "Ok", "colour": "red"}), 422, "InvalidBody"),
    ];
    for (body, status, expected) in refused {
        let reply = post(&app, "/team", &ada, body.clone()).await;
        assert_eq!(
            (reply.status, code(&reply)),
            (status, json!(expected)),
            "{body}"
        );
    }
    let teams: i64 = sqlx::query_scalar("SELECT count(*) FROM teams WHERE created_by = $1")
        .bind(ada.id.parse::<i64>().unwrap())
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(teams, 1, "nothing half-written");
    let unknown = put(
        &app,
        &format!("/member/{max_member}"),
        Some(&ada),
        json!({"permissions": ["Fly"]}),
    )
    .await;
    assert_eq!(
        (unknown.status, code(&unknown)),
        (422, json!("InvalidBody"))
    );
    let bad_id = get(&app, "/team/abc", Some(&ada)).await;
    assert_eq!(
        (bad_id.status, code(&bad_id)),
        (400, json!("InvalidTeamId"))
    );
    let bad_query = get(&app, "/members?teamId=abc", Some(&ada)).await;
    assert_eq!(
        (bad_query.status, code(&bad_query)),
        (400, json!("InvalidTeamId"))
    );
    let member_again = post(
        &app,
        "/memberInvite",
        &ada,
        json!({"teamId": crew, "userId": max.id}),
    )
    .await;
    assert_eq!(
        (member_again.status, code(&member_again)),
        (409, json!("AlreadyMember"))
    );
    let bot: i64 = sqlx::query_scalar("SELECT id FROM users WHERE is_bot LIMIT 1")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    let to_bot = post(
        &app,
        "/memberInvite",
        &ada,
        json!({"teamId": crew, "userId": bot.to_string()}),
    )
    .await;
    assert_eq!(
        (to_bot.status, code(&to_bot)),
        (422, json!("InvalidInvitee"))
    );
    let nobody = post(
        &app,
        "/memberInvite",
        &ada,
        json!({"teamId": crew, "userId": "1"}),
    )
    .await;
    assert_eq!((nobody.status, code(&nobody)), (404, json!("UserNotFound")));
}
