//! The model registry: models and providers as configured (plus the built-in echo), each
//! provider's standing (cooling down after a failure, disabled after a rejected key), prices,
//! and `stream`, which walks a model's fallback chain while nothing was said.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::provider::{Prompt, Provider, ProviderError, Sink, Usage};
use super::{anthropic, chunks, echo, openai};
use crate::config::{AiProviderKind, AiSettings};

/// A model as configured (or the built-in echo).
#[derive(Debug, Clone)]
pub struct Model {
    pub name: String,
    pub provider: String,
    pub upstream: String,
    pub input_cents_per_million: i64,
    pub output_cents_per_million: i64,
    pub fallbacks: Vec<String>,
}

impl Model {
    /// Credits for this usage: tokens × cents per million tokens × 10⁶ credits per cent ÷ 10⁶.
    pub fn cost(&self, usage: Usage) -> i64 {
        usage.input_tokens * self.input_cents_per_million
            + usage.output_tokens * self.output_cents_per_million
    }
}

#[derive(Debug, Clone, Copy)]
enum Standing {
    CoolingUntil(Instant),
    Disabled,
}

/// The answer of a completed stream.
#[derive(Debug, Clone)]
pub struct Completion {
    pub model: Model,
    pub usage: Usage,
}

#[derive(Debug, thiserror::Error)]
pub enum AiError {
    #[error("no such model: {0}")]
    UnknownModel(String),
    #[error("every provider for this model is cooling down or disabled")]
    NoProviderAvailable,
    /// Failed after part of the answer was sent.
    #[error("the answer broke off: {error}")]
    BrokeOff { model: Model, error: ProviderError },
    #[error("cancelled")]
    Cancelled { model: Model },
    #[error("{0}")]
    Failed(ProviderError),
}

pub struct AiRegistry {
    providers: HashMap<String, Arc<dyn Provider>>,
    models: HashMap<String, Model>,
    standing: Mutex<HashMap<String, Standing>>,
    cooldown: Duration,
    pub default_model: String,
    stream_interval: Duration,
}

impl AiRegistry {
    pub fn from_settings(settings: &AiSettings) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(settings.request_timeout_secs))
            .build()
            .expect("HTTP client");
        let mut providers: HashMap<String, Arc<dyn Provider>> = HashMap::new();
        providers.insert("echo".into(), Arc::new(echo::Echo));
        for p in &settings.providers {
            let provider: Arc<dyn Provider> = match p.kind {
                AiProviderKind::Openai => Arc::new(openai::OpenAi::new(
                    client.clone(),
                    &p.base_url,
                    p.api_key.clone(),
                )),
                AiProviderKind::Anthropic => Arc::new(anthropic::Anthropic::new(
                    client.clone(),
                    &p.base_url,
                    p.api_key.clone(),
                )),
            };
            providers.insert(p.name.clone(), provider);
        }
        let mut models = HashMap::new();
        models.insert(
            "echo".to_owned(),
            Model {
                name: "echo".into(),
                provider: "echo".into(),
                upstream: "echo".into(),
                input_cents_per_million: 0,
                output_cents_per_million: 0,
                fallbacks: vec![],
            },
        );
        for m in &settings.models {
            models.insert(
                m.name.clone(),
                Model {
                    name: m.name.clone(),
                    provider: m.provider.clone(),
                    upstream: m.upstream.clone().unwrap_or_else(|| m.name.clone()),
                    input_cents_per_million: m.input_cents_per_million,
                    output_cents_per_million: m.output_cents_per_million,
                    fallbacks: m.fallbacks.clone(),
                },
            );
        }
        Self {
            providers,
            models,
            standing: Mutex::new(HashMap::new()),
            cooldown: Duration::from_secs(settings.cooldown_secs),
            default_model: settings.default_model.clone(),
            stream_interval: Duration::from_millis(settings.stream_interval_ms),
        }
    }

    /// The chunks of an answer streamed into `tx`'s channel, gathered for publishing.
    pub fn chunks(&self, rx: mpsc::Receiver<String>) -> chunks::Chunks {
        chunks::Chunks::new(rx, self.stream_interval)
    }

    /// Each configured provider (echo aside) and its standing: `available`, `coolingDown` (with
    /// seconds left) or `disabled`.
    pub fn standings(&self) -> Vec<(String, &'static str, u64)> {
        let standing = self.standing.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let mut list: Vec<_> = self
            .providers
            .keys()
            .filter(|name| name.as_str() != "echo")
            .map(|name| match standing.get(name) {
                Some(Standing::Disabled) => (name.clone(), "disabled", 0),
                Some(Standing::CoolingUntil(until)) if *until > now => {
                    (name.clone(), "coolingDown", (*until - now).as_secs())
                }
                _ => (name.clone(), "available", 0),
            })
            .collect();
        list.sort();
        list
    }

    pub fn model(&self, name: &str) -> Option<&Model> {
        self.models.get(name)
    }

    /// The most `usage` can cost on `model` or any model it may fall back to (what an answer
    /// holds from the payer's balance while it is queued). An unknown model costs nothing: its
    /// answer fails before anything is said.
    pub fn worst_case_cost(&self, model: &str, usage: Usage) -> i64 {
        let Some(first) = self.models.get(model) else {
            return 0;
        };
        std::iter::once(first)
            .chain(first.fallbacks.iter().filter_map(|f| self.models.get(f)))
            .map(|m| m.cost(usage))
            .max()
            .unwrap_or(0)
    }

    fn available(&self, provider: &str) -> bool {
        let mut standing = self.standing.lock().unwrap_or_else(|p| p.into_inner());
        match standing.get(provider).copied() {
            None => true,
            Some(Standing::Disabled) => false,
            Some(Standing::CoolingUntil(until)) if until > Instant::now() => false,
            Some(Standing::CoolingUntil(_)) => {
                standing.remove(provider);
                true
            }
        }
    }

    fn penalize(&self, provider: &str, error: &ProviderError) {
        let standing = match error {
            ProviderError::Auth => Standing::Disabled,
            ProviderError::Cancelled => return,
            _ => Standing::CoolingUntil(Instant::now() + self.cooldown),
        };
        tracing::warn!(provider, %error, ?standing, "AI provider failed");
        self.standing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(provider.to_owned(), standing);
    }

    /// Streams an answer from `model`, falling back along its chain while nothing was said.
    pub async fn stream(
        &self,
        model: &str,
        prompt: &Prompt,
        tx: mpsc::Sender<String>,
        cancel: &CancellationToken,
    ) -> Result<Completion, AiError> {
        let first = self
            .models
            .get(model)
            .ok_or_else(|| AiError::UnknownModel(model.to_owned()))?;
        let chain: Vec<&Model> = std::iter::once(first)
            .chain(first.fallbacks.iter().filter_map(|f| self.models.get(f)))
            .collect();
        let mut last_error = None;
        for model in chain {
            if !self.available(&model.provider) {
                continue;
            }
            let Some(provider) = self.providers.get(&model.provider) else {
                continue;
            };
            let mut sink = Sink::new(tx.clone());
            match provider
                .stream(&model.upstream, prompt, &mut sink, cancel)
                .await
            {
                Ok(usage) => {
                    return Ok(Completion {
                        model: model.clone(),
                        usage,
                    });
                }
                Err(ProviderError::Cancelled) => {
                    return Err(AiError::Cancelled {
                        model: model.clone(),
                    });
                }
                Err(error) if sink.emitted() => {
                    self.penalize(&model.provider, &error);
                    return Err(AiError::BrokeOff {
                        model: model.clone(),
                        error,
                    });
                }
                Err(error) => {
                    self.penalize(&model.provider, &error);
                    last_error = Some(error);
                }
            }
        }
        Err(last_error.map_or(AiError::NoProviderAvailable, AiError::Failed))
    }
}
