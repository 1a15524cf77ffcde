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

use std::sync::Arc;

use sqlx::{PgConnection, PgPool};

use crate::ids::{ApiKeyId, Snowflake, TeamId, UserId};

/// Whose account pays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payer {
    User(UserId),
    Team(TeamId),
}

impl Payer {
    /// The team when there is one, else the person.
    pub fn of(user: UserId, team: Option<TeamId>) -> Self {
        team.map_or(Payer::User(user), Payer::Team)
    }
}

impl std::fmt::Display for Payer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Payer::User(user) => write!(f, "{user}"),
            Payer::Team(team) => write!(f, "team:{team}"),
        }
    }
}

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

    /// The payer's account id and balance, opening the account (with the starting grant) on
    /// first use.
    pub async fn account_in(
        &self,
        conn: &mut PgConnection,
        payer: Payer,
    ) -> Result<(i64, i64), sqlx::Error> {
        // The column is a constant chosen here, never input.
        let (column, owner, starting) = match payer {
            Payer::User(user) => ("user_id", user.0, self.starting),
            Payer::Team(team) => ("team_id", team.0, self.team_starting),
        };
        let opened: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "INSERT INTO credit_accounts (id, {column}, balance) VALUES ($1, $2, $3)
             ON CONFLICT ({column}) DO NOTHING RETURNING id"
        )))
        .bind(self.ids.next_id())
        .bind(owner)
        .bind(starting)
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(account) = opened {
            sqlx::query(
                "INSERT INTO credit_ledger_entries (id, account_id, amount, kind, idempotency_key)
                 VALUES ($1, $2, $3, 'StartingGrant', $4) ON CONFLICT DO NOTHING",
            )
            .bind(self.ids.next_id())
            .bind(account)
            .bind(starting)
            .bind(format!("starting:{payer}"))
            .execute(&mut *conn)
            .await?;
        }
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT id, balance FROM credit_accounts WHERE {column} = $1"
        )))
        .bind(owner)
        .fetch_one(&mut *conn)
        .await
    }

    pub async fn balance(&self, payer: Payer) -> Result<i64, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let (_, balance) = self.account_in(&mut tx, payer).await?;
        tx.commit().await?;
        Ok(balance)
    }

    /// Refuses up front when the payer cannot cover the configured minimum.
    pub async fn ensure_can_pay(&self, payer: Payer) -> Result<(), CreditError> {
        let balance = self.balance(payer).await?;
        if balance < self.min_balance {
            return Err(CreditError::Insufficient {
                balance,
                needed: self.min_balance,
            });
        }
        Ok(())
    }

    /// An API key spends its owner's credits within its own limits: never past `limit_hard`,
    /// and not past `limit_soft` either when `stop_at_limit` is set (otherwise the soft limit
    /// only warns, in the log).
    pub async fn ensure_key_can_spend(&self, key_id: ApiKeyId) -> Result<(), CreditError> {
        let row: Option<(i64, Option<i64>, i64, bool)> = sqlx::query_as(
            "SELECT credits_used, limit_soft, limit_hard, stop_at_limit FROM api_keys WHERE id = $1",
        )
        .bind(key_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some((used, soft, hard, stop_at_limit)) = row else {
            return Err(CreditError::UnknownKey);
        };
        let past_soft = soft.is_some_and(|soft| used >= soft);
        if used >= hard || (stop_at_limit && past_soft) {
            return Err(CreditError::KeyLimitReached {
                used,
                limit: if used >= hard {
                    hard
                } else {
                    soft.unwrap_or(hard)
                },
            });
        }
        if past_soft {
            tracing::warn!(%key_id, used, "API key past its soft credit limit");
        }
        Ok(())
    }

    /// Reserves `amount` (the answer's worst case) from the payer's balance and, with an API key,
    /// adds it to the key's spending within its limits — each check in the statement that
    /// writes, so simultaneous posts cannot both pass. Inside the caller's transaction: on an
    /// error the caller rolls back and nothing is held. A second hold with the same `key` holds
    /// nothing more.
    pub async fn hold_in(
        &self,
        conn: &mut PgConnection,
        payer: Payer,
        api_key: Option<crate::ids::ApiKeyId>,
        key: &str,
        amount: i64,
    ) -> Result<(), CreditError> {
        let (account, balance) = self.account_in(conn, payer).await?;
        let new: Option<String> = sqlx::query_scalar(
            "INSERT INTO credit_holds (key, account_id, api_key_id, amount) VALUES ($1, $2, $3, $4)
             ON CONFLICT (key) DO NOTHING RETURNING key",
        )
        .bind(key)
        .bind(account)
        .bind(api_key)
        .bind(amount)
        .fetch_optional(&mut *conn)
        .await?;
        if new.is_none() {
            return Ok(());
        }
        let held: Option<i64> = sqlx::query_scalar(
            "UPDATE credit_accounts SET balance = balance - $2
              WHERE id = $1 AND balance >= $2 AND balance >= $3 RETURNING balance",
        )
        .bind(account)
        .bind(amount)
        .bind(self.min_balance)
        .fetch_optional(&mut *conn)
        .await?;
        if held.is_none() {
            return Err(CreditError::Insufficient {
                balance,
                needed: amount.max(self.min_balance),
            });
        }
        if let Some(key_id) = api_key {
            let spent: Option<i64> = sqlx::query_scalar(
                "UPDATE api_keys SET credits_used = credits_used + $2
                  WHERE id = $1 AND credits_used < limit_hard AND credits_used + $2 <= limit_hard
                    AND NOT (stop_at_limit AND limit_soft IS NOT NULL
                             AND (credits_used >= limit_soft OR credits_used + $2 > limit_soft))
                 RETURNING credits_used",
            )
            .bind(key_id)
            .bind(amount)
            .fetch_optional(&mut *conn)
            .await?;
            match spent {
                Some(used) => {
                    let soft: Option<i64> =
                        sqlx::query_scalar("SELECT limit_soft FROM api_keys WHERE id = $1")
                            .bind(key_id)
                            .fetch_one(&mut *conn)
                            .await?;
                    if soft.is_some_and(|soft| used >= soft) {
                        tracing::warn!(%key_id, used, "API key past its soft credit limit");
                    }
                }
                None => {
                    let row: Option<(i64, Option<i64>, i64, bool)> = sqlx::query_as(
                        "SELECT credits_used, limit_soft, limit_hard, stop_at_limit FROM api_keys WHERE id = $1",
                    )
                    .bind(key_id)
                    .fetch_optional(&mut *conn)
                    .await?;
                    let Some((used, soft, hard, stop)) = row else {
                        return Err(CreditError::UnknownKey);
                    };
                    let limit = match soft {
                        Some(soft) if stop && used + amount > soft => soft,
                        _ => hard,
                    };
                    return Err(CreditError::KeyLimitReached { used, limit });
                }
            }
        }
        Ok(())
    }

    /// Settles the hold named `key` against the real `cost`: gives back what was held but not
    /// spent, records the charge once (ledger key `ledger_key`) and corrects the API key's
    /// spending. The charge is capped at what the hold and the balance cover, so the balance
    /// never goes below zero. Returns the new balance when anything changed. Inside the answer's
    /// transaction.
    #[allow(clippy::too_many_arguments)]
    pub async fn settle_in(
        &self,
        conn: &mut PgConnection,
        payer: Payer,
        api_key: Option<crate::ids::ApiKeyId>,
        key: &str,
        cost: i64,
        kind: &str,
        ledger_key: &str,
    ) -> Result<Option<i64>, sqlx::Error> {
        let hold: Option<(i64, Option<ApiKeyId>, i64)> = sqlx::query_as(
            "DELETE FROM credit_holds WHERE key = $1 RETURNING account_id, api_key_id, amount",
        )
        .bind(key)
        .fetch_optional(&mut *conn)
        .await?;
        let (account, api_key, held) = match hold {
            Some((account, hold_key, amount)) => (account, hold_key, amount),
            // An answer queued before holds existed: charged as it ends.
            None => (self.account_in(conn, payer).await?.0, api_key, 0),
        };
        if held == 0 && cost == 0 {
            return Ok(None);
        }
        let balance: i64 =
            sqlx::query_scalar("SELECT balance FROM credit_accounts WHERE id = $1 FOR UPDATE")
                .bind(account)
                .fetch_one(&mut *conn)
                .await?;
        let mut charged = cost.min(balance + held).max(0);
        if charged < cost {
            tracing::warn!(
                key,
                cost,
                charged,
                "answer cost more than its hold and the balance cover"
            );
        }
        if charged > 0 {
            let first: Option<i64> = sqlx::query_scalar(
                "INSERT INTO credit_ledger_entries (id, account_id, amount, kind, source, idempotency_key)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
            )
            .bind(self.ids.next_id())
            .bind(account)
            .bind(-charged)
            .bind(kind)
            .bind(key)
            .bind(ledger_key)
            .fetch_optional(&mut *conn)
            .await?;
            if first.is_none() {
                charged = 0; // charged by an earlier attempt: only the hold goes back
            }
        }
        let balance: i64 = sqlx::query_scalar(
            "UPDATE credit_accounts SET balance = balance + $2 WHERE id = $1 RETURNING balance",
        )
        .bind(account)
        .bind(held - charged)
        .fetch_one(&mut *conn)
        .await?;
        if let Some(key_id) = api_key {
            sqlx::query(
                "UPDATE api_keys SET credits_used = GREATEST(credits_used + $2, 0) WHERE id = $1",
            )
            .bind(key_id)
            .bind(charged - held)
            .execute(&mut *conn)
            .await?;
        }
        Ok(Some(balance))
    }

    /// Adds `amount` to the payer's balance once: the ledger's `ledger_key` is unique, so a
    /// second grant with the same key (a webhook delivered twice, a scheduled grant on two
    /// nodes) adds nothing. The new balance when this call granted, else `None`. Inside the
    /// caller's transaction.
    pub async fn grant_in(
        &self,
        conn: &mut PgConnection,
        payer: Payer,
        amount: i64,
        kind: &str,
        source: &str,
        ledger_key: &str,
    ) -> Result<Option<i64>, sqlx::Error> {
        let (account, _) = self.account_in(conn, payer).await?;
        let first: Option<i64> = sqlx::query_scalar(
            "INSERT INTO credit_ledger_entries (id, account_id, amount, kind, source, idempotency_key)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
        )
        .bind(self.ids.next_id())
        .bind(account)
        .bind(amount)
        .bind(kind)
        .bind(source)
        .bind(ledger_key)
        .fetch_optional(&mut *conn)
        .await?;
        if first.is_none() {
            return Ok(None);
        }
        sqlx::query_scalar(
            "UPDATE credit_accounts SET balance = balance + $2 WHERE id = $1 RETURNING balance",
        )
        .bind(account)
        .bind(amount)
        .fetch_one(&mut *conn)
        .await
        .map(Some)
    }

    /// Gives back the whole hold named `key` (its answer will never run); the new balance, or
    /// `None` when there was no hold.
    pub async fn release(&self, key: &str) -> Result<Option<i64>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let hold: Option<(i64, Option<ApiKeyId>, i64)> = sqlx::query_as(
            "DELETE FROM credit_holds WHERE key = $1 RETURNING account_id, api_key_id, amount",
        )
        .bind(key)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((account, api_key, held)) = hold else {
            return Ok(None);
        };
        let balance: i64 = sqlx::query_scalar(
            "UPDATE credit_accounts SET balance = balance + $2 WHERE id = $1 RETURNING balance",
        )
        .bind(account)
        .bind(held)
        .fetch_one(&mut *tx)
        .await?;
        if let Some(key_id) = api_key {
            sqlx::query(
                "UPDATE api_keys SET credits_used = GREATEST(credits_used - $2, 0) WHERE id = $1",
            )
            .bind(key_id)
            .bind(held)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(Some(balance))
    }
}

/// Gives back the holds of answers whose job is gone or finished without settling them (it went
/// dead after a crash or a timeout, or was cancelled by an operator). Holds younger than
/// `min_age` are left alone: their job may not be visible yet. Returns how many were released.
pub async fn release_orphaned_holds(
    pool: &PgPool,
    min_age: std::time::Duration,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "WITH gone AS (
             DELETE FROM credit_holds h
              WHERE h.created_at < now() - make_interval(secs => $1)
                AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.unique_key = h.key
                                   AND j.state IN ('available', 'running', 'retrying'))
                -- A run's llm step holds under its step key while it is in progress.
                AND NOT EXISTS (SELECT 1 FROM run_steps s WHERE s.step_key = h.key
                                   AND s.status = 'InProgress')
             RETURNING account_id, api_key_id, amount),
         accounts AS (
             UPDATE credit_accounts a SET balance = a.balance + g.total
               FROM (SELECT account_id, sum(amount) AS total FROM gone GROUP BY account_id) g
              WHERE a.id = g.account_id),
         keys AS (
             UPDATE api_keys k SET credits_used = GREATEST(k.credits_used - g.total, 0)
               FROM (SELECT api_key_id, sum(amount) AS total FROM gone
                      WHERE api_key_id IS NOT NULL GROUP BY api_key_id) g
              WHERE k.id = g.api_key_id)
         SELECT count(*) FROM gone",
    )
    .bind(min_age.as_secs_f64())
    .fetch_one(pool)
    .await
}
