//! HTTP: the route table, the handlers, the helpers they share, and the edge middleware.
//! Handlers are thin: extract, call one service, answer `{"data": …, "version": "v2"}`
//! (`reply::ok`) or an `ApiError` (`error.rs`).
//!
//! Arrows point one way:
//!
//! ```text
//! startup::http ─▶ routes (the table, `not_found`) ─▶ handler modules, one per capability
//!   (admin, api_keys, auth, billing, chat, credits, docs, exports, files, health, imports, mcp,
//!    metrics, notifications, people, profile, push, routines, runs, teams, ws)
//!   ─▶ helpers: reply (success envelope) · error (failures; codes from `crate::errors`) · extract (extractor
//!      settings) · paging · path (typed ids) · bodies · auth::session/readers (who calls) ·
//!      system_key · openapi (the document)
//! startup::http ─▶ middleware: request_span, edge, auth::session, origin, rate_limit, input,
//!                  upgrade (WebSockets out of actix-http)
//! ```
//!
//! This file only declares the modules; `ApiError` and `Code` are re-exported for
//! code outside `http` (and the tests).

mod admin;
mod api_keys;
pub mod auth;
mod billing;
pub mod bodies;
mod chat;
mod credits;
pub mod docs;
pub mod edge;
pub mod error;
mod exports;
pub mod extract;
mod files;
mod health;
mod imports;
pub mod input;
mod mcp;
mod metrics;
mod notifications;
pub mod openapi;
pub mod origin;
pub mod paging;
pub mod path;
mod people;
mod profile;
mod push;
pub mod rate_limit;
pub mod reply;
pub mod request_span;
pub mod routes;
mod routines;
mod runs;
pub mod system_key;
pub mod teams;
pub mod upgrade;
pub mod ws;

pub use error::{ApiError, Code};
