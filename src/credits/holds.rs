//! Holds: reserving an answer's worst case from the balance (and the API key's spending) when
//! it is queued, and giving a hold back whole when its answer never runs — one at a time
//! (`release`) or swept (`release_orphaned_holds`). Settling a hold is in `settle.rs`.

use sqlx::{PgConnection, PgPool};

use super::{CreditError, Credits, Payer};
use crate::ids::ApiKeyId;

impl Credits {
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
