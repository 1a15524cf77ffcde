//! `invoice.*`: the invoice's payment row (Paid or Failed); a paid one extends its premium plan
//! to the invoice's period end.

use serde_json::Value;
use sqlx::PgConnection;

use super::event::{text, time};
use crate::billing::Billing;

impl Billing {
    pub(super) async fn invoice(
        &self,
        tx: &mut PgConnection,
        invoice: &Value,
        paid: bool,
    ) -> Result<(), sqlx::Error> {
        let Some(id) = text(invoice, "id") else {
            return Ok(());
        };
        let buyer = self.buyer(tx, invoice).await?;
        let subscription = text(invoice, "subscription").or_else(|| {
            invoice
                .pointer("/parent/subscription_details/subscription")
                .and_then(Value::as_str)
        });
        let kind: Option<String> = match subscription {
            Some(sub) => {
                sqlx::query_scalar(
                    "SELECT payment_type FROM premium_plans WHERE subscription_id = $1",
                )
                .bind(sub)
                .fetch_optional(&mut *tx)
                .await?
            }
            None => None,
        };
        let amount = invoice
            .get(if paid { "amount_paid" } else { "amount_due" })
            .and_then(Value::as_i64)
            .unwrap_or(0);
        sqlx::query(
            "INSERT INTO payments (id, user_id, payment_type, amount_cents, currency, status)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status,
                                            amount_cents = EXCLUDED.amount_cents",
        )
        .bind(id)
        .bind(buyer)
        .bind(kind.as_deref().unwrap_or("PremiumMonthly"))
        .bind(amount)
        .bind(text(invoice, "currency").unwrap_or("usd"))
        .bind(if paid { "Paid" } else { "Failed" })
        .execute(&mut *tx)
        .await?;
        let period_end = time(
            invoice
                .pointer("/lines/data/0/period")
                .unwrap_or(&Value::Null),
            "end",
        );
        if let (true, Some(sub), Some(end)) = (paid, subscription, period_end) {
            sqlx::query(
                "UPDATE premium_plans SET expires_at = GREATEST(expires_at, $2)
                  WHERE subscription_id = $1 AND expires_at IS NOT NULL",
            )
            .bind(sub)
            .bind(end)
            .execute(&mut *tx)
            .await?;
        }
        Ok(())
    }
}
