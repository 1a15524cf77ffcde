-- Billing through Stripe (issue 17): customers, payments, premium plans, and the webhook events
-- already handled (a delivery seen twice changes nothing the second time).
ALTER TABLE users ADD COLUMN stripe_customer_id VARCHAR(255) UNIQUE;

-- Every Stripe event handled, by its id: written in the transaction of its effects.
CREATE TABLE stripe_events (
    id          TEXT PRIMARY KEY,
    event_type  TEXT NOT NULL,
    received_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- A checkout session or an invoice, as Stripe reported it.
CREATE TABLE payments (
    id           TEXT PRIMARY KEY,
    user_id      BIGINT REFERENCES users (id) ON DELETE SET NULL,
    team_id      BIGINT REFERENCES teams (id) ON DELETE SET NULL,
    payment_type TEXT NOT NULL
                 CHECK (payment_type IN ('Credits', 'Donation', 'PremiumMonthly', 'PremiumYearly')),
    amount_cents BIGINT NOT NULL DEFAULT 0,
    currency     TEXT NOT NULL DEFAULT 'usd',
    status       TEXT NOT NULL CHECK (status IN ('Pending', 'Paid', 'Failed')),
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX payments_user_idx ON payments (user_id);
CREATE TRIGGER payments_updated_at BEFORE UPDATE ON payments
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- A person's premium plan: active while expires_at is NULL or in the future.
CREATE TABLE premium_plans (
    user_id         BIGINT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    payment_type    TEXT NOT NULL CHECK (payment_type IN ('PremiumMonthly', 'PremiumYearly')),
    subscription_id TEXT UNIQUE,
    enabled_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at      TIMESTAMPTZ,
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TRIGGER premium_plans_updated_at BEFORE UPDATE ON premium_plans
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
