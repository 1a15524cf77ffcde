//! Credits: one account per user (or team), a ledger whose unique idempotency key makes every
//! grant and charge happen exactly once, however often a job is retried. 1 US cent = 1,000,000
//! credits. An account is opened on first use: a user's with `ai.starting_credits`, a team's
//! with `ai.team_starting_credits`. What happens in a team (a bot's answer in a team chat, a
//! team run) is paid by the team's account; everything else by the person.
//!
//! A bot answer is paid in two steps, so simultaneous posts cannot overdraw an account:
//!
//! ```text
//! queue the answer (post / regenerate, in its transaction)
//!   ─▶ hold_in: UPDATE balance − worst case WHERE balance >= worst case (else 402)
//!             + API key: credits_used + worst case, checked against its limits in the same UPDATE
//!             + a credit_holds row named by the answer's key
//! the answer ends (the job, in the answer's transaction)
//!   ─▶ settle_in: delete the hold, give back hold − real cost, ledger entry of the real cost,
//!                 the key's spending corrected by the same difference
//! the answer never runs (job dead, failed for good) ─▶ release: the whole hold back
//! ```
//!
//! The balance never goes below zero: a CHECK constraint, and the charge is capped at what the
//! hold and the balance can cover.
//!
//! Files: `payer.rs` (whose account pays), `account.rs` (opening an account, balance checks,
//! grants), `holds.rs` (reserving the worst case and giving holds back), `settle.rs` (charging
//! the real cost against a hold). This file holds the service's state and its error; the
//! children add methods to [`Credits`].

use std::sync::Arc;

use sqlx::PgPool;

use crate::ids::Snowflake;

mod account;
mod holds;
mod payer;
mod settle;

pub use holds::release_orphaned_holds;
pub use payer::Payer;

/// Why credits could not be spent.
#[derive(Debug, thiserror::Error)]
pub enum CreditError {
    #[error("insufficient credits: {balance} held, {needed} needed")]
    Insufficient { balance: i64, needed: i64 },
    #[error("the API key reached its credit limit ({used} of {limit})")]
    KeyLimitReached { used: i64, limit: i64 },
    #[error("no such API key")]
    UnknownKey,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

#[derive(Clone)]
pub struct Credits {
    pool: PgPool,
    ids: Arc<Snowflake>,
    starting: i64,
    team_starting: i64,
    min_balance: i64,
}

impl Credits {
    pub fn new(
        pool: PgPool,
        ids: Arc<Snowflake>,
        starting: i64,
        team_starting: i64,
        min_balance: i64,
    ) -> Self {
        Self {
            pool,
            ids,
            starting,
            team_starting,
            min_balance,
        }
    }
}
