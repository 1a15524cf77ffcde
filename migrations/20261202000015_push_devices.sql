-- Web Push subscriptions (the original's push_device): one per browser a user subscribed. The
-- push service's 404 or 410 for an endpoint deletes its row.
CREATE TABLE push_devices (
    id           BIGINT PRIMARY KEY,
    user_id      BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    endpoint     TEXT NOT NULL,
    p256dh       TEXT NOT NULL,
    auth         TEXT NOT NULL,
    name         VARCHAR(128),
    last_used_at TIMESTAMPTZ,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT push_devices_user_endpoint_key UNIQUE (user_id, endpoint)
);
