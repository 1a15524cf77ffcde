//! Bots and their providers: a rate-limited provider falls back and cools down, a stream that
//! breaks off keeps what was said, and a provider that rejects its key is disabled with the
//! error shown in the room. Helpers come from the parent module.

use super::*;

#[tokio::test]
async fn a_rate_limited_provider_falls_back_and_cools_down() {
    let flaky = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(
            ResponseTemplate::new(429).set_body_json(
                json!({"error": {"message": "Rate limit reached", "type": "requests"}}),
            ),
        )
        .expect(1) // the second answer skips it: it is cooling down
        .mount(&flaky)
        .await;
    let anthropic = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .and(header("x-api-key", "sk-test"))
        .and(header("anthropic-version", "2023-06-01"))
        .and(body_partial_json(
            json!({"model": "claude-test-upstream", "stream": true, "system": "You are Claude."}),
        ))
        .respond_with(sse(anthropic_stream(&["Hi", " there"], 10, 3)))
        .expect(2)
        .mount(&anthropic)
        .await;
    let (flaky_uri, anthropic_uri) = (flaky.uri(), anthropic.uri());
    let app = app_with_providers(move |s| {
        s.ai.providers = vec![
            provider("flaky", AiProviderKind::Openai, format!("{flaky_uri}/v1")),
            provider("anthropic", AiProviderKind::Anthropic, anthropic_uri),
        ];
        s.ai.models = vec![
            model("primary", "flaky", (1, 1), &["claude-test"]),
            model("claude-test", "anthropic", (300, 1500), &[]),
        ];
    })
    .await;
    let sam = user(&app, "Sam").await;
    let claude = bot(
        &app,
        "Claude",
        json!({"model": "primary", "persona": "You are Claude."}),
    )
    .await;
    let chat = create_chat(&app, &sam, &[&claude], json!({})).await;
    let mut ws = open(&app.address, &sam.token).await;
    ws.join("joinChatRoom", json!({"chatId": chat})).await;
    for _ in 0..2 {
        post(
            &app,
            "/chatMessage",
            &sam,
            json!({"chatId": chat, "text": "hello"}),
        )
        .await;
        let seen = until_idle(&mut ws).await;
        assert_eq!(streamed_text(&seen), "Hi there");
        assert_eq!(end_of(&seen)["finalMessage"]["status"], "Sent");
    }
    // The health report shows the cooldown, without taking the node out of service.
    let Reply {
        status,
        body: health,
        ..
    } = app.healthcheck().await;
    assert_eq!(status, 200);
    let llm = &health["services"]["llm"];
    assert_eq!(llm["status"], "Degraded", "{health}");
    assert_eq!(llm["details"]["providers"]["flaky"]["state"], "coolingDown");
    assert_eq!(
        llm["details"]["providers"]["anthropic"]["state"],
        "available"
    );
    // Charged at the fallback's price: 10 × 300 + 3 × 1500 per answer.
    let Reply { body: balance, .. } = get(&app, "/credits", Some(&sam)).await;
    assert_eq!(
        balance["data"]["balance"],
        (100_000_000 - 2 * 7_500).to_string()
    );
}

#[tokio::test]
async fn a_stream_that_breaks_off_keeps_what_was_said() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(sse(openai_stream(&["Half an"], None, false)))
        .mount(&server)
        .await;
    let app = app_with_providers(one_openai("fake-openai", server.uri())).await;
    let mut scene = scene(&app, json!({"model": "gpt-test"})).await;
    let seen = scene.ask(&app, "tell me").await;
    let end = end_of(&seen);
    assert_eq!(end["__type"], "error");
    assert_eq!(end["finalMessage"]["text"], "Half an");
    assert_eq!(end["finalMessage"]["status"], "Failed");
}

#[tokio::test]
async fn a_provider_that_rejects_its_key_is_disabled_and_the_error_reaches_the_room() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(401).set_body_json(
            json!({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error", "code": "invalid_api_key"}}),
        ))
        .expect(1) // disabled after the first refusal: never asked again
        .mount(&server)
        .await;
    let uri = server.uri(); // the server itself must outlive the test, not the settings
    let app = app_with_providers(move |s| {
        one_openai("badkey", uri)(s);
        s.jobs.max_attempts = 2;
    })
    .await;
    let mut scene = scene(&app, json!({"model": "gpt-test"})).await;
    let seen = scene.ask(&app, "hello").await;
    let end = end_of(&seen);
    assert_eq!(end["__type"], "error");
    assert!(
        end["error"].as_str().unwrap().contains("authentication"),
        "{end}"
    );
    assert!(
        end["finalMessage"].is_null(),
        "nothing was said, nothing stored"
    );
    let Reply { body: health, .. } = app.healthcheck().await;
    assert_eq!(
        health["services"]["llm"]["details"]["providers"]["badkey"]["state"],
        "disabled"
    );
    let Reply { body: balance, .. } = get(&app, "/credits", Some(&scene.sam)).await;
    assert_eq!(balance["data"]["balance"], "100000000", "nothing charged");
}
