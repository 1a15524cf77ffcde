//! The table: every role (admin, manager, writer, stranger, signed out) × every action on a
//! private team, its members and its chat, with the status each must get.

use reqwest::Method;
use serde_json::json;

use super::{delete, join, put, team};
use crate::chat::{api, get, post};
use crate::helpers::{Reply, TestApp, spawn_app};
use crate::ws::{User, user};

/// One private team: an admin, a manager (invites, manages members), a writer (the default),
/// and a team chat.
struct Crew {
    team: String,
    chat: String,
    manager_member: String,
    writer_member: String,
}

struct People {
    admin: User,
    manager: User,
    writer: User,
    stranger: User,
    newcomer: User,
}

async fn crew(app: &TestApp, p: &People) -> Crew {
    let team = team(app, &p.admin, json!({"name": "Crew", "isPrivate": true})).await;
    let manager_member = join(
        app,
        &team,
        &p.admin,
        &p.manager,
        Some(json!(["InviteMembers", "ManageMembers", "WriteChats"])),
    )
    .await;
    let writer_member = join(app, &team, &p.admin, &p.writer, None).await;
    let Reply { body, .. } = post(app, "/chat", &p.admin, json!({"teamId": team})).await;
    let chat = body["data"]["chat"]["id"].as_str().unwrap().to_owned();
    Crew {
        team,
        chat,
        manager_member,
        writer_member,
    }
}

#[derive(Clone, Copy, Debug)]
enum Action {
    GetTeam,
    UpdateTeam,
    DeleteTeam,
    ListMembers,
    Invite,
    GrantWriter,
    RemoveWriter,
    RemoveManager,
    CreateTeamChat,
    PostInTeamChat,
    RenameTeamChat,
}

async fn act(app: &TestApp, p: &People, c: &Crew, who: Option<&User>, action: Action) -> Reply {
    let team = &c.team;
    match action {
        Action::GetTeam => get(app, &format!("/team/{team}"), who).await,
        Action::UpdateTeam => put(app, &format!("/team/{team}"), who, json!({"name": "New"})).await,
        Action::DeleteTeam => delete(app, &format!("/team/{team}"), who).await,
        Action::ListMembers => get(app, &format!("/members?teamId={team}"), who).await,
        Action::Invite => {
            let body = json!({"teamId": team, "userId": p.newcomer.id});
            api(app, Method::POST, "/memberInvite", who, Some(body)).await
        }
        Action::GrantWriter => {
            let body = json!({"permissions": ["WriteChats", "InviteMembers"]});
            put(app, &format!("/member/{}", c.writer_member), who, body).await
        }
        Action::RemoveWriter => delete(app, &format!("/member/{}", c.writer_member), who).await,
        Action::RemoveManager => delete(app, &format!("/member/{}", c.manager_member), who).await,
        Action::CreateTeamChat => {
            api(
                app,
                Method::POST,
                "/chat",
                who,
                Some(json!({"teamId": team})),
            )
            .await
        }
        Action::PostInTeamChat => {
            let body = json!({"chatId": c.chat, "text": "hello"});
            api(app, Method::POST, "/chatMessage", who, Some(body)).await
        }
        Action::RenameTeamChat => {
            put(app, &format!("/chat/{}", c.chat), who, json!({"name": "r"})).await
        }
    }
}

#[tokio::test]
async fn every_role_gets_what_its_permissions_say_for_every_action() {
    use Action::*;
    let app = spawn_app().await;
    let people = People {
        admin: user(&app, "Ada").await,
        manager: user(&app, "Max").await,
        writer: user(&app, "Wes").await,
        stranger: user(&app, "Sol").await,
        newcomer: user(&app, "Neo").await,
    };
    // Expected status for: admin, manager, writer, stranger, signed out. A private team is
    // not found by strangers; signing in comes first for every write.
    let table: &[(Action, [u16; 5])] = &[
        (GetTeam, [200, 200, 200, 404, 404]),
        (UpdateTeam, [200, 403, 403, 404, 401]),
        (DeleteTeam, [200, 403, 403, 404, 401]),
        (ListMembers, [200, 200, 200, 404, 404]),
        (Invite, [200, 200, 403, 404, 401]),
        (GrantWriter, [200, 200, 403, 404, 401]),
        // The writer removing their own membership is leaving.
        (RemoveWriter, [200, 200, 200, 404, 401]),
        (RemoveManager, [200, 200, 403, 404, 401]),
        // The manager does not hold CreateChats; strangers are no members.
        (CreateTeamChat, [200, 403, 403, 403, 401]),
        (PostInTeamChat, [200, 200, 200, 404, 401]),
        (RenameTeamChat, [200, 403, 403, 404, 401]),
    ];
    let mut wrong = Vec::new();
    for (action, expected) in table {
        let who = [
            Some(&people.admin),
            Some(&people.manager),
            Some(&people.writer),
            Some(&people.stranger),
            None,
        ];
        for (role, (who, expected)) in who.into_iter().zip(expected).enumerate() {
            // A fresh team for each: a delete or a removal changes nothing for the next row.
            let c = crew(&app, &people).await;
            let reply = act(&app, &people, &c, who, *action).await;
            if reply.status != *expected {
                wrong.push(format!(
                    "{action:?} as role {role}: {} (expected {expected}) {}",
                    reply.status, reply.body
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}
