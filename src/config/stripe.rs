//! `[stripe]`: billing through Stripe (`src/billing/`).

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StripeSettings {
    /// The secret API key (`sk_…`). Empty: billing is off — its routes answer 503
    /// `BillingNotConfigured` and the webhook refuses every delivery.
    pub secret_key: SecretString,
    /// The webhook endpoint's signing secret (`whsec_…`).
    pub webhook_secret: SecretString,
    /// Stripe's API (a fake's address in tests).
    pub api_url: String,
    /// How far a webhook's signed timestamp may be from now, either way.
    pub tolerance_secs: i64,
    /// Seconds to wait for Stripe.
    pub timeout_secs: u64,
    /// Where checkout sends the buyer back; `{paymentType}` is replaced.
    pub success_url: String,
    pub cancel_url: String,
    /// Where the customer portal returns; a `returnUrl` asked for must start with this.
    pub portal_return_url: String,
    /// Credits and donations: the smallest and largest amount, in US cents.
    pub min_amount_cents: i64,
    pub max_amount_cents: i64,
    /// Credits a premium plan grants each month (1,500 × 10⁶ in the original).
    pub premium_monthly_credits: i64,
    pub prices: StripePrices,
}

/// The Stripe price ids of the subscriptions.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StripePrices {
    pub premium_monthly: String,
    pub premium_yearly: String,
}

impl StripeSettings {
    pub fn enabled(&self) -> bool {
        !self.secret_key.expose_secret().is_empty()
    }
}
