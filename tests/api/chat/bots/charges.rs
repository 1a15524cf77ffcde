//! Bots and credits: simultaneous posts hold the worst case and never overdraw, an API key
//! records what it spends and stops at its hard limit, regenerating after a delete, and an
//! answer stopped before its first word costs nothing. Helpers come from the parent module.

use super::*;
use crate::helpers::SendReply;

/// A node whose one provider answers every request with `answer` (at `gpt-test`'s prices), its
/// settings adjusted by `configure`. The server is returned to keep it alive.
async fn paid_app(
    answer: ResponseTemplate,
    configure: impl FnOnce(&mut Settings) + Send + 'static,
) -> (MockServer, TestApp) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(answer)
        .mount(&server)
        .await;
    let uri = server.uri();
    let app = app_with_providers(move |s| {
        one_openai("openai", uri)(s);
        configure(s);
    })
    .await;
    (server, app)
}

#[tokio::test]
async fn simultaneous_posts_hold_the_worst_case_and_never_overdraw() {
    // Every answer reports 10 input and 2,000 output tokens: 10×100 + 2,000×200 = 401,000.
    let (_server, app) = paid_app(
        sse(openai_stream(&["Paid", " answer"], Some((10, 2000)), true)),
        |s| {
            s.ai.starting_credits = 1_000_000;
            s.ai.min_balance_credits = 0;
        },
    )
    .await;
    let sam = user(&app, "Sam").await;
    // maxTokens 2,000: the worst case is a little over 2,000×200 = 400,000 credits an answer.
    let paid = bot(
        &app,
        "Paid",
        json!({"model": "gpt-test", "maxTokens": 2000}),
    )
    .await;
    let chat = create_chat(&app, &sam, &[&paid], json!({})).await;

    let posts = (0..3).map(|i| {
        post(
            &app,
            "/chatMessage",
            &sam,
            json!({"chatId": chat, "text": format!("question {i}")}),
        )
    });
    let statuses: Vec<u16> = futures_util::future::join_all(posts)
        .await
        .into_iter()
        .map(|reply| reply.status)
        .collect();
    let accepted = statuses.iter().filter(|s| **s == 200).count();
    assert_eq!(
        accepted, 2,
        "two worst cases fit in 1,000,000: {statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 402).count(),
        1,
        "{statuses:?}"
    );

    wait_until(Duration::from_secs(30), "both answers settled", || async {
        let (_, holds, answers) = money(&app, &sam.id, &chat).await;
        holds == 0 && answers == 2
    })
    .await;
    let (balance, _, _) = money(&app, &sam.id, &chat).await;
    assert_eq!(
        balance,
        1_000_000 - 2 * 401_000,
        "charged the real cost, the rest released"
    );
    let ledger: i64 = sqlx::query_scalar(
        "SELECT COALESCE(sum(amount), 0)::BIGINT FROM credit_ledger_entries e
           JOIN credit_accounts a ON a.id = e.account_id WHERE a.user_id = $1::BIGINT",
    )
    .bind(&sam.id)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(ledger, balance, "the ledger adds up to the balance");
}

#[tokio::test]
async fn an_api_key_records_what_it_spends_and_stops_at_its_hard_limit() {
    let (_server, app) = paid_app(
        sse(openai_stream(&["Paid"], Some((10, 2000)), true)),
        |_| {},
    )
    .await;
    let sam = user(&app, "Sam").await;
    let paid = bot(
        &app,
        "Paid",
        json!({"model": "gpt-test", "maxTokens": 2000}),
    )
    .await;
    let chat = create_chat(&app, &sam, &[&paid], json!({})).await;
    let Reply { body: key, .. } = post(&app, "/apiKey", &sam, json!({"name": "agent", "permissions": ["ReadPrivate", "WritePrivate"], "limitHard": 500_000})).await;
    let secret = key["data"]["key"].as_str().unwrap().to_owned();
    let key_id: i64 = key["data"]["apiKey"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let send = |text: &'static str| {
        app.client
            .post(app.url("/api/v2/chatMessage"))
            .header("x-api-key", &secret)
            .json(&json!({"chatId": chat, "text": text}))
            .reply()
    };
    assert_eq!(send("first").await.status, 200);
    wait_until(
        Duration::from_secs(30),
        "the first answer settled",
        || async {
            let (_, holds, answers) = money(&app, &sam.id, &chat).await;
            holds == 0 && answers == 1
        },
    )
    .await;
    let used: i64 = sqlx::query_scalar("SELECT credits_used FROM api_keys WHERE id = $1")
        .bind(key_id)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(
        used, 401_000,
        "the key's spending is the answer's real cost"
    );
    // Another worst case (~400,000) would pass the 500,000 hard limit: refused, nothing written.
    let refused = send("second").await;
    assert_eq!(refused.status, 402);
    let body: Value = refused.body;
    assert_eq!(body["errors"][0]["code"], "ApiKeyCreditLimit");
    let messages: i64 =
        sqlx::query_scalar("SELECT count(*) FROM chat_messages WHERE chat_id = $1::BIGINT")
            .bind(&chat)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(
        messages, 2,
        "the question and its answer; the refused post left nothing"
    );
}

#[tokio::test]
async fn regenerating_after_deleting_an_answer_gets_a_new_answer() {
    let app = app_with_providers(|_| {}).await;
    let sam = user(&app, "Sam").await;
    let echo = bot(&app, "Echo", json!({})).await;
    let chat = create_chat(&app, &sam, &[&echo], json!({})).await;
    let answers = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT id FROM chat_messages WHERE chat_id = $1::BIGINT AND user_id = $2::BIGINT ORDER BY id",
        )
        .bind(&chat)
        .bind(&echo)
        .fetch_all(&app.db.pool)
        .await
        .unwrap()
    };
    post(
        &app,
        "/chatMessage",
        &sam,
        json!({"chatId": chat, "text": "say it"}),
    )
    .await;
    wait_until(Duration::from_secs(20), "the first answer", || async {
        answers().await.len() == 1
    })
    .await;
    let first = answers().await[0].to_string();
    let Reply { status, body, .. } = post(
        &app,
        "/regenerateResponse",
        &sam,
        json!({"messageId": first}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    wait_until(Duration::from_secs(20), "a second version", || async {
        answers().await.len() == 2
    })
    .await;
    // Delete the second version, then regenerate again: the sibling count is back to one, and
    // the new attempt must still be answered (not taken for the deleted one).
    let second = answers().await[1].to_string();
    let Reply { status, .. } = api(
        &app,
        reqwest::Method::DELETE,
        &format!("/chatMessage/{second}"),
        Some(&sam),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let Reply { status, body, .. } = post(
        &app,
        "/regenerateResponse",
        &sam,
        json!({"messageId": first}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    wait_until(
        Duration::from_secs(20),
        "a new answer after the deletion",
        || async { answers().await.len() == 2 },
    )
    .await;
    assert!(!answers().await.contains(&second.parse().unwrap()));
}

#[tokio::test]
async fn an_answer_stopped_before_its_first_word_costs_nothing() {
    let (_server, app) = paid_app(
        sse(openai_stream(&["Too", " late"], Some((10, 2000)), true))
            .set_delay(Duration::from_secs(20)),
        |_| {},
    )
    .await;
    let mut scene = scene(&app, json!({"model": "gpt-test", "maxTokens": 2000})).await;
    let Reply { body: before, .. } = get(&app, "/credits", Some(&scene.sam)).await;
    post(
        &app,
        "/chatMessage",
        &scene.sam,
        json!({"chatId": scene.chat, "text": "take your time"}),
    )
    .await;
    loop {
        let event = scene.ws.event().await;
        if event["type"] == "bot/status/updated" && event["data"]["status"] == "thinking" {
            break;
        }
    }
    let ack = scene
        .ws
        .command("requestCancellation", json!({"chatId": scene.chat}))
        .await;
    assert_eq!(ack["success"], true);
    let seen = until_idle(&mut scene.ws).await;
    assert_eq!(end_of(&seen)["finalMessage"]["status"], "Cancelled");
    wait_until(Duration::from_secs(10), "the hold released", || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM credit_holds")
            .fetch_one(&app.db.pool)
            .await
            .unwrap()
            == 0
    })
    .await;
    let Reply { body: after, .. } = get(&app, "/credits", Some(&scene.sam)).await;
    assert_eq!(after, before, "nothing was generated, nothing is charged");
}

#[tokio::test]
async fn a_bot_in_a_team_chat_is_paid_by_the_team_and_an_empty_team_is_refused() {
    // 10×100 + 2,000×200 = 401,000 an answer.
    let (_server, app) = paid_app(
        sse(openai_stream(&["Team", " answer"], Some((10, 2000)), true)),
        |s| {
            s.ai.starting_credits = 1_000_000;
            s.ai.team_starting_credits = 1_000_000;
            s.ai.min_balance_credits = 0;
        },
    )
    .await;
    let sam = user(&app, "Sam").await;
    let paid = bot(
        &app,
        "Paid",
        json!({"model": "gpt-test", "maxTokens": 2000}),
    )
    .await;
    let Reply { body, .. } = post(&app, "/team", &sam, json!({"name": "Crew"})).await;
    let team = body["data"]["id"].as_str().unwrap().to_owned();
    let chat = create_chat(&app, &sam, &[&paid], json!({"teamId": team})).await;
    let mut socket = open(&app.address, &sam.token).await;
    socket.join("joinUserRoom", json!({"userId": sam.id})).await;
    let said = post(
        &app,
        "/chatMessage",
        &sam,
        json!({"chatId": chat, "text": "for the team"}),
    )
    .await;
    assert_eq!(said.status, 200, "{}", said.body);
    wait_until(Duration::from_secs(30), "the answer settled", || async {
        let holds: i64 = sqlx::query_scalar("SELECT count(*) FROM credit_holds")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
        let ledger: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM credit_ledger_entries WHERE kind = 'LlmAnswer'",
        )
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
        holds == 0 && ledger == 1
    })
    .await;
    let team_balance = get(&app, &format!("/credits?teamId={team}"), Some(&sam)).await;
    assert_eq!(team_balance.body["data"]["balance"], "599000");
    let own = get(&app, "/credits", Some(&sam)).await;
    assert_eq!(own.body["data"]["balance"], "1000000", "Sam paid nothing");
    // Sam hears what the team holds now, named as the team's.
    let event = loop {
        let event = socket.event().await;
        if event["type"] == "user/credits/updated" {
            break event;
        }
    };
    assert_eq!(event["data"]["teamId"], team.as_str(), "{event}");
    assert_eq!(event["data"]["balance"], "599000");

    // A team whose account is empty gets no answer, whatever its members hold.
    let poor = spawn_app_with(|s| s.ai.team_starting_credits = 0, None).await;
    let kim = user(&poor, "Kim").await;
    let echo = bot(&poor, "Echo", json!({"model": "echo"})).await;
    let Reply { body, .. } = post(&poor, "/team", &kim, json!({"name": "Poor"})).await;
    let team = body["data"]["id"].as_str().unwrap().to_owned();
    let chat = create_chat(&poor, &kim, &[&echo], json!({"teamId": team})).await;
    let refused = post(
        &poor,
        "/chatMessage",
        &kim,
        json!({"chatId": chat, "text": "anyone?"}),
    )
    .await;
    assert_eq!(refused.status, 402, "{}", refused.body);
}

#[tokio::test]
async fn a_team_run_is_paid_by_the_team() {
    // One llm step: 10×100 + 2,000×200 = 401,000.
    let (_server, app) = paid_app(sse(openai_stream(&["Done"], Some((10, 2000)), true)), |s| {
        s.ai.starting_credits = 1_000_000;
        s.ai.team_starting_credits = 2_000_000;
        s.ai.min_balance_credits = 0;
    })
    .await;
    let sam = user(&app, "Sam").await;
    let Reply { body, .. } = post(&app, "/team", &sam, json!({"name": "Crew"})).await;
    let team = body["data"]["id"].as_str().unwrap().to_owned();
    let graph = crate::runs::graph(
        json!([{"id": "ask", "kind": "llm", "model": "gpt-test", "prompt": "Hi", "maxTokens": 2000}]),
        json!([]),
    );
    let Reply { body, .. } = post(
        &app,
        "/resource",
        &sam,
        json!({"resourceType": "Routine", "name": "Ask", "teamId": team, "config": graph}),
    )
    .await;
    let version = body["data"]["versionId"].as_str().unwrap().to_owned();
    let started = post(
        &app,
        "/task/start/run",
        &sam,
        json!({"resourceVersionId": version, "teamId": team, "formValues": {}}),
    )
    .await;
    assert_eq!(started.status, 200, "{}", started.body);
    let run = started.body["data"]["runId"].as_str().unwrap().to_owned();
    let done = crate::runs::until_status(&app, &sam, &run, "Completed").await;
    assert_eq!(done["creditsUsed"], 401_000, "{done}");
    let team_balance = get(&app, &format!("/credits?teamId={team}"), Some(&sam)).await;
    assert_eq!(team_balance.body["data"]["balance"], "1599000");
    let own = get(&app, "/credits", Some(&sam)).await;
    assert_eq!(own.body["data"]["balance"], "1000000", "Sam paid nothing");
}
