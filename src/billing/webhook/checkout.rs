//! Checkout sessions: a paid one records its payment and grants what was bought (credits to the
//! buyer's or team's account, a premium plan and its first month); an expired or failed one
//! marks the payment Failed.

use chrono::Utc;
use serde_json::Value;
use sqlx::PgConnection;
use vrooli_actors::RoomKey;

use super::event::text;
use crate::billing::{Billing, PaymentType};
use crate::credits::Payer;
use crate::ids::TeamId;

impl Billing {
    pub(super) async fn session_completed(
        &self,
        tx: &mut PgConnection,
        session: &Value,
        rooms: &mut Vec<RoomKey>,
    ) -> Result<(), sqlx::Error> {
        let Some(id) = text(session, "id") else {
            return Ok(());
        };
        let metadata = session.get("metadata").cloned().unwrap_or(Value::Null);
        let Some(kind) = text(&metadata, "paymentType").and_then(PaymentType::parse) else {
            tracing::warn!(
                session = id,
                "a checkout without a known paymentType: ignored"
            );
            return Ok(());
        };
        let buyer = self.buyer(tx, session).await?;
        let team: Option<TeamId> = text(&metadata, "teamId")
            .and_then(|t| t.parse().ok())
            .map(TeamId);
        let amount = ["amount_subtotal", "amount_total"]
            .iter()
            .find_map(|k| session.get(*k).and_then(Value::as_i64))
            .unwrap_or(0);
        let paid = text(session, "payment_status") == Some("paid");
        sqlx::query(
            "INSERT INTO payments (id, user_id, team_id, payment_type, amount_cents, currency, status)
             VALUES ($1, $2, (SELECT id FROM teams WHERE id = $3), $4, $5, $6, $7)
             ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status,
                                            amount_cents = EXCLUDED.amount_cents",
        )
        .bind(id)
        .bind(buyer)
        .bind(team)
        .bind(kind.as_str())
        .bind(amount)
        .bind(text(session, "currency").unwrap_or("usd"))
        .bind(if paid { "Paid" } else { "Pending" })
        .execute(&mut *tx)
        .await?;
        let Some(buyer) = buyer.filter(|_| paid) else {
            if paid {
                tracing::warn!(session = id, "a paid checkout names no user of ours");
            }
            return Ok(());
        };
        match kind {
            PaymentType::Credits => {
                let payer = Payer::of(buyer, team);
                let granted = self
                    .credits
                    .grant_in(
                        tx,
                        payer,
                        amount.saturating_mul(1_000_000),
                        "Purchase",
                        "Stripe",
                        &format!("stripe:{id}"),
                    )
                    .await?;
                if let Some(balance) = granted {
                    rooms.push(self.credits_event(tx, buyer, team, balance).await?);
                }
            }
            PaymentType::PremiumMonthly | PaymentType::PremiumYearly => {
                sqlx::query(
                    "INSERT INTO premium_plans (user_id, payment_type, subscription_id)
                     VALUES ($1, $2, $3)
                     ON CONFLICT (user_id) DO UPDATE SET payment_type = EXCLUDED.payment_type,
                         subscription_id = COALESCE(EXCLUDED.subscription_id,
                                                    premium_plans.subscription_id),
                         enabled_at = now(), expires_at = NULL",
                )
                .bind(buyer)
                .bind(kind.as_str())
                .bind(text(session, "subscription"))
                .execute(&mut *tx)
                .await?;
                let granted = self.grant_month_in(tx, buyer, Utc::now()).await?;
                if let Some(balance) = granted {
                    rooms.push(self.credits_event(tx, buyer, None, balance).await?);
                }
            }
            PaymentType::Donation => {}
        }
        Ok(())
    }
}

pub(super) async fn set_status(
    tx: &mut PgConnection,
    id: Option<&str>,
    status: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE payments SET status = $2 WHERE id = $1 AND status = 'Pending'")
        .bind(id)
        .bind(status)
        .execute(&mut *tx)
        .await
        .map(drop)
}
