//! The actor system of the Vrooli server (`vrooli-actors`).
//!
//! This crate will hold the actors, their typed messages, the registries and the `Broker`
//! trait (see `docs/ARCHITECTURE.md`): `session/` (one actor per WebSocket connection),
//! `room/` (node-local fan-out per chat, run or user room), `run/` (one actor per run in
//! progress), `registry/`, and `bridge/` (the Redis and in-process brokers). It depends on no
//! HTTP, SQL or Redis client: what it needs from outside comes in as traits or `Recipient`s.
//!
//! Today it is empty on purpose: the foundation issue creates the workspace member so the
//! dependency direction (`vrooli` → `vrooli-actors`, never back) is fixed from the first commit;
//! the actor-core issue fills it.
