//! Billing through Stripe: checkout sessions for credits, donations and premium plans, the
//! customer portal, and the webhook that makes payments real (ADR 27).
//!
//! ```text
//! POST /create-checkout-session ─▶ the caller's Stripe customer (made once, kept in
//!     users.stripe_customer_id) ─▶ POST /v1/checkout/sessions (metadata: paymentType, userId,
//!     teamId; client_reference_id the user) ─▶ {url}
//! POST /create-portal-session ─▶ POST /v1/billing_portal/sessions ─▶ {url}
//! POST /webhooks/stripe ─▶ signature.rs (raw body, t=, v1=, tolerance) ─▶ webhook/: one tx:
//!     stripe_events row (a second delivery stops here) + payments, plans, credits (ledger keys
//!     per session / invoice) + user/credits/updated in the outbox
//! premium.rs: the hourly billing.grant-premium-credits job ─▶ each active plan once per
//!     calendar month (ledger key premium:<user>:<YYYY-MM>)
//! ```

pub mod premium;
pub mod signature;
mod stripe_api;
pub mod webhook;

use crate::errors::{Code, ErrorCode, Told};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use crate::config::StripeSettings;
use crate::credits::Credits;
use crate::ids::{Snowflake, TeamId, UserId};
use stripe_api::StripeApi;
pub use stripe_api::StripeError;

/// What a checkout buys (the original's `PaymentType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum PaymentType {
    Credits,
    Donation,
    PremiumMonthly,
    PremiumYearly,
}

impl PaymentType {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentType::Credits => "Credits",
            PaymentType::Donation => "Donation",
            PaymentType::PremiumMonthly => "PremiumMonthly",
            PaymentType::PremiumYearly => "PremiumYearly",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            PaymentType::Credits,
            PaymentType::Donation,
            PaymentType::PremiumMonthly,
            PaymentType::PremiumYearly,
        ]
        .into_iter()
        .find(|p| p.as_str() == text)
    }

    fn is_subscription(self) -> bool {
        matches!(
            self,
            PaymentType::PremiumMonthly | PaymentType::PremiumYearly
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BillingError {
    #[error("billing is not configured on this server")]
    NotConfigured,
    #[error("an amount is {min} to {max} US cents")]
    InvalidAmount { min: i64, max: i64 },
    #[error("no price is configured for {0}")]
    NoPrice(&'static str),
    #[error("no Stripe customer yet: buy something first")]
    NoCustomer,
    #[error("returnUrl must start with {0}")]
    InvalidReturnUrl(String),
    #[error(transparent)]
    Stripe(#[from] StripeError),
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
}

impl ErrorCode for BillingError {
    fn told(&self) -> Told {
        let code = match self {
            BillingError::NotConfigured | BillingError::NoPrice(_) => Code::BillingNotConfigured,
            BillingError::InvalidAmount { .. } => Code::InvalidAmount,
            BillingError::NoCustomer => Code::NoBillingAccount,
            BillingError::InvalidReturnUrl(_) => Code::InvalidReturnUrl,
            BillingError::Stripe(_) => return Told::ours(Code::PaymentProviderError),
            BillingError::Sql(e) => return e.told(),
        };
        Told::says(code, self)
    }
}

/// A checkout to make.
pub struct Checkout {
    pub buyer: UserId,
    pub payment_type: PaymentType,
    /// Credits and donations: US cents.
    pub amount_cents: Option<i64>,
    /// Credits for this team's account (the caller checked to be its admin).
    pub team: Option<TeamId>,
}

#[derive(Clone)]
pub struct Billing {
    pool: PgPool,
    settings: Arc<StripeSettings>,
    /// `None` when billing is off.
    api: Option<StripeApi>,
    pub(crate) credits: Credits,
    pub(crate) ids: Arc<Snowflake>,
    /// Kicked after a commit that added `user/credits/updated` events.
    outbox: crate::outbox::Outbox,
}

impl Billing {
    pub fn new(
        pool: PgPool,
        settings: &StripeSettings,
        credits: Credits,
        ids: Arc<Snowflake>,
        outbox: crate::outbox::Outbox,
    ) -> Result<Self, reqwest::Error> {
        let api = if settings.enabled() {
            Some(StripeApi::new(
                &settings.api_url,
                settings.secret_key.clone(),
                Duration::from_secs(settings.timeout_secs),
            )?)
        } else {
            None
        };
        Ok(Self {
            pool,
            settings: Arc::new(settings.clone()),
            api,
            credits,
            ids,
            outbox,
        })
    }

    fn kick(&self, rooms: &[vrooli_actors::RoomKey]) {
        for room in rooms {
            self.outbox.kick(room);
        }
    }

    pub fn enabled(&self) -> bool {
        self.api.is_some()
    }

    pub fn settings(&self) -> &StripeSettings {
        &self.settings
    }

    fn api(&self) -> Result<&StripeApi, BillingError> {
        self.api.as_ref().ok_or(BillingError::NotConfigured)
    }

    /// The health check: Stripe answers with our key.
    pub async fn ping(&self) -> Result<(), BillingError> {
        Ok(self.api()?.balance().await?)
    }

    /// The user's Stripe customer id, made (with their primary address) on first use.
    async fn customer(&self, user: UserId) -> Result<String, BillingError> {
        let api = self.api()?;
        let (stored, email): (Option<String>, Option<String>) = sqlx::query_as(
            "SELECT u.stripe_customer_id,
                    (SELECT e.email_address FROM emails e WHERE e.user_id = u.id
                      ORDER BY e.is_primary DESC, e.verified_at IS NULL, e.id LIMIT 1)
               FROM users u WHERE u.id = $1",
        )
        .bind(user)
        .fetch_one(&self.pool)
        .await?;
        if let Some(id) = stored {
            return Ok(id);
        }
        let mut form = vec![("metadata[userId]".to_owned(), user.to_string())];
        if let Some(email) = email {
            form.push(("email".to_owned(), email));
        }
        let created = api.post("customers", &form).await?;
        // Two checkouts at once may both make one; the first stored is kept.
        let kept: String = sqlx::query_scalar(
            "UPDATE users SET stripe_customer_id = COALESCE(stripe_customer_id, $2)
              WHERE id = $1 RETURNING stripe_customer_id",
        )
        .bind(user)
        .bind(&created.id)
        .fetch_one(&self.pool)
        .await?;
        Ok(kept)
    }

    /// Makes a checkout session; its id and the URL to send the buyer to.
    pub async fn checkout(&self, order: Checkout) -> Result<(String, String), BillingError> {
        let api = self.api()?;
        let s = &self.settings;
        let kind = order.payment_type.as_str();
        let mut form: Vec<(String, String)> = Vec::new();
        let mut add = |k: &str, v: String| form.push((k.to_owned(), v));
        add("metadata[paymentType]", kind.into());
        add("metadata[userId]", order.buyer.to_string());
        add("client_reference_id", order.buyer.to_string());
        if let Some(team) = order.team {
            add("metadata[teamId]", team.to_string());
        }
        add("success_url", s.success_url.replace("{paymentType}", kind));
        add("cancel_url", s.cancel_url.replace("{paymentType}", kind));
        add("line_items[0][quantity]", "1".into());
        if order.payment_type.is_subscription() {
            let price = match order.payment_type {
                PaymentType::PremiumMonthly => &s.prices.premium_monthly,
                _ => &s.prices.premium_yearly,
            };
            if price.is_empty() {
                return Err(BillingError::NoPrice(kind));
            }
            add("mode", "subscription".into());
            add("line_items[0][price]", price.clone());
            // The subscription's own events name the buyer too.
            add(
                "subscription_data[metadata][userId]",
                order.buyer.to_string(),
            );
            add("subscription_data[metadata][paymentType]", kind.into());
        } else {
            let amount = order
                .amount_cents
                .filter(|a| (s.min_amount_cents..=s.max_amount_cents).contains(a))
                .ok_or(BillingError::InvalidAmount {
                    min: s.min_amount_cents,
                    max: s.max_amount_cents,
                })?;
            let name = match order.payment_type {
                PaymentType::Credits => "Credits Purchase",
                _ => "Donation",
            };
            add("mode", "payment".into());
            add("line_items[0][price_data][currency]", "usd".into());
            add("line_items[0][price_data][product_data][name]", name.into());
            add("line_items[0][price_data][unit_amount]", amount.to_string());
        }
        let customer = self.customer(order.buyer).await?;
        form.push(("customer".to_owned(), customer));
        let session = api.post("checkout/sessions", &form).await?;
        // Pending until the webhook says paid (or expired).
        sqlx::query(
            "INSERT INTO payments (id, user_id, team_id, payment_type, amount_cents, status)
             VALUES ($1, $2, $3, $4, $5, 'Pending') ON CONFLICT (id) DO NOTHING",
        )
        .bind(&session.id)
        .bind(order.buyer)
        .bind(order.team)
        .bind(kind)
        .bind(order.amount_cents.unwrap_or(0))
        .execute(&self.pool)
        .await?;
        let url = session.url.unwrap_or_default();
        Ok((session.id, url))
    }

    /// A customer portal session for the buyer; its URL.
    pub async fn portal(
        &self,
        user: UserId,
        return_url: Option<String>,
    ) -> Result<String, BillingError> {
        let api = self.api()?;
        let allowed = &self.settings.portal_return_url;
        let return_url = match return_url {
            Some(url) if !url.starts_with(allowed.as_str()) => {
                return Err(BillingError::InvalidReturnUrl(allowed.clone()));
            }
            Some(url) => url,
            None => allowed.clone(),
        };
        let customer: Option<String> =
            sqlx::query_scalar("SELECT stripe_customer_id FROM users WHERE id = $1")
                .bind(user)
                .fetch_optional(&self.pool)
                .await?
                .flatten();
        let customer = customer.ok_or(BillingError::NoCustomer)?;
        let session = api
            .post(
                "billing_portal/sessions",
                &[
                    ("customer".to_owned(), customer),
                    ("return_url".to_owned(), return_url),
                ],
            )
            .await?;
        Ok(session.url.unwrap_or_default())
    }

    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }
}
