//! Anthropic's messages API (`POST {base_url}/v1/messages` with `stream: true`). Server-sent
//! events: `message_start` (input tokens), `content_block_delta` (`text_delta` pieces),
//! `message_delta` (output tokens), `message_stop`; `error` (e.g. `overloaded_error`) may arrive
//! midway; `ping` is ignored.

use std::ops::ControlFlow;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::provider::{BoxFut, Prompt, Provider, ProviderError, Role, Sink, Usage};
use super::wire::{for_each_event, send_streaming};

pub const API_VERSION: &str = "2023-06-01";

pub struct Anthropic {
    client: reqwest::Client,
    url: String,
    api_key: SecretString,
}

impl Anthropic {
    pub fn new(client: reqwest::Client, base_url: &str, api_key: SecretString) -> Self {
        Self {
            client,
            url: format!("{}/v1/messages", base_url.trim_end_matches('/')),
            api_key,
        }
    }
}

fn body(model: &str, prompt: &Prompt) -> Value {
    let messages: Vec<Value> = prompt
        .turns
        .iter()
        .map(|(role, text)| {
            let role = match role {
                Role::User => "user",
                Role::Assistant => "assistant",
            };
            json!({"role": role, "content": text})
        })
        .collect();
    let mut body = json!({
        "model": model,
        "max_tokens": prompt.max_tokens,
        "messages": messages,
        "stream": true,
    });
    if let Some(system) = &prompt.system {
        body["system"] = system.clone().into();
    }
    body
}

fn stream_error(data: &Value) -> ProviderError {
    match data["error"]["type"].as_str() {
        Some("overloaded_error") => ProviderError::Overloaded,
        Some("rate_limit_error") => ProviderError::RateLimited,
        Some("authentication_error") | Some("permission_error") => ProviderError::Auth,
        _ => ProviderError::Api(data["error"].to_string()),
    }
}

impl Provider for Anthropic {
    fn stream<'a>(
        &'a self,
        model: &'a str,
        prompt: &'a Prompt,
        sink: &'a mut Sink,
        cancel: &'a CancellationToken,
    ) -> BoxFut<'a, Result<Usage, ProviderError>> {
        Box::pin(async move {
            let request = self
                .client
                .post(&self.url)
                .header("x-api-key", self.api_key.expose_secret())
                .header("anthropic-version", API_VERSION)
                .json(&body(model, prompt));
            let response = send_streaming(request, cancel).await?;
            let mut usage = Usage::default();
            let finished = for_each_event(
                response,
                cancel,
                |event| {
                    let data: Value = serde_json::from_str(&event.data).unwrap_or(Value::Null);
                    match event.event.as_deref().or(data["type"].as_str()) {
                        Some("message_start") => {
                            let u = &data["message"]["usage"];
                            usage.input_tokens = u["input_tokens"].as_i64().unwrap_or(0);
                            usage.output_tokens = u["output_tokens"].as_i64().unwrap_or(0);
                            ControlFlow::Continue(None)
                        }
                        Some("content_block_delta") => {
                            ControlFlow::Continue(data["delta"]["text"].as_str().map(str::to_owned))
                        }
                        Some("message_delta") => {
                            if let Some(out) = data["usage"]["output_tokens"].as_i64() {
                                usage.output_tokens = out;
                            }
                            ControlFlow::Continue(None)
                        }
                        Some("message_stop") => ControlFlow::Break(Ok(())),
                        Some("error") => ControlFlow::Break(Err(stream_error(&data))),
                        _ => ControlFlow::Continue(None),
                    }
                },
                sink,
            )
            .await?;
            if !finished {
                return Err(ProviderError::Network("the stream ended early".into()));
            }
            Ok(usage)
        })
    }
}
