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
//!
//! This file verifies a delivery, records it and sends it by type; `event.rs` reads the event
//! and the buyer it names; `checkout.rs`, `subscription.rs` and `invoice.rs` apply their kinds;
//! `notice.rs` tells a buyer of a new balance.

use crate::errors::{Code, ErrorCode, Told};
use chrono::Utc;

use super::Billing;
use super::signature::{self, SignatureError};
use checkout::set_status;
use event::{Event, text};

mod checkout;
mod event;
mod invoice;
mod notice;
mod subscription;

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
}
