//! The worked examples of docs/ROUTINES.md, read from the document itself (each a ```json block
//! after a line `<!-- example: <name> -->`), created through `POST /resource` as written and run
//! to the end: the report summarized by a model (a fake OpenAI-compatible provider) and sent to
//! the alert webhook (a local HTTP server), the reviews scored by a map of code steps, and the
//! announcement posted to a chat only once approved. What the document says each run gives is
//! asserted here.

use std::collections::BTreeMap;

use wiremock::matchers::body_json;

use super::*;
use crate::chat::bots::{one_openai, openai_stream, sse};
use crate::chat::create_chat;

/// The document's examples by name.
fn examples() -> BTreeMap<String, Value> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/ROUTINES.md");
    let text = std::fs::read_to_string(path).expect("docs/ROUTINES.md");
    let mut found = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(name) = line
            .trim()
            .strip_prefix("<!-- example:")
            .and_then(|rest| rest.strip_suffix("-->"))
        else {
            continue;
        };
        let name = name.trim().to_owned();
        assert_eq!(
            lines.next().map(str::trim),
            Some("```json"),
            "example {name}: a ```json block follows its marker"
        );
        let block: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != "```").collect();
        let value = serde_json::from_str(&block.join("\n"))
            .unwrap_or_else(|e| panic!("example {name} is not JSON: {e}"));
        assert!(
            found.insert(name.clone(), value).is_none(),
            "example {name} twice"
        );
    }
    found
}

fn example(name: &str) -> Value {
    examples()
        .remove(name)
        .unwrap_or_else(|| panic!("docs/ROUTINES.md has no example {name}"))
}

/// `POST /resource` with the document's routine `name`, as written; its version id.
async fn create(app: &TestApp, who: &User, name: &str) -> String {
    let reply = app
        .call(
            Method::POST,
            "/resource",
            Auth::Cookie(&who.token),
            Some(&example(name)),
        )
        .await;
    assert_eq!(reply.status, 200, "{name}: {}", reply.body);
    reply.body["data"]["versionId"].as_str().unwrap().to_owned()
}

/// The document's start body `name` for `version`, its placeholders replaced by `values`
/// (each must be in the document as written); the run's id.
async fn start_example(
    app: &TestApp,
    who: &User,
    name: &str,
    version: &str,
    values: &[(&str, Value)],
) -> String {
    let mut body = example(name);
    assert_eq!(body["resourceVersionId"], "<versionId>", "{name}");
    body["resourceVersionId"] = json!(version);
    for (field, value) in values {
        assert!(
            body["formValues"].get(*field).is_some(),
            "{name} has no formValues.{field}"
        );
        body["formValues"][*field] = value.clone();
    }
    let reply = app
        .call(
            Method::POST,
            "/task/start/run",
            Auth::Cookie(&who.token),
            Some(&body),
        )
        .await;
    assert_eq!(reply.status, 200, "{name}: {}", reply.body);
    assert_eq!(reply.body["data"]["status"], "Scheduled");
    reply.body["data"]["runId"].as_str().unwrap().to_owned()
}

fn node_ids(run: &Value) -> Vec<&str> {
    run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["nodeId"].as_str().unwrap())
        .collect()
}

#[test]
fn the_document_holds_every_example_once() {
    let names: Vec<String> = examples().into_keys().collect();
    assert_eq!(
        names,
        [
            "approval-answer",
            "approval-routine",
            "approval-run",
            "reviews-routine",
            "reviews-run",
            "summarize-routine",
            "summarize-run"
        ]
    );
}

#[tokio::test]
async fn the_report_is_fetched_summarized_and_sent_to_the_alert_webhook() {
    let service = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/incidents/latest"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(
                json!({"title": "Database outage", "body": "Writes fail since 10:02."}),
            ),
        )
        .mount(&service)
        .await;
    Mock::given(method("POST"))
        .and(path("/hooks/alert"))
        .and(body_json(
            json!({"title": "Database outage", "summary": "The database is down."}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true})))
        .expect(1)
        .mount(&service)
        .await;
    Mock::given(method("POST"))
        .and(path("/hooks/log"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&service)
        .await;
    // The model: an OpenAI-compatible provider answering the JSON the prompt asks for.
    let model = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(sse(openai_stream(
            &[
                "{\"severity\": \"high\", ",
                "\"summary\": \"The database is down.\"}",
            ],
            Some((60, 20)),
            true,
        )))
        .mount(&model)
        .await;
    let model_uri = model.uri();
    let app = spawn_app_with(
        move |s| {
            run_settings(s);
            one_openai("fake-openai", model_uri)(s);
            // The example names no model: the server's default answers.
            s.ai.default_model = "gpt-test".into();
        },
        None,
    )
    .await;
    let sam = user(&app, "Sam").await;
    let version = create(&app, &sam, "summarize-routine").await;
    let run = start_example(
        &app,
        &sam,
        "summarize-run",
        &version,
        &[
            (
                "reportUrl",
                json!(format!("{}/incidents/latest", service.uri())),
            ),
            ("webhookUrl", json!(format!("{}/hooks", service.uri()))),
        ],
    )
    .await;
    let done = until_status(&app, &sam, &run, "Completed").await;
    assert_eq!(
        done["outputs"],
        json!({"severity": "high", "summary": "The database is down.", "sentTo": "alert"}),
        "{done}"
    );
    assert_eq!(node_ids(&done), ["fetch", "summarize", "route", "alert"]);
    // The prompt reached the model with the report's fields filled in.
    let asked: Value = serde_json::from_slice(&model.received_requests().await.unwrap()[0].body)
        .expect("a JSON request");
    let prompt = asked["messages"][0]["content"].as_str().unwrap();
    assert!(
        prompt.contains("Title: Database outage\n\nWrites fail since 10:02."),
        "{prompt}"
    );
    assert!(
        done["creditsUsed"].as_i64().unwrap() > 0,
        "the model is paid"
    );
    service.verify().await;
}

#[tokio::test]
async fn every_review_is_scored_by_a_code_step_and_the_scores_added_up() {
    let app = run_app().await;
    let sam = user(&app, "Sam").await;
    let version = create(&app, &sam, "reviews-routine").await;
    let run = start_example(&app, &sam, "reviews-run", &version, &[]).await;
    let done = until_status(&app, &sam, &run, "Completed").await;
    assert_eq!(
        done["outputs"]["total"],
        json!({"reviews": 3, "good": 3}),
        "{done}"
    );
    assert_eq!(
        done["outputs"]["scores"][0],
        json!({"good": 2, "result": {"index": 0, "words": 5, "good": 2}})
    );
    let indexes: Vec<&Value> = done["outputs"]["scores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["result"]["index"])
        .collect();
    assert_eq!(
        indexes,
        [&json!(0), &json!(1), &json!(2)],
        "in the list's order"
    );
    let keys: Vec<&str> = done["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stepKey"].as_str().unwrap())
        .collect();
    assert!(
        keys.contains(&format!("{run}:each[2]").as_str()),
        "{keys:?}"
    );
}

#[tokio::test]
async fn the_announcement_is_posted_only_once_approved() {
    let app = run_app().await;
    let sam = user(&app, "Sam").await;
    let chat = create_chat(&app, &sam, &[], json!({})).await;
    let version = create(&app, &sam, "approval-routine").await;
    let messages = || async {
        sqlx::query_as::<_, (i64, String)>("SELECT id, text FROM chat_messages WHERE chat_id = $1")
            .bind(chat.parse::<i64>().unwrap())
            .fetch_all(&app.db.pool)
            .await
            .unwrap()
    };
    let start = || async {
        let chat_id = [("chatId", json!(chat))];
        start_example(&app, &sam, "approval-run", &version, &chat_id).await
    };

    // Approved: the run waits for the answer, then posts.
    let run = start().await;
    wait_until(
        Duration::from_secs(10),
        "the approval is requested",
        || async {
            events(&app, &sam, &run)
                .await
                .iter()
                .any(|e| e["type"] == "run/decision/requested")
        },
    )
    .await;
    let requested = events(&app, &sam, &run)
        .await
        .into_iter()
        .find(|e| e["type"] == "run/decision/requested")
        .unwrap();
    assert_eq!(requested["data"]["key"], "approve");
    assert_eq!(requested["data"]["kind"], "approval");
    assert_eq!(requested["data"]["message"], "Post the announcement?");
    assert_eq!(get_run(&app, &sam, &run).await["waitingFor"], "Decision");
    assert!(
        messages().await.is_empty(),
        "nothing posted before the answer"
    );
    let answer = example("approval-answer");
    let reply = app
        .call(
            Method::POST,
            &format!("/run/{run}/decision"),
            Auth::Cookie(&sam.token),
            Some(&answer),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["data"]["stored"], true);
    let done = until_status(&app, &sam, &run, "Completed").await;
    let posted = messages().await;
    assert_eq!(posted.len(), 1);
    assert_eq!(posted[0].1, "The new release is out.");
    assert_eq!(
        done["outputs"],
        json!({"approved": true, "messageId": posted[0].0.to_string()}),
        "{done}"
    );

    // Refused: the post is skipped and nothing more is posted.
    let run = start().await;
    let mut refusal = answer.clone();
    refusal["value"] = json!({"approved": false});
    let reply = app
        .call(
            Method::POST,
            &format!("/run/{run}/decision"),
            Auth::Cookie(&sam.token),
            Some(&refusal),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let done = until_status(&app, &sam, &run, "Completed").await;
    assert_eq!(
        done["outputs"],
        json!({"approved": false, "messageId": null}),
        "{done}"
    );
    assert_eq!(done["steps"][1]["status"], "Skipped", "{done}");
    assert_eq!(messages().await.len(), 1);
}
