//! Billing (`crate::billing`), with the original's route names:
//! - `POST /api/v2/create-checkout-session {variant, amount?, teamId?}` → `{url, sessionId}`
//!   (credits for a team need its admin);
//! - `POST /api/v2/create-portal-session {returnUrl?}` → `{url}`;
//! - `POST /webhooks/stripe`: Stripe's deliveries, verified by signature over the raw body.
//!
//! Without `stripe.secret_key` the first two answer 503 `BillingNotConfigured` and the webhook
//! refuses everything with the same.

use actix_web::{HttpRequest, HttpResponse, post, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::billing::webhook::Handled;
use crate::billing::{BillingError, Checkout, PaymentType};
use crate::errors::Code;
use crate::http::auth::session::{Require, WritePrivate};
use crate::http::error::ApiError;
use crate::http::reply::{Envelope, ok};
use crate::ids::TeamId;
use crate::state::AppState;

pub fn config(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(checkout).service(portal);
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CheckoutBody {
    /// What to buy.
    variant: PaymentType,
    /// Credits and Donation: US cents (`stripe.min_amount_cents` to `max_amount_cents`); a
    /// credits purchase adds cents × 1,000,000 credits.
    amount: Option<i64>,
    /// Credits for this team's account (its admins only).
    team_id: Option<TeamId>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckoutSession {
    /// Stripe's checkout page: send the buyer there.
    url: String,
    session_id: String,
}

/// Start a Stripe checkout for credits, a donation or a premium plan.
#[utoipa::path(
    tag = "billing",
    request_body = CheckoutBody,
    responses((status = 200, description = "Where to send the buyer", body = Envelope<CheckoutSession>)),
)]
#[post("/create-checkout-session")]
pub async fn checkout(
    caller: Require<WritePrivate>,
    state: web::Data<AppState>,
    body: web::Json<CheckoutBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    if !state.money.billing.enabled() {
        return Err(BillingError::NotConfigured.into());
    }
    if let Some(team) = body.team_id {
        if body.variant != PaymentType::Credits {
            return Err(ApiError::of(
                Code::InvalidBody,
                "A team buys credits only (teamId with variant Credits)",
            ));
        }
        state.people.teams.require_admin(team, caller.user).await?;
    }
    let (session_id, url) = state
        .money
        .billing
        .checkout(Checkout {
            buyer: caller.user,
            payment_type: body.variant,
            amount_cents: body.amount,
            team: body.team_id,
        })
        .await?;
    Ok(ok(CheckoutSession { url, session_id }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PortalBody {
    /// Where the portal returns to; must start with `stripe.portal_return_url` (its default).
    return_url: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct PortalSession {
    /// Stripe's customer portal for the caller.
    url: String,
}

/// Open Stripe's customer portal (subscriptions, payment methods, invoices).
#[utoipa::path(
    tag = "billing",
    request_body = PortalBody,
    responses((status = 200, description = "Where to send the customer", body = Envelope<PortalSession>)),
)]
#[post("/create-portal-session")]
pub async fn portal(
    caller: Require<WritePrivate>,
    state: web::Data<AppState>,
    body: web::Json<PortalBody>,
) -> Result<HttpResponse, ApiError> {
    let url = state
        .money
        .billing
        .portal(caller.user, body.into_inner().return_url)
        .await?;
    Ok(ok(PortalSession { url }))
}

#[derive(Serialize, ToSchema)]
pub struct WebhookReceived {
    received: bool,
    /// `Applied`, `Duplicate` (seen before: nothing changed) or `Ignored` (a type not acted on).
    outcome: &'static str,
}

/// Stripe's webhook: a delivery signed with the endpoint's secret (`Stripe-Signature`).
#[utoipa::path(
    tag = "billing",
    request_body(content = Object, content_type = "application/json", description = "A Stripe event, as Stripe sends it"),
    params(("Stripe-Signature" = String, Header, description = "t=<unix seconds>,v1=<HMAC-SHA256 hex>")),
    responses((status = 200, description = "Handled (or seen before)", body = Envelope<WebhookReceived>)),
    security(()),
)]
#[post("/webhooks/stripe")]
pub async fn stripe_webhook(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let header = req
        .headers()
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    let handled = state.money.billing.webhook(header, &body).await?;
    Ok(ok(WebhookReceived {
        received: true,
        outcome: match handled {
            Handled::Applied => "Applied",
            Handled::Duplicate => "Duplicate",
            Handled::Ignored => "Ignored",
        },
    }))
}
