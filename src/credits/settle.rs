//! Settlement: when an answer ends, its hold is deleted, what was held but not spent goes back,
//! the real cost is written to the ledger once and the API key's spending is corrected by the
//! same difference.

use sqlx::PgConnection;

use super::{Credits, Payer};
use crate::ids::ApiKeyId;

impl Credits {
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
}
