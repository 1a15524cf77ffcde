//! `customer.subscription.*`: the buyer's premium plan follows the subscription — its kind, id
//! and when it expires (its period end while it runs; at once or at its end when it stops).

use chrono::Utc;
use serde_json::Value;
use sqlx::PgConnection;

use super::event::{text, time};
use crate::billing::{Billing, PaymentType};

impl Billing {
    pub(super) async fn subscription_changed(
        &self,
        tx: &mut PgConnection,
        subscription: &Value,
        deleted: bool,
    ) -> Result<(), sqlx::Error> {
        let Some(buyer) = self.buyer(tx, subscription).await? else {
            tracing::warn!("a subscription of no user of ours: ignored");
            return Ok(());
        };
        // Newer API versions keep the period on the subscription's items.
        let item = subscription
            .pointer("/items/data/0")
            .unwrap_or(&Value::Null);
        let period_end =
            time(subscription, "current_period_end").or_else(|| time(item, "current_period_end"));
        let price = item.pointer("/price/id").and_then(Value::as_str);
        let prices = &self.settings.prices;
        let kind = subscription
            .get("metadata")
            .and_then(|m| text(m, "paymentType"))
            .and_then(PaymentType::parse)
            .filter(|k| k.is_subscription())
            .unwrap_or(if price == Some(prices.premium_yearly.as_str()) {
                PaymentType::PremiumYearly
            } else {
                PaymentType::PremiumMonthly
            });
        let status = text(subscription, "status").unwrap_or("");
        let expires_at = if deleted {
            time(subscription, "ended_at")
                .or(period_end)
                .or(Some(Utc::now()))
        } else if matches!(status, "active" | "trialing" | "past_due") {
            period_end
        } else {
            // canceled, unpaid, incomplete, incomplete_expired, paused
            period_end
                .filter(|end| *end < Utc::now())
                .or(Some(Utc::now()))
        };
        sqlx::query(
            "INSERT INTO premium_plans (user_id, payment_type, subscription_id, expires_at)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (user_id) DO UPDATE SET payment_type = EXCLUDED.payment_type,
                 subscription_id = EXCLUDED.subscription_id, expires_at = EXCLUDED.expires_at",
        )
        .bind(buyer)
        .bind(kind.as_str())
        .bind(text(subscription, "id"))
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }
}
