//! API integration tests: one binary (one link) for every test of the running server.
//! Each test starts the real server on port 0 with its own database (cloned from a template
//! migrated once per run) and its own Redis key prefix; see `helpers`.

mod auth;
mod balancer;
mod billing;
mod binary;
mod chat;
mod cluster_script;
mod columns;
mod delivery;
mod errors;
mod exports;
mod files;
mod fuzz;
mod health;
mod helpers;
mod jobs;
mod mcp;
mod metrics;
mod openapi;
mod outbox;
mod pool;
mod profile;
mod push;
mod rate_limit;
mod readme;
mod routines;
mod runs;
mod seed;
mod shutdown;
mod snowflake;
mod startup;
mod teams;
mod users;
mod ws;
