//! API keys: `vrk_<8-character prefix>_<24-character secret>` (0-9a-z), shown once at creation
//! and stored only as a SHA-256 hash (the secret has ~124 bits of entropy, so a fast hash is
//! enough; nothing is gained by argon2 here). A
//! lookup is cached for five minutes — in Redis when configured, so every node sees a disable at
//! once. A key authenticates only while its owner is not locked or deleted.
//!
//! A change (update, disable, delete, the owner locked) replaces the cache entry with a
//! tombstone for the cache's lifetime, and a lookup caches only where nothing is (`SET NX`): a
//! lookup that read the row just before a disable committed cannot put the enabled key back.
//! While a tombstone stands, lookups go to PostgreSQL.
//!
//! A **team's key** (`team_id`) is made by one of its admins (`created_by`) and acts as that
//! admin, within the team only (`http::auth::session::RequireTeam` names the few routes that
//! take one; every other route refuses it): it authenticates only while its maker is still an
//! admin of the team, and what it spends comes from the team's credits. A change of the maker's
//! standing drops the team's keys from the cache ([`ApiKeys::forget_team`]).
//!
//! Files: `types.rs` (permissions, what a key is and may become, the errors), `crud.rs` (create,
//! list, change, delete, and `authenticate`, which reads through the cache) and `cache.rs` (the
//! lookup cache, its tombstones and the calls that drop keys from it). This file holds the
//! service's state.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use sqlx::PgPool;

use crate::redis_client::RedisClient;

mod cache;
mod crud;
mod types;

pub use types::{
    ApiKeyAuth, ApiKeyRow, CreateKeyError, KeyChanges, MissingPermission, NewApiKey, Permission,
};

pub const KEY_PREFIX: &str = "vrk_";

pub struct ApiKeys {
    pool: PgPool,
    redis: Option<RedisClient>,
    /// Without Redis: the cache, `None` being a tombstone.
    local: Mutex<HashMap<String, (Instant, Option<ApiKeyAuth>)>>,
    max_per_user: i64,
}

impl ApiKeys {
    pub fn new(pool: PgPool, redis: Option<RedisClient>, max_per_user: i64) -> Self {
        Self {
            pool,
            redis,
            local: Mutex::new(HashMap::new()),
            max_per_user,
        }
    }
}
