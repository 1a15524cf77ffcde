//! `POST /webhooks/stripe`: a Stripe event, verified (`signature.rs`) before it is read, handled
//! in one transaction with the `stripe_events` row that marks it handled. A second delivery of
//! the same event finds that row and changes nothing; a failure rolls everything back and
//! answers 5xx, so Stripe delivers it again.
//!
//! - `checkout.session.completed` / `.async_payment_succeeded`, when paid: the payment row;
//!   Credits add amount (cents) × 10⁶ to the buyer's account (or the team's named in the
//!   metadata), ledger key `stripe:<session>`; a premium plan starts and its first month is
//!   granted (`premium.rs`); a donation is recorded.
//! - `checkout.session.expired` / `.async_payment_failed`: the payment is Failed.
//! - `customer.subscription.created|updated|deleted`: the plan follows the subscription (active
//!   until its period ends; a deleted one expires at its end).
//! - `invoice.paid` / `.payment_succeeded` / `.payment_failed`: the invoice's payment row; a
//!   paid one extends its plan to the invoice's period end.
//! - `customer.deleted`: the stored customer id is forgotten.
//! - anything else: recorded and answered 200.

use crate::errors::{Code, ErrorCode, Told};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::PgConnection;
use vrooli_actors::{NewEvent, RoomKey};

use super::signature::{self, SignatureError};
use super::{Billing, PaymentType};
use crate::credits::Payer;
use crate::ids::{TeamId, UserId};

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("billing is not configured on this server")]
    NotConfigured,
    #[error(transparent)]
    Signature(#[from] SignatureError),
    #[error("not a Stripe event: {0}")]
    Malformed(String),
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
}

impl ErrorCode for WebhookError {
    fn told(&self) -> Told {
        let code = match self {
            WebhookError::NotConfigured => Code::BillingNotConfigured,
            WebhookError::Signature(_) => Code::InvalidSignature,
            WebhookError::Malformed(_) => Code::InvalidBody,
            WebhookError::Sql(e) => return e.told(),
        };
        Told::says(code, self)
    }
}

/// What became of a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    Applied,
    /// Seen before: nothing changed.
    Duplicate,
    /// A type this server does not act on (recorded).
    Ignored,
}

#[derive(Deserialize)]
struct Event {
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    data: EventData,
}

#[derive(Deserialize)]
struct EventData {
    object: Value,
}

fn text<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn time(value: &Value, key: &str) -> Option<DateTime<Utc>> {
    value
        .get(key)
        .and_then(Value::as_i64)
        .and_then(|s| DateTime::from_timestamp(s, 0))
}

impl Billing {
    /// Verifies and handles one delivery.
    pub async fn webhook(
        &self,
        header: Option<&str>,
        body: &[u8],
    ) -> Result<Handled, WebhookError> {
        if !self.enabled() {
            return Err(WebhookError::NotConfigured);
        }
        let secret = secrecy::ExposeSecret::expose_secret(&self.settings.webhook_secret);
        signature::verify(
            header.ok_or(SignatureError::Malformed)?,
            body,
            secret,
            Utc::now().timestamp(),
            self.settings.tolerance_secs,
        )?;
        let event: Event =
            serde_json::from_slice(body).map_err(|e| WebhookError::Malformed(e.to_string()))?;
        let mut tx = self.pool.begin().await?;
        let fresh: Option<String> = sqlx::query_scalar(
            "INSERT INTO stripe_events (id, event_type) VALUES ($1, $2)
             ON CONFLICT (id) DO NOTHING RETURNING id",
        )
        .bind(&event.id)
        .bind(&event.event_type)
        .fetch_optional(&mut *tx)
        .await?;
        if fresh.is_none() {
            return Ok(Handled::Duplicate);
        }
        let object = &event.data.object;
        let mut rooms = Vec::new();
        let handled = match event.event_type.as_str() {
            "checkout.session.completed" | "checkout.session.async_payment_succeeded" => {
                self.session_completed(&mut tx, object, &mut rooms).await?;
                Handled::Applied
            }
            "checkout.session.expired" | "checkout.session.async_payment_failed" => {
                set_status(&mut tx, text(object, "id"), "Failed").await?;
                Handled::Applied
            }
            "customer.subscription.created" | "customer.subscription.updated" => {
                self.subscription_changed(&mut tx, object, false).await?;
                Handled::Applied
            }
            "customer.subscription.deleted" => {
                self.subscription_changed(&mut tx, object, true).await?;
                Handled::Applied
            }
            "invoice.paid" | "invoice.payment_succeeded" => {
                self.invoice(&mut tx, object, true).await?;
                Handled::Applied
            }
            "invoice.payment_failed" => {
                self.invoice(&mut tx, object, false).await?;
                Handled::Applied
            }
            "customer.deleted" => {
                sqlx::query(
                    "UPDATE users SET stripe_customer_id = NULL WHERE stripe_customer_id = $1",
                )
                .bind(text(object, "id"))
                .execute(&mut *tx)
                .await?;
                Handled::Applied
            }
            _ => Handled::Ignored,
        };
        tx.commit().await?;
        self.kick(&rooms);
        Ok(handled)
    }

    /// The buyer a session or subscription names: `metadata.userId`, else
    /// `client_reference_id`, else the user whose customer it is — if that user exists.
    async fn buyer(
        &self,
        tx: &mut PgConnection,
        object: &Value,
    ) -> Result<Option<UserId>, sqlx::Error> {
        let named = object
            .get("metadata")
            .and_then(|m| text(m, "userId"))
            .or_else(|| text(object, "client_reference_id"))
            .and_then(|id| id.parse::<i64>().ok());
        sqlx::query_scalar(
            "SELECT id FROM users
              WHERE ($1::BIGINT IS NOT NULL AND id = $1)
                 OR ($1::BIGINT IS NULL AND stripe_customer_id = $2)
              LIMIT 1",
        )
        .bind(named)
        .bind(text(object, "customer"))
        .fetch_optional(&mut *tx)
        .await
    }

    async fn session_completed(
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

    async fn subscription_changed(
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

    async fn invoice(
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

    /// `user/credits/updated` for the buyer, in the transaction; its room, to kick after.
    pub(super) async fn credits_event(
        &self,
        tx: &mut PgConnection,
        user: UserId,
        team: Option<TeamId>,
        balance: i64,
    ) -> Result<RoomKey, sqlx::Error> {
        let room = RoomKey::user(&user.to_string()).expect("numeric id");
        let data = match team {
            Some(team) => json!({"balance": balance.to_string(), "teamId": team}),
            None => json!({"balance": balance.to_string()}),
        };
        let event = NewEvent {
            id: self.ids.next_id().to_string(),
            event_type: "user/credits/updated".into(),
            timestamp_ms: Utc::now().timestamp_millis(),
            room: room.clone(),
            data,
        };
        crate::outbox::Outbox::add_in(tx, &event).await?;
        Ok(room)
    }
}

async fn set_status(
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
