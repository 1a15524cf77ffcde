//! Bots answering: fake OpenAI-compatible and Anthropic servers speaking their real streaming
//! formats (with a 429 that falls back and a stream that breaks off), cancellation from a
//! WebSocket, credits charged exactly once, and an answer refused up front without credits.
//! The built-in echo model's tests are in `echo.rs`, credits in `charges.rs`, fallbacks and
//! failures in `providers.rs`.
//!
//! This module holds the fake providers' wire formats and the scene helpers the others use.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vrooli::config::{AiModelSettings, AiProviderKind, AiProviderSettings, Settings};
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;
use crate::helpers::{SecondNode, spawn_app_with, wait_until};
use crate::ws::{Ws, open, user, with_system_key};

pub(crate) fn openai_stream(chunks: &[&str], usage: Option<(i64, i64)>, done: bool) -> String {
    let mut body = String::from(
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n",
    );
    for chunk in chunks {
        body.push_str(&format!(
            "data: {}\n\n",
            json!({"id": "c1", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": chunk}}]})
        ));
    }
    if let Some((prompt, completion)) = usage {
        body.push_str("data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n");
        body.push_str(&format!(
            "data: {}\n\n",
            json!({"id": "c1", "choices": [], "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}})
        ));
    }
    if done {
        body.push_str("data: [DONE]\n\n");
    }
    body
}

fn anthropic_stream(chunks: &[&str], input: i64, output: i64) -> String {
    let mut body = format!(
        "event: message_start\ndata: {}\n\nevent: content_block_start\ndata: {}\n\nevent: ping\ndata: {{\"type\": \"ping\"}}\n\n",
        json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "content": [], "model": "claude-test", "usage": {"input_tokens": input, "output_tokens": 1}}}),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
    );
    for chunk in chunks {
        body.push_str(&format!(
            "event: content_block_delta\ndata: {}\n\n",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": chunk}})
        ));
    }
    body.push_str(&format!(
        "event: content_block_stop\ndata: {{\"type\":\"content_block_stop\",\"index\":0}}\n\nevent: message_delta\ndata: {}\n\nevent: message_stop\ndata: {{\"type\":\"message_stop\"}}\n\n",
        json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": output}})
    ));
    body
}

pub(crate) fn sse(body: String) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header("content-type", "text/event-stream")
        .set_body_string(body)
}

fn provider(name: &str, kind: AiProviderKind, base_url: String) -> AiProviderSettings {
    AiProviderSettings {
        name: name.into(),
        kind,
        base_url,
        api_key: "sk-test".to_string().into(),
    }
}

fn model(name: &str, provider: &str, costs: (i64, i64), fallbacks: &[&str]) -> AiModelSettings {
    AiModelSettings {
        name: name.into(),
        provider: provider.into(),
        upstream: Some(format!("{name}-upstream")),
        input_cents_per_million: costs.0,
        output_cents_per_million: costs.1,
        fallbacks: fallbacks.iter().map(|f| f.to_string()).collect(),
    }
}

/// Events from `ws` until the bot's status goes back to idle.
async fn until_idle(ws: &mut Ws) -> Vec<Value> {
    let mut events = Vec::new();
    loop {
        let event = ws.event().await;
        let idle = event["type"] == "bot/status/updated" && event["data"]["status"] == "idle";
        events.push(event);
        if idle {
            return events;
        }
    }
}

fn streamed_text(events: &[Value]) -> String {
    events
        .iter()
        .filter(|e| e["type"] == "bot/response/stream" && e["data"]["__type"] == "stream")
        .map(|e| e["data"]["chunk"].as_str().unwrap())
        .collect()
}

fn end_of(events: &[Value]) -> Value {
    events
        .iter()
        .find(|e| e["type"] == "bot/response/stream" && e["data"]["__type"] != "stream")
        .expect("an end or error event")["data"]
        .clone()
}

async fn app_with_providers(configure: impl FnOnce(&mut Settings) + Send + 'static) -> TestApp {
    spawn_app_with(
        move |s| {
            with_system_key(s);
            configure(s);
        },
        None,
    )
    .await
}

/// One OpenAI-compatible provider `name` at `uri`, serving model `gpt-test` at 100/200 cents per
/// million input/output tokens.
pub(crate) fn one_openai(
    name: &'static str,
    uri: String,
) -> impl FnOnce(&mut Settings) + Send + 'static {
    move |s| {
        s.ai.providers = vec![provider(name, AiProviderKind::Openai, format!("{uri}/v1"))];
        s.ai.models = vec![model("gpt-test", name, (100, 200), &[])];
    }
}

/// Sam, a bot with these settings, their chat, and Sam's socket in its room.
struct Scene {
    sam: User,
    bot: String,
    chat: String,
    ws: Ws,
}

async fn scene(app: &TestApp, bot_settings: Value) -> Scene {
    let sam = user(app, "Sam").await;
    let bot = bot(app, "Bot", bot_settings).await;
    let chat = create_chat(app, &sam, &[&bot], json!({})).await;
    let mut ws = open(&app.address, &sam.token).await;
    ws.join("joinChatRoom", json!({"chatId": chat})).await;
    Scene { sam, bot, chat, ws }
}

impl Scene {
    /// Sam posts `text`; the room's events until the bot is idle again.
    async fn ask(&mut self, app: &TestApp, text: &str) -> Vec<Value> {
        let Reply { status, body, .. } = post(
            app,
            "/chatMessage",
            &self.sam,
            json!({"chatId": self.chat, "text": text}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        until_idle(&mut self.ws).await
    }
}

#[tokio::test]
async fn an_openai_compatible_answer_is_streamed_stored_and_charged_once() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(header("authorization", "Bearer sk-test"))
        .and(body_partial_json(json!({"model": "gpt-test-upstream", "stream": true,
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]})))
        .respond_with(sse(openai_stream(&["Hello", " world"], Some((12, 2)), true)))
        .expect(1)
        .mount(&server)
        .await;
    let app = app_with_providers(one_openai("fake-openai", server.uri())).await;
    let mut scene = scene(&app, json!({"model": "gpt-test", "persona": "Be brief."})).await;
    let sam_id = scene.sam.id.clone();
    scene
        .ws
        .join("joinUserRoom", json!({"userId": sam_id}))
        .await;
    let mut seen = scene.ask(&app, "hi").await;
    assert_eq!(streamed_text(&seen), "Hello world");
    assert_eq!(end_of(&seen)["finalMessage"]["status"], "Sent");
    // The user room's events are ordered among themselves, not with the chat room's: the
    // credits may come just after the bot's "idle".
    while !seen.iter().any(|e| e["type"] == "user/credits/updated") {
        seen.push(scene.ws.event().await);
    }
    // 12 input tokens × 100 + 2 output tokens × 200 (cents per million) = 1,600 credits.
    let credits = seen
        .iter()
        .find(|e| e["type"] == "user/credits/updated")
        .expect("credits event");
    assert_eq!(
        credits["data"]["balance"],
        (100_000_000 - 1_600).to_string()
    );
    let Reply { body: balance, .. } = get(&app, "/credits", Some(&scene.sam)).await;
    assert_eq!(
        balance["data"]["balance"],
        (100_000_000 - 1_600).to_string()
    );

    // The same job again (as after a crash between storing and completing): no second answer,
    // no second charge.
    sqlx::query("INSERT INTO jobs (id, queue, kind, payload) SELECT id + 1, queue, kind, payload FROM jobs WHERE kind = 'llm.completion'")
        .execute(&app.db.pool)
        .await
        .unwrap();
    wait_until(Duration::from_secs(10), "the repeated job", || async {
        let done: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM jobs WHERE kind = 'llm.completion' AND state = 'completed'",
        )
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
        done == 2
    })
    .await;
    let (answers, charges): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM chat_messages WHERE user_id = $1),
                (SELECT COUNT(*) FROM credit_ledger_entries WHERE kind = 'LlmAnswer')",
    )
    .bind(scene.bot.parse::<i64>().unwrap())
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!((answers, charges), (1, 1));
}

/// An OpenAI-compatible server that streams one chunk every `every`, for cancellation.
pub(crate) async fn slow_openai(chunks: usize, every: Duration) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                // Headers, then the body by its length.
                loop {
                    let n = socket.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&request);
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text[..end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if request.len() >= end + 4 + length {
                            break;
                        }
                    }
                }
                let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                for i in 0..chunks {
                    let event = format!(
                        "data: {}\n\n",
                        json!({"choices": [{"index": 0, "delta": {"content": format!("w{i} ")}}]})
                    );
                    let chunk = format!("{:x}\r\n{event}\r\n", event.len());
                    if socket.write_all(chunk.as_bytes()).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(every).await;
                }
                let event = "data: [DONE]\n\n";
                let _ = socket
                    .write_all(format!("{:x}\r\n{event}\r\n0\r\n\r\n", event.len()).as_bytes())
                    .await;
            });
        }
    });
    format!("http://{address}/v1")
}

#[tokio::test]
async fn cancellation_from_another_node_stops_the_stream_within_a_second() {
    let base = slow_openai(50, Duration::from_millis(200)).await;
    let app = app_with_providers(move |s| {
        s.ai.providers = vec![provider("slow", AiProviderKind::Openai, base)];
        s.ai.models = vec![model("slow-model", "slow", (100, 200), &[])];
    })
    .await;
    // Node B runs no workers: the answer streams from node A, the client is on node B.
    let b = SecondNode::start_with(&app, 1, |s| s.jobs.enabled = false).await;
    let sam = user(&app, "Sam").await;
    let slow = bot(&app, "Slow", json!({"model": "slow-model"})).await;
    let chat = create_chat(&app, &sam, &[&slow], json!({})).await;
    let mut ws = open(&b.address, &sam.token).await;
    ws.join("joinChatRoom", json!({"chatId": chat})).await;
    post(
        &app,
        "/chatMessage",
        &sam,
        json!({"chatId": chat, "text": "go on and on"}),
    )
    .await;
    // Wait for the answer to start.
    loop {
        let event = ws.event().await;
        if event["type"] == "bot/response/stream" && event["data"]["__type"] == "stream" {
            break;
        }
    }
    let asked = Instant::now();
    let ack = ws
        .command("requestCancellation", json!({"chatId": chat}))
        .await;
    assert_eq!(ack["success"], true);
    let end = loop {
        let event = ws.event().await;
        if event["type"] == "bot/response/stream" && event["data"]["__type"] != "stream" {
            break event["data"].clone();
        }
    };
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "{:?}",
        asked.elapsed()
    );
    assert_eq!(end["__type"], "end");
    assert_eq!(end["finalMessage"]["status"], "Cancelled");
    let text = end["finalMessage"]["text"].as_str().unwrap();
    assert!(text.starts_with("w0 ") && text.len() < 50 * 4, "{text}");
    let stored: String = sqlx::query_scalar("SELECT status FROM chat_messages WHERE user_id = $1")
        .bind(slow.parse::<i64>().unwrap())
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(stored, "Cancelled");
    drop(ws);
    b.stop().await;
}

#[tokio::test]
async fn without_credits_an_answer_is_refused_up_front() {
    let app = app_with_providers(|s| s.ai.starting_credits = 0).await;
    let sam = user(&app, "Sam").await;
    let echo = bot(&app, "Echo", json!({})).await;
    let chat = create_chat(&app, &sam, &[&echo], json!({})).await;
    let Reply { status, body, .. } = post(
        &app,
        "/chatMessage",
        &sam,
        json!({"chatId": chat, "text": "hi"}),
    )
    .await;
    assert_eq!(status, 402, "{body}");
    assert_eq!(body["errors"][0]["code"], "InsufficientCredits");
    let (messages, jobs): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM chat_messages), (SELECT COUNT(*) FROM jobs WHERE kind = 'llm.completion')",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!((messages, jobs), (0, 0));
    // A chat without bots costs nothing.
    let plain = create_chat(&app, &sam, &[], json!({})).await;
    assert_eq!(
        post(
            &app,
            "/chatMessage",
            &sam,
            json!({"chatId": plain, "text": "hi"})
        )
        .await
        .status,
        200
    );
}

/// Credits held, charged and recorded for `chat`: (balance, holds left, bot answers stored).
async fn money(app: &TestApp, sam: &str, chat: &str) -> (i64, i64, i64) {
    let balance: i64 =
        sqlx::query_scalar("SELECT balance FROM credit_accounts WHERE user_id = $1::BIGINT")
            .bind(sam)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    let holds: i64 = sqlx::query_scalar("SELECT count(*) FROM credit_holds")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    let answers: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM chat_messages m JOIN users u ON u.id = m.user_id
          WHERE m.chat_id = $1::BIGINT AND u.is_bot",
    )
    .bind(chat)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    (balance, holds, answers)
}

mod charges;
mod echo;
mod providers;
