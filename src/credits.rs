//! Credits: one account per user (or team), a ledger whose unique idempotency key makes every
//! grant and charge happen exactly once, however often a job is retried. 1 US cent = 1,000,000
//! credits. A user's account is opened on first use with `ai.starting_credits`.

use std::sync::Arc;

use sqlx::{PgConnection, PgPool};

use crate::chat::ChatError;
use crate::ids::{Snowflake, UserId};

#[derive(Clone)]
pub struct Credits {
    pool: PgPool,
    ids: Arc<Snowflake>,
    starting: i64,
    min_balance: i64,
}

impl Credits {
    pub fn new(pool: PgPool, ids: Arc<Snowflake>, starting: i64, min_balance: i64) -> Self {
        Self {
            pool,
            ids,
            starting,
            min_balance,
        }
    }

    /// The user's account id and balance, opening the account (with the starting grant) on
    /// first use.
    pub async fn account_in(
        &self,
        conn: &mut PgConnection,
        user: UserId,
    ) -> Result<(i64, i64), sqlx::Error> {
        let opened: Option<i64> = sqlx::query_scalar(
            "INSERT INTO credit_accounts (id, user_id, balance) VALUES ($1, $2, $3)
             ON CONFLICT (user_id) DO NOTHING RETURNING id",
        )
        .bind(self.ids.next_id())
        .bind(user)
        .bind(self.starting)
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(account) = opened {
            sqlx::query(
                "INSERT INTO credit_ledger_entries (id, account_id, amount, kind, idempotency_key)
                 VALUES ($1, $2, $3, 'StartingGrant', $4) ON CONFLICT DO NOTHING",
            )
            .bind(self.ids.next_id())
            .bind(account)
            .bind(self.starting)
            .bind(format!("starting:{user}"))
            .execute(&mut *conn)
            .await?;
        }
        sqlx::query_as("SELECT id, balance FROM credit_accounts WHERE user_id = $1")
            .bind(user)
            .fetch_one(&mut *conn)
            .await
    }

    pub async fn balance(&self, user: UserId) -> Result<i64, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let (_, balance) = self.account_in(&mut tx, user).await?;
        tx.commit().await?;
        Ok(balance)
    }

    /// Refuses up front when the payer cannot cover the configured minimum.
    pub async fn ensure_can_pay(&self, user: UserId) -> Result<(), ChatError> {
        let balance = self.balance(user).await?;
        if balance < self.min_balance {
            return Err(ChatError::InsufficientCredits {
                balance,
                needed: self.min_balance,
            });
        }
        Ok(())
    }

    /// An API key spends its owner's credits within its own limits: never past `limit_hard`,
    /// and not past `limit_soft` either when `stop_at_limit` is set (otherwise the soft limit
    /// only warns, in the log).
    pub async fn ensure_key_can_spend(&self, key_id: i64) -> Result<(), ChatError> {
        let row: Option<(i64, Option<i64>, i64, bool)> = sqlx::query_as(
            "SELECT credits_used, limit_soft, limit_hard, stop_at_limit FROM api_keys WHERE id = $1",
        )
        .bind(key_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some((used, soft, hard, stop_at_limit)) = row else {
            return Err(ChatError::Forbidden);
        };
        let past_soft = soft.is_some_and(|soft| used >= soft);
        if used >= hard || (stop_at_limit && past_soft) {
            return Err(ChatError::KeyLimitReached {
                used,
                limit: if used >= hard {
                    hard
                } else {
                    soft.unwrap_or(hard)
                },
            });
        }
        if past_soft {
            tracing::warn!(key_id, used, "API key past its soft credit limit");
        }
        Ok(())
    }

    /// Adds to an API key's spending (inside the charge's transaction).
    pub async fn record_key_spend_in(
        &self,
        conn: &mut PgConnection,
        key_id: i64,
        amount: i64,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE api_keys SET credits_used = credits_used + $2 WHERE id = $1")
            .bind(key_id)
            .bind(amount)
            .execute(conn)
            .await
            .map(drop)
    }

    /// Charges `amount` once per `key`: the new balance, or `None` when that key was charged
    /// already (a retry). Runs inside the caller's transaction.
    pub async fn charge_in(
        &self,
        conn: &mut PgConnection,
        user: UserId,
        amount: i64,
        kind: &str,
        source: &str,
        key: &str,
    ) -> Result<Option<i64>, sqlx::Error> {
        let (account, _) = self.account_in(conn, user).await?;
        let charged: Option<i64> = sqlx::query_scalar(
            "INSERT INTO credit_ledger_entries (id, account_id, amount, kind, source, idempotency_key)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
        )
        .bind(self.ids.next_id())
        .bind(account)
        .bind(-amount)
        .bind(kind)
        .bind(source)
        .bind(key)
        .fetch_optional(&mut *conn)
        .await?;
        if charged.is_none() {
            return Ok(None);
        }
        let balance = sqlx::query_scalar(
            "UPDATE credit_accounts SET balance = balance - $2 WHERE id = $1 RETURNING balance",
        )
        .bind(account)
        .bind(amount)
        .fetch_one(&mut *conn)
        .await?;
        Ok(Some(balance))
    }
}
