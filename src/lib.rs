//! The Vrooli server (library half; `main.rs` is a thin CLI over it).
//!
//! How a request flows: `startup::Application` builds the shared [`state::AppState`] (PostgreSQL
//! pool, optional Redis, Snowflake ids, health, metrics) and an actix-web server. Each request
//! passes TracingLogger (span + request id) → [`http::edge`] (error envelope, `X-Request-Id`,
//! metrics) → CORS → a route in [`http::routes`], whose handler calls a service and answers
//! `{"data", "version"}` or an [`http::ApiError`].
//!
//! The modules, by floor. Arrows point down or along a floor, never in a circle:
//! `scripts/module_arrows.py` fails on a cycle between top-level modules or between the files of
//! one module.
//!
//! - Ground floor (types, settings, storage, plumbing; no business rules):
//!   [`config`] (settings, layering, validation), [`cli`] (the command line), [`ids`] (Snowflake,
//!   typed ids, publicId), [`domain`] (input types parsed at the edge), [`egress`] (calls to
//!   addresses users choose: resolved once, checked, pinned), [`db`] (pool, migrations,
//!   worker id lease, column reads), [`redis_client`] (optional Redis), [`retry`] (start-up
//!   backoff), [`telemetry`] (logs), [`metrics`] (Prometheus registry), [`jobs`] (the durable job
//!   queue, workers, scheduler; its hourly clean-up also releases [`credits`] holds), [`outbox`]
//!   (room events committed with their writes, then published), [`ratelimit`] (token buckets).
//! - Services (each owns its SQL):
//!   [`auth`] (accounts, passwords, session tokens, API keys), [`credits`] (accounts and the
//!   ledger), [`ai`] (model providers and their registry; no SQL), [`chat`] (chats, messages, the
//!   bots' answers), [`notifications`] (notices, push), [`email`] and [`sms`] (delivery jobs),
//!   [`people`] (public profiles), [`profile`] (one's own profile), [`teams`] (teams, members,
//!   invites), [`routines`] (routines and their graphs), [`runs`] (runs and their executor),
//!   [`sandbox`] (JavaScript of `code` steps, in a child process), [`files`] (uploads, images,
//!   storage), [`billing`] (Stripe), [`exports`] and [`imports`] (a user's data archive),
//!   [`health`] (the checks behind `/healthcheck`).
//! - Transports: [`http`] (routes, middleware, extractors, errors), [`mcp`] (the MCP server's
//!   tools), [`realtime`] (the server's side of the actor system: the hub, who may join a room).
//! - Composition: [`state`] (what handlers share), [`startup`] (the start-up sequence, the seed,
//!   shutdown).
//!
//! The actor system lives in the `vrooli-actors` crate, which knows nothing of HTTP or SQL.

pub mod ai;
pub mod auth;
pub mod billing;
pub mod chat;
pub mod cli;
pub mod config;
pub mod credits;
pub mod db;
pub mod domain;
pub mod egress;
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
