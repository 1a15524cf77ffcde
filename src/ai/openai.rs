//! OpenAI-compatible chat completions (`POST {base_url}/chat/completions` with `stream: true`):
//! OpenAI, OpenRouter, Ollama, vLLM, llama.cpp's server. The stream is server-sent events whose
//! `data` is a chunk (`choices[0].delta.content`), then one with `usage` (asked for with
//! `stream_options.include_usage`), then `[DONE]`.

use std::ops::ControlFlow;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::provider::{BoxFut, Prompt, Provider, ProviderError, Role, Sink, Usage};
use super::wire::{for_each_event, send_streaming};

pub struct OpenAi {
    client: reqwest::Client,
    url: String,
    api_key: SecretString,
}

impl OpenAi {
    pub fn new(client: reqwest::Client, base_url: &str, api_key: SecretString) -> Self {
        Self {
            client,
            url: format!("{}/chat/completions", base_url.trim_end_matches('/')),
            api_key,
        }
    }
}

fn body(model: &str, prompt: &Prompt) -> Value {
    let mut messages = Vec::new();
    if let Some(system) = &prompt.system {
        messages.push(json!({"role": "system", "content": system}));
    }
    for (role, text) in &prompt.turns {
        let role = match role {
            Role::User => "user",
            Role::Assistant => "assistant",
        };
        messages.push(json!({"role": role, "content": text}));
    }
    json!({
        "model": model,
        "messages": messages,
        "max_tokens": prompt.max_tokens,
        "stream": true,
        "stream_options": {"include_usage": true},
    })
}

impl Provider for OpenAi {
    fn stream<'a>(
        &'a self,
        model: &'a str,
        prompt: &'a Prompt,
        sink: &'a mut Sink,
        cancel: &'a CancellationToken,
    ) -> BoxFut<'a, Result<Usage, ProviderError>> {
        Box::pin(async move {
            let mut request = self.client.post(&self.url).json(&body(model, prompt));
            let key = self.api_key.expose_secret();
            if !key.is_empty() {
                request = request.bearer_auth(key);
            }
            let response = send_streaming(request, cancel).await?;
            let mut usage = Usage::default();
            let finished = for_each_event(
                response,
                cancel,
                |event| {
                    if event.data.trim() == "[DONE]" {
                        return ControlFlow::Break(Ok(()));
                    }
                    let Ok(chunk) = serde_json::from_str::<Value>(&event.data) else {
                        return ControlFlow::Break(Err(ProviderError::Api(
                            "unreadable stream chunk".into(),
                        )));
                    };
                    if let Some(error) = chunk.get("error") {
                        return ControlFlow::Break(Err(ProviderError::Api(error.to_string())));
                    }
                    if let Some(u) = chunk.get("usage").filter(|u| !u.is_null()) {
                        usage.input_tokens = u["prompt_tokens"].as_i64().unwrap_or(0);
                        usage.output_tokens = u["completion_tokens"].as_i64().unwrap_or(0);
                    }
                    let text = chunk["choices"][0]["delta"]["content"]
                        .as_str()
                        .map(str::to_owned);
                    ControlFlow::Continue(text)
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
