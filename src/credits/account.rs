//! Accounts and their balances: opening an account with its starting grant on first use, the
//! up-front checks (payer's minimum balance, an API key's limits) and once-only grants. Reads
//! and writes `credit_accounts`, `credit_ledger_entries` and (read only) `api_keys`.

use sqlx::PgConnection;

use super::{CreditError, Credits, Payer};
use crate::ids::ApiKeyId;

impl Credits {
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
}
