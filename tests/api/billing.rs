//! Billing against a fake Stripe (wiremock, answering with Stripe's real shapes) and webhooks
//! signed by Stripe's own library (npm `stripe`, `webhooks.generateTestHeaderString`), so the
//! verifier is checked against Stripe's signer: a credits checkout, its webhook adding credits
//! once however often it is delivered, tampered, stale and foreign signatures refused, premium
//! granted once a month across simultaneous jobs, and billing off without a key.

use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::chat::{get, post};
use crate::helpers::{Reply, SendReply, TestApp, spawn_app, spawn_app_with, wait_until};
use crate::ws::user;

const SECRET: &str = "whsec_test_vrooli";

fn node_dir() -> String {
    std::env::var("VROOLI_NODE_DIR").unwrap_or_else(|_| {
        format!(
            "{}/.cache/vrooli-rs/node",
            std::env::var("HOME").unwrap_or_default()
        )
    })
}

/// `Stripe-Signature` for `payload` as Stripe's library makes it.
fn stripe_signature(payload: &str, secret: &str, timestamp: i64) -> String {
    let script = "const Stripe = require('stripe'); const s = new Stripe('sk_test_sign'); \
        process.stdout.write(s.webhooks.generateTestHeaderString({payload: process.env.PAYLOAD, \
        secret: process.env.SECRET, timestamp: Number(process.env.TS)}));";
    let out = Command::new("node")
        .arg("-e")
        .arg(script)
        .current_dir(node_dir())
        .env("PAYLOAD", payload)
        .env("SECRET", secret)
        .env("TS", timestamp.to_string())
        .output()
        .expect("node runs (scripts/test.sh installs npm stripe)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A fake Stripe: customers, checkout and portal sessions, balance.
async fn fake_stripe() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/customers"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"id": "cus_test_1", "object": "customer"})),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/checkout/sessions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "cs_test_1", "object": "checkout.session",
            "url": "https://checkout.stripe.com/c/pay/cs_test_1"})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/billing_portal/sessions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "bps_1", "object": "billing_portal.session",
            "url": "https://billing.stripe.com/p/session/test_1"})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/balance"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"object": "balance", "available": []})),
        )
        .mount(&server)
        .await;
    server
}

async fn billing_app(stripe: &MockServer) -> TestApp {
    let uri = stripe.uri();
    spawn_app_with(
        move |s| {
            s.stripe.secret_key = "sk_test_vrooli".to_string().into();
            s.stripe.webhook_secret = SECRET.to_string().into();
            s.stripe.api_url = uri;
            s.stripe.prices.premium_monthly = "price_monthly_test".into();
            s.stripe.prices.premium_yearly = "price_yearly_test".into();
        },
        None,
    )
    .await
}

async fn deliver(app: &TestApp, payload: &str, signature: &str) -> Reply {
    app.client
        .post(app.url("/webhooks/stripe"))
        .header("content-type", "application/json")
        .header("stripe-signature", signature)
        .body(payload.to_owned())
        .reply()
        .await
}

fn event(id: &str, kind: &str, object: Value) -> String {
    json!({"id": id, "object": "event", "type": kind, "api_version": "2022-11-15",
           "created": now(), "livemode": false, "data": {"object": object}})
    .to_string()
}

fn code(reply: &Reply) -> Value {
    reply.body["errors"][0]["code"].clone()
}

async fn balance(app: &TestApp, who: &crate::ws::User) -> String {
    let reply = get(app, "/credits", Some(who)).await;
    reply.body["data"]["balance"].as_str().unwrap().to_owned()
}

/// The form fields of the requests the fake got on `route`.
async fn forms(stripe: &MockServer, route: &str) -> Vec<Vec<(String, String)>> {
    stripe
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.url.path() == route)
        .map(|r| {
            String::from_utf8_lossy(&r.body)
                .split('&')
                .filter_map(|pair| pair.split_once('='))
                .map(|(k, v)| (form_decode(k), form_decode(v)))
                .collect()
        })
        .collect()
}

/// `application/x-www-form-urlencoded` decoding (`+` is a space, `%XX` a byte).
fn form_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn field<'a>(form: &'a [(String, String)], key: &str) -> Option<&'a str> {
    form.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn a_credits_checkout_and_its_webhook_add_credits_once() {
    let stripe = fake_stripe().await;
    let app = billing_app(&stripe).await;
    let sam = user(&app, "Sam").await;
    let before: i64 = balance(&app, &sam).await.parse().unwrap();

    let bad = post(
        &app,
        "/create-checkout-session",
        &sam,
        json!({"variant": "Credits", "amount": 5}),
    )
    .await;
    assert_eq!((bad.status, code(&bad)), (422, json!("InvalidAmount")));
    let Reply { status, body, .. } = post(
        &app,
        "/create-checkout-session",
        &sam,
        json!({"variant": "Credits", "amount": 500}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"]["url"],
        "https://checkout.stripe.com/c/pay/cs_test_1"
    );
    let sent = forms(&stripe, "/v1/checkout/sessions").await;
    let form = &sent[0];
    assert_eq!(field(form, "mode"), Some("payment"));
    assert_eq!(field(form, "metadata[paymentType]"), Some("Credits"));
    assert_eq!(field(form, "metadata[userId]"), Some(sam.id.as_str()));
    assert_eq!(field(form, "client_reference_id"), Some(sam.id.as_str()));
    assert_eq!(
        field(form, "line_items[0][price_data][unit_amount]"),
        Some("500")
    );
    assert_eq!(field(form, "customer"), Some("cus_test_1"));
    let customers = forms(&stripe, "/v1/customers").await;
    assert_eq!(
        field(&customers[0], "metadata[userId]"),
        Some(sam.id.as_str())
    );

    // Stripe says it is paid: 500 cents × 10⁶ credits, once.
    let paid = event(
        "evt_paid_1",
        "checkout.session.completed",
        json!({"id": "cs_test_1", "object": "checkout.session", "mode": "payment",
               "payment_status": "paid", "status": "complete", "amount_subtotal": 500,
               "amount_total": 500, "currency": "usd", "customer": "cus_test_1",
               "client_reference_id": sam.id, "metadata": {"paymentType": "Credits", "userId": sam.id}}),
    );
    let signature = stripe_signature(&paid, SECRET, now());
    let first = deliver(&app, &paid, &signature).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.body["data"]["outcome"], "Applied");
    let after: i64 = balance(&app, &sam).await.parse().unwrap();
    assert_eq!(after - before, 500 * 1_000_000);
    // Delivered again (Stripe retries): nothing changes.
    let again = deliver(&app, &paid, &signature).await;
    assert_eq!(again.body["data"]["outcome"], "Duplicate", "{}", again.body);
    // The same session in another event (a replay under a new id) is not paid twice either.
    let replayed = paid.replace("evt_paid_1", "evt_paid_2");
    let other = deliver(&app, &replayed, &stripe_signature(&replayed, SECRET, now())).await;
    assert_eq!(other.status, 200, "{}", other.body);
    assert_eq!(balance(&app, &sam).await.parse::<i64>().unwrap(), after);
    let status: String = sqlx::query_scalar("SELECT status FROM payments WHERE id = 'cs_test_1'")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(status, "Paid");

    // Tampered, stale, future, foreign-signed, unsigned: refused, nothing changes.
    let tampered = paid.replace("\"amount_subtotal\":500", "\"amount_subtotal\":90000");
    let stale = stripe_signature(&paid, SECRET, now() - 301);
    // Well past the tolerance: the server's clock may tick a second between signing and checking.
    let future = stripe_signature(&paid, SECRET, now() + 310);
    let foreign = stripe_signature(&paid, "whsec_someone_else", now());
    for (payload, signature) in [
        (tampered.as_str(), signature.as_str()),
        (paid.as_str(), stale.as_str()),
        (paid.as_str(), future.as_str()),
        (paid.as_str(), foreign.as_str()),
        (paid.as_str(), "t=1,v1=00"),
        (paid.as_str(), ""),
    ] {
        let refused = deliver(&app, payload, signature).await;
        assert_eq!(
            (refused.status, code(&refused)),
            (400, json!("InvalidSignature")),
            "{signature}: {}",
            refused.body
        );
    }
    assert_eq!(balance(&app, &sam).await.parse::<i64>().unwrap(), after);

    // The portal opens for a customer, and returns only to our own pages.
    let portal = post(&app, "/create-portal-session", &sam, json!({})).await;
    assert_eq!(portal.status, 200, "{}", portal.body);
    let elsewhere = post(
        &app,
        "/create-portal-session",
        &sam,
        json!({"returnUrl": "https://evil.example/"}),
    )
    .await;
    assert_eq!(
        (elsewhere.status, code(&elsewhere)),
        (422, json!("InvalidReturnUrl"))
    );
    let health = app.client.get(app.url("/healthcheck")).reply().await;
    assert_eq!(
        health.body["services"]["stripe"]["status"], "Operational",
        "{}",
        health.body
    );
}

#[tokio::test]
async fn premium_is_granted_once_a_month_and_ends_with_its_subscription() {
    let stripe = fake_stripe().await;
    let app = billing_app(&stripe).await;
    let kim = user(&app, "Kim").await;
    let Reply { status, body, .. } = post(
        &app,
        "/create-checkout-session",
        &kim,
        json!({"variant": "PremiumMonthly"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let form = &forms(&stripe, "/v1/checkout/sessions").await[0];
    assert_eq!(field(form, "mode"), Some("subscription"));
    assert_eq!(
        field(form, "line_items[0][price]"),
        Some("price_monthly_test")
    );
    let before: i64 = balance(&app, &kim).await.parse().unwrap();

    let completed = event(
        "evt_sub_1",
        "checkout.session.completed",
        json!({"id": "cs_sub_1", "object": "checkout.session", "mode": "subscription",
               "payment_status": "paid", "amount_subtotal": 1000, "amount_total": 1000,
               "currency": "usd", "customer": "cus_test_1", "subscription": "sub_test_1",
               "client_reference_id": kim.id,
               "metadata": {"paymentType": "PremiumMonthly", "userId": kim.id}}),
    );
    let reply = deliver(
        &app,
        &completed,
        &stripe_signature(&completed, SECRET, now()),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let granted: i64 = balance(&app, &kim).await.parse().unwrap();
    assert_eq!(granted - before, 1_500_000_000, "the first month at once");

    // The monthly job, on two nodes at the same instant: this month is already granted.
    let jobs = vrooli::jobs::JobStore::new(
        app.db.pool.clone(),
        std::sync::Arc::new(vrooli::ids::Snowflake::new(98).unwrap()),
        std::sync::Arc::new(vrooli::jobs::SystemClock),
        "billing-test",
        5,
    );
    for _ in 0..2 {
        jobs.enqueue(vrooli::jobs::NewJob::new(
            vrooli::jobs::Queue::Maintenance,
            "billing.grant-premium-credits",
            json!({}),
        ))
        .await
        .unwrap();
    }
    wait_until(Duration::from_secs(20), "both grant jobs ran", || async {
        let done: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM jobs WHERE kind = 'billing.grant-premium-credits'
              AND state = 'completed'",
        )
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
        done == 2
    })
    .await;
    assert_eq!(balance(&app, &kim).await.parse::<i64>().unwrap(), granted);
    // One grant in all: the checkout's, for this month.
    let grants: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM credit_ledger_entries WHERE idempotency_key LIKE 'premium:%'",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(grants, 1);

    // The subscription ends: the plan expires at its end.
    let ended_at = now() - 60;
    let deleted = event(
        "evt_sub_2",
        "customer.subscription.deleted",
        json!({"id": "sub_test_1", "object": "subscription", "status": "canceled",
               "customer": "cus_test_1", "ended_at": ended_at,
               "metadata": {"userId": kim.id, "paymentType": "PremiumMonthly"},
               "items": {"data": [{"price": {"id": "price_monthly_test"},
                                   "current_period_end": ended_at}]}}),
    );
    let reply = deliver(&app, &deleted, &stripe_signature(&deleted, SECRET, now())).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let active: bool = sqlx::query_scalar(
        "SELECT expires_at IS NULL OR expires_at > now() FROM premium_plans WHERE user_id = $1::BIGINT",
    )
    .bind(&kim.id)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert!(!active, "the plan ended with its subscription");

    // A team's credits are bought by its admins only.
    let Reply { body, .. } = post(
        &app,
        "/team",
        &kim,
        json!({"name": "Crew", "isPrivate": false}),
    )
    .await;
    let team = body["data"]["id"].as_str().unwrap().to_owned();
    let lee = user(&app, "Lee").await;
    let refused = post(
        &app,
        "/create-checkout-session",
        &lee,
        json!({"variant": "Credits", "amount": 500, "teamId": team}),
    )
    .await;
    assert_eq!(
        (refused.status, code(&refused)),
        (403, json!("NotAllowed")),
        "{}",
        refused.body
    );
}

#[tokio::test]
async fn without_a_key_billing_is_off_and_the_webhook_refuses_everything() {
    let app = spawn_app().await;
    let sam = user(&app, "Sam").await;
    let checkout = post(
        &app,
        "/create-checkout-session",
        &sam,
        json!({"variant": "Credits", "amount": 500}),
    )
    .await;
    assert_eq!(
        (checkout.status, code(&checkout)),
        (503, json!("BillingNotConfigured"))
    );
    let portal = post(&app, "/create-portal-session", &sam, json!({})).await;
    assert_eq!(
        (portal.status, code(&portal)),
        (503, json!("BillingNotConfigured"))
    );
    let payload = event("evt_1", "checkout.session.completed", json!({"id": "cs_1"}));
    let hook = deliver(&app, &payload, &stripe_signature(&payload, SECRET, now())).await;
    assert_eq!(
        (hook.status, code(&hook)),
        (503, json!("BillingNotConfigured"))
    );
    let health = app.client.get(app.url("/healthcheck")).reply().await;
    // Billing off is a configuration, not a fault.
    assert_eq!(
        health.body["services"]["stripe"]["status"], "Operational",
        "{}",
        health.body
    );
}
