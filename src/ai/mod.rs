//! AI providers and the model registry.
//!
//! ```text
//! chat::answer (the llm-completion job) ─▶ AiRegistry::stream(model) ─▶ model, then its fallbacks, skipping providers
//!                        in cooldown or disabled ─▶ Provider::stream ─▶ chunks ─▶ Sink ─▶ the job
//! the job ─▶ AiRegistry::chunks ─▶ chunks gathered per `ai.stream_interval_ms` ─▶ published
//! ```
//!
//! Providers: `openai` (any OpenAI-compatible chat completions API: OpenAI, OpenRouter, Ollama,
//! vLLM, llama.cpp), `anthropic` (the messages API), and the built-in `echo`. Both remote
//! providers are read from their real streaming wire formats (server-sent events, `sse.rs`).
//! A provider that fails before saying anything sends the request to the next model in the chain
//! and goes to cooldown (`ai.cooldown_secs`) — or is disabled when it rejects its key. One that
//! fails midway cannot be retried elsewhere without repeating itself: that answer fails, keeping
//! what was said.
//!
//! This module knows providers and prices only: no SQL, nothing of chats (the job that answers
//! in a chat is `chat::answer`).
//!
//! Files: `provider.rs` (what a provider is asked, answers and writes into), `registry.rs` (the
//! configured models and providers, their standing, and the fallback chain), `wire.rs` (the HTTP
//! and server-sent-event plumbing the remote providers share).

pub mod anthropic;
pub mod chunks;
pub mod echo;
pub mod openai;
mod provider;
mod registry;
pub mod sse;
mod wire;

pub use provider::{BoxFut, Prompt, Provider, ProviderError, Role, Sink, Usage};
pub use registry::{AiError, AiRegistry, Completion, Model};
pub use wire::{for_each_event, send_streaming, status_error};
