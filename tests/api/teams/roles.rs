//! The table: every role (admin, manager, writer, stranger, signed out) × every action on a
//! private team, its members, its chat, its routine, its run and its credits, with the status
//! each must get.

use reqwest::Method;
use serde_json::json;

use super::{delete, join, put, team};
use crate::chat::{api, get, post};
use crate::helpers::{Reply, TestApp, spawn_app};
use crate::ws::{User, user};

/// One private team: an admin, a manager (invites, manages members, routines and runs), a
/// writer (talks in chats, starts runs), a team chat, a team routine and a team run the admin
/// started (waiting, so it can be cancelled).
struct Crew {
    team: String,
    chat: String,
    manager_member: String,
    writer_member: String,
    routine: String,
    version: String,
    run: String,
}

/// A graph that waits a minute: its run stays cancellable for the whole test.
fn waiting() -> serde_json::Value {
    json!({"graph": {"__type": "Graph-1.0", "schema": {
        "start": "w", "nodes": [{"id": "w", "kind": "wait", "durationMs": 60000}], "edges": []}}})
}

fn team_routine(team: &str) -> serde_json::Value {
    json!({"resourceType": "Routine", "name": "Team routine", "teamId": team,
           "config": waiting()})
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
        Some(json!([
            "InviteMembers",
            "ManageMembers",
            "WriteChats",
            "ManageRoutines",
            "ManageRuns"
        ])),
    )
    .await;
    let writer_member = join(
        app,
        &team,
        &p.admin,
        &p.writer,
        Some(json!(["WriteChats", "StartRuns"])),
    )
    .await;
    let Reply { body, .. } = post(app, "/chat", &p.admin, json!({"teamId": team})).await;
    let chat = body["data"]["chat"]["id"].as_str().unwrap().to_owned();
    let Reply { status, body, .. } = post(app, "/resource", &p.admin, team_routine(&team)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["teamId"], team.as_str());
    assert_eq!(body["data"]["ownerId"], serde_json::Value::Null);
    let routine = body["data"]["resourceId"].as_str().unwrap().to_owned();
    let version = body["data"]["versionId"].as_str().unwrap().to_owned();
    let started = post(app, "/task/start/run", &p.admin, start(&version, &team)).await;
    assert_eq!(started.status, 200, "{}", started.body);
    let run = started.body["data"]["runId"].as_str().unwrap().to_owned();
    Crew {
        team,
        chat,
        manager_member,
        writer_member,
        routine,
        version,
        run,
    }
}

fn start(version: &str, team: &str) -> serde_json::Value {
    json!({"resourceVersionId": version, "teamId": team, "formValues": {}})
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
    ReadTeamRoutine,
    ListTeamRoutines,
    CreateTeamRoutine,
    AddTeamRoutineVersion,
    StartTeamRun,
    ReadTeamRun,
    CancelTeamRun,
    ReadTeamCredits,
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
        Action::ReadTeamRoutine => get(app, &format!("/resourceVersion/{}", c.version), who).await,
        Action::ListTeamRoutines => get(app, &format!("/resources?teamId={team}"), who).await,
        Action::CreateTeamRoutine => {
            api(
                app,
                Method::POST,
                "/resource",
                who,
                Some(team_routine(team)),
            )
            .await
        }
        Action::AddTeamRoutineVersion => {
            let body = json!({"resourceId": c.routine, "versionLabel": "2.0.0",
                              "config": waiting()});
            api(app, Method::POST, "/resourceVersion", who, Some(body)).await
        }
        Action::StartTeamRun => {
            let body = start(&c.version, team);
            api(app, Method::POST, "/task/start/run", who, Some(body)).await
        }
        Action::ReadTeamRun => get(app, &format!("/run/{}", c.run), who).await,
        Action::CancelTeamRun => {
            let body = json!({"taskId": c.run, "taskType": "Run"});
            api(app, Method::POST, "/task/cancel", who, Some(body)).await
        }
        Action::ReadTeamCredits => get(app, &format!("/credits?teamId={team}"), who).await,
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
        // Team routines: every member reads them; ManageRoutines changes them.
        (ReadTeamRoutine, [200, 200, 200, 404, 404]),
        (ListTeamRoutines, [200, 200, 200, 404, 401]),
        (CreateTeamRoutine, [200, 200, 403, 404, 401]),
        (AddTeamRoutineVersion, [200, 200, 403, 404, 401]),
        // Team runs: StartRuns starts them (the manager lacks it); every member reads them;
        // only who started one, or ManageRuns, cancels it.
        (StartTeamRun, [200, 403, 200, 404, 401]),
        (ReadTeamRun, [200, 200, 200, 404, 404]),
        (CancelTeamRun, [200, 200, 403, 404, 401]),
        (ReadTeamCredits, [200, 200, 200, 404, 401]),
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
