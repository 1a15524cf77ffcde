//! A run acts with the scope it was started with (issue 34): a team key's run reaches only its
//! team's chats and routines, even through a stranger's public routine; a key narrowed while
//! its run waits binds the run's steps; a key's credit limit binds its runs' llm steps, and
//! what they spend counts on the key.

use super::*;
use crate::chat::create_chat;

/// `POST /task/start/run` with API key `key`; the run's id.
async fn start_with_key(app: &TestApp, key: &str, version: &str, inputs: Value) -> String {
    let reply = Reply::of(
        app.client
            .post(app.url("/api/v2/task/start/run"))
            .header("x-api-key", key)
            .json(&json!({"resourceVersionId": version, "isNewRun": true, "formValues": inputs})),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["data"]["runId"].as_str().unwrap().to_owned()
}

/// A new API key of `who` (of `team`, if given); its secret and id.
async fn key_of(
    app: &TestApp,
    who: &User,
    team: Option<&str>,
    permissions: &[&str],
    limit_hard: i64,
) -> (String, String) {
    let mut body = json!({"name": "integration", "permissions": permissions,
                          "limitHard": limit_hard});
    if let Some(team) = team {
        body["teamId"] = json!(team);
    }
    let reply = crate::chat::post(app, "/apiKey", who, body).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    (
        reply.body["data"]["key"].as_str().unwrap().to_owned(),
        reply.body["data"]["apiKey"]["id"]
            .as_str()
            .unwrap()
            .to_owned(),
    )
}

/// A routine of `who`, public when `public`; its version id.
async fn routine_of(app: &TestApp, who: &User, public: bool, config: Value) -> String {
    let body = json!({"resourceType": "Routine", "name": "Helpful", "isPrivate": !public,
                      "config": config});
    let reply = app
        .call(
            Method::POST,
            "/resource",
            Auth::Cookie(&who.token),
            Some(&body),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["data"]["versionId"].as_str().unwrap().to_owned()
}

fn action(tool: &str, input: Value) -> Value {
    graph(
        json!([{"id": "act", "kind": "action", "tool": tool, "input": input}]),
        json!([]),
    )
}

#[tokio::test]
async fn a_team_keys_run_reaches_only_its_teams_chats_and_routines() {
    let app = run_app().await;
    let ada = user(&app, "Ada").await;
    let mal = user(&app, "Mal").await;
    let team = crate::chat::post(&app, "/team", &ada, json!({"name": "Crew"})).await;
    assert_eq!(team.status, 200, "{}", team.body);
    let team = team.body["data"]["id"].as_str().unwrap().to_owned();
    let (key, _) = key_of(
        &app,
        &ada,
        Some(&team),
        &["ReadPrivate", "WritePrivate"],
        1_000_000_000,
    )
    .await;
    let own_chat = create_chat(&app, &ada, &[], json!({"name": "Mine"})).await;
    let team_chat = create_chat(&app, &ada, &[], json!({"teamId": team})).await;
    let secret = routine_of(
        &app,
        &ada,
        false,
        action("define_tool", json!({"toolName": "send_message"})),
    )
    .await;
    // Mal's public routines, run by Ada's team's key.
    let post = routine_of(
        &app,
        &mal,
        true,
        action(
            "send_message",
            json!({"chatId": "{{input.chatId}}", "text": "from a run"}),
        ),
    )
    .await;
    let find = routine_of(
        &app,
        &mal,
        true,
        action(
            "resource_manage",
            json!({"op": "find", "resourceType": "Routine"}),
        ),
    )
    .await;
    let get = routine_of(
        &app,
        &mal,
        true,
        action(
            "resource_manage",
            json!({"op": "get", "resourceType": "Routine", "id": secret}),
        ),
    )
    .await;
    let messages = |chat: String| {
        let app = &app;
        async move {
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM chat_messages WHERE chat_id = $1::BIGINT",
            )
            .bind(chat)
            .fetch_one(&app.db.pool)
            .await
            .unwrap()
        }
    };

    // Over REST the key does not start Ada's private routine as a team run either: the team
    // would read what it does.
    let refused = Reply::of(
        app.client
            .post(app.url("/api/v2/task/start/run"))
            .header("x-api-key", &key)
            .json(&json!({"resourceVersionId": secret, "isNewRun": true})),
    )
    .await;
    assert_eq!(
        (refused.status, refused.body["errors"][0]["code"].clone()),
        (403, json!("TeamKeyNotAccepted")),
        "{}",
        refused.body
    );

    // Into Ada's own chat: refused, nothing posted.
    let run = start_with_key(&app, &key, &post, json!({"chatId": own_chat})).await;
    let failed = until_status(&app, &ada, &run, "Failed").await;
    assert_eq!(failed["statusReason"], "OutsideTeam", "{failed}");
    assert_eq!(messages(own_chat.clone()).await, 0);
    // Into the team's chat: posted.
    let run = start_with_key(&app, &key, &post, json!({"chatId": team_chat})).await;
    until_status(&app, &ada, &run, "Completed").await;
    assert_eq!(messages(team_chat.clone()).await, 1);

    // Finding lists the team's routines, not Ada's; reading her private one is refused.
    let run = start_with_key(&app, &key, &find, json!({})).await;
    let done = until_status(&app, &ada, &run, "Completed").await;
    let found = done["outputs"]["result"]["routines"].clone();
    assert_eq!(found, json!([]), "{done}");
    let run = start_with_key(&app, &key, &get, json!({})).await;
    let failed = until_status(&app, &ada, &run, "Failed").await;
    assert_eq!(failed["statusReason"], "OutsideTeam", "{failed}");
}

#[tokio::test]
async fn a_key_narrowed_while_its_run_waits_cannot_start_runs_through_a_step() {
    let app = run_app().await;
    let sam = user(&app, "Sam").await;
    let (key, id) = key_of(
        &app,
        &sam,
        None,
        &["ReadPrivate", "WritePrivate"],
        1_000_000_000,
    )
    .await;
    let child = routine(
        &app,
        &sam,
        "RoutineMultiStep",
        graph(
            json!([{"id": "w", "kind": "wait", "durationMs": 0}]),
            json!([]),
        ),
    )
    .await;
    let parent = routine(
        &app,
        &sam,
        "RoutineMultiStep",
        graph(
            json!([{"id": "ok", "kind": "approval", "message": "Go?"},
                   {"id": "go", "kind": "action", "tool": "run_routine",
                    "input": {"action": "start", "routineId": child}}]),
            chain(&["ok", "go"]),
        ),
    )
    .await;
    let run = start_with_key(&app, &key, &parent, json!({})).await;
    wait_until(Duration::from_secs(20), "the approval is asked", || async {
        get_run(&app, &sam, &run).await["waitingFor"] == "Decision"
    })
    .await;
    let narrowed = app
        .call(
            Method::PUT,
            &format!("/apiKey/{id}"),
            Auth::Cookie(&sam.token),
            Some(&json!({"permissions": ["ReadPrivate"]})),
        )
        .await;
    assert_eq!(narrowed.status, 200, "{}", narrowed.body);
    let answered = app
        .call(
            Method::POST,
            &format!("/run/{run}/decision"),
            Auth::Cookie(&sam.token),
            Some(&json!({"key": "ok", "value": true})),
        )
        .await;
    assert_eq!(answered.status, 200, "{}", answered.body);
    let failed = until_status(&app, &sam, &run, "Failed").await;
    assert_eq!(failed["statusReason"], "MissingPermission", "{failed}");
    let runs: i64 = sqlx::query_scalar("SELECT count(*) FROM runs")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(runs, 1, "no run was started");
}

#[tokio::test]
async fn a_keys_credit_limit_binds_its_runs_llm_steps_and_counts_what_they_spend() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(crate::chat::bots::sse(crate::chat::bots::openai_stream(
            &["Hello"],
            Some((12, 2)),
            true,
        )))
        .mount(&server)
        .await;
    let uri = server.uri();
    let app = spawn_app_with(
        move |s| {
            run_settings(s);
            crate::chat::bots::one_openai("openai", uri)(s);
        },
        None,
    )
    .await;
    let sam = user(&app, "Sam").await;
    let ask = routine(
        &app,
        &sam,
        "RoutineMultiStep",
        graph(
            json!([{"id": "ask", "kind": "llm", "model": "gpt-test", "prompt": "Hi", "maxTokens": 10}]),
            json!([]),
        ),
    )
    .await;
    let used = |id: String| {
        let app = &app;
        async move {
            sqlx::query_scalar::<_, i64>("SELECT credits_used FROM api_keys WHERE id = $1::BIGINT")
                .bind(id)
                .fetch_one(&app.db.pool)
                .await
                .unwrap()
        }
    };

    // A key that may spend 1 credit: its run's llm step is refused before the model is asked.
    let (tight, tight_id) = key_of(&app, &sam, None, &["ReadPrivate", "WritePrivate"], 1).await;
    let run = start_with_key(&app, &tight, &ask, json!({})).await;
    let paused = until_status(&app, &sam, &run, "Paused").await;
    assert_eq!(paused["statusReason"], "ApiKeyCreditLimit", "{paused}");
    assert!(
        server.received_requests().await.unwrap().is_empty(),
        "the model was not called"
    );
    assert_eq!(used(tight_id).await, 0);
    let held: i64 = sqlx::query_scalar("SELECT count(*) FROM credit_holds")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(held, 0, "nothing left held");

    // A key with room: what its run spends is what the key has used.
    let (roomy, roomy_id) = key_of(
        &app,
        &sam,
        None,
        &["ReadPrivate", "WritePrivate"],
        1_000_000_000,
    )
    .await;
    let run = start_with_key(&app, &roomy, &ask, json!({})).await;
    let done = until_status(&app, &sam, &run, "Completed").await;
    let spent = done["creditsUsed"].as_i64().unwrap();
    assert!(spent > 0, "{done}");
    assert_eq!(used(roomy_id).await, spent);
}
