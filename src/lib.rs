//! The Vrooli server (library half; `main.rs` is a thin CLI over it).
//!
//! How a request flows: `startup::Application` builds the shared [`state::AppState`] (PostgreSQL
//! pool, optional Redis, Snowflake ids, health, metrics) and an actix-web server. Each request
//! passes TracingLogger (span + request id) → [`http::edge`] (error envelope, `X-Request-Id`,
//! metrics) → CORS → a route in [`http::routes`], whose handler calls a service and answers
//! `{"data", "version"}` or an [`http::ApiError`].
//!
//! Modules: [`config`] (settings, validation), [`cli`], [`telemetry`] (logs), [`ids`] (Snowflake,
//! typed ids, publicId), [`domain`] (parsed input types), [`db`] (pool, migrations, seed),
//! [`redis_client`], [`health`], [`metrics`], [`auth`], [`retry`]. The actor system lives in the
//! `vrooli-actors` crate, which knows nothing of HTTP or SQL.

pub mod ai;
pub mod auth;
pub mod billing;
pub mod chat;
pub mod cli;
pub mod config;
pub mod credits;
pub mod db;
pub mod domain;
pub mod email;
pub mod errors;
pub mod exports;
pub mod files;
pub mod health;
pub mod http;
pub mod ids;
pub mod imports;
pub mod jobs;
pub mod mcp;
pub mod metrics;
pub mod notifications;
pub mod outbox;
pub mod people;
pub mod profile;
pub mod ratelimit;
pub mod realtime;
pub mod redis_client;
pub mod retry;
pub mod routines;
pub mod runs;
pub mod sandbox;
pub mod sms;
pub mod startup;
pub mod state;
pub mod teams;
pub mod telemetry;
