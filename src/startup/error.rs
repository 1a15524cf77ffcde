//! Why start-up failed: one variant per step that can fail. Below the steps (`mod.rs`, `http.rs`,
//! `jobs.rs`, `runs.rs`), which all return it.

use crate::auth::keys::KeyError;
use crate::db::DbError;
use crate::db::node_lease::LeaseError;
use crate::ids::snowflake::WorkerIdOutOfRange;
use crate::redis_client::RedisConnectError;

use super::seed;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("node.worker_id: {0}")]
    WorkerId(#[from] WorkerIdOutOfRange),
    #[error(transparent)]
    Database(#[from] DbError),
    #[error(transparent)]
    Lease(#[from] LeaseError),
    #[error("seeding failed: {0}")]
    Seed(#[from] seed::SeedError),
    #[error(transparent)]
    Redis(#[from] RedisConnectError),
    #[error("auth keys: {0}")]
    Keys(#[from] KeyError),
    #[error("actor system: {0}")]
    Actors(#[from] vrooli_actors::BrokerError),
    #[error("could not read the database clock: {0}")]
    Clock(sqlx::Error),
    #[error("email or SMS delivery could not be set up: {0}")]
    Delivery(std::io::Error),
    #[error("could not listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
}
