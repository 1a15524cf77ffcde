-- Trust (issue 10): credits never go below zero, worst-case holds while an answer is queued,
-- indexes for the code lookups and for numbering sibling messages.

-- A balance never goes below zero. NOT VALID: rows overdrawn before this fix stay readable;
-- every new write is checked.
ALTER TABLE credit_accounts
    ADD CONSTRAINT credit_accounts_balance_not_negative CHECK (balance >= 0) NOT VALID;

-- The worst case of a queued bot answer, taken from the balance (and added to the API key's
-- spending) when the answer is queued, settled against the real cost when it ends. `key` is the
-- answer's key (also its job's unique key), so a hold is settled or released exactly once.
CREATE TABLE credit_holds (
    key         TEXT PRIMARY KEY,
    account_id  BIGINT NOT NULL REFERENCES credit_accounts (id) ON DELETE CASCADE,
    api_key_id  BIGINT REFERENCES api_keys (id) ON DELETE SET NULL,
    amount      BIGINT NOT NULL CHECK (amount >= 0),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX credit_holds_created_at_idx ON credit_holds (created_at);

-- Reset and verification codes are looked up by their hash.
CREATE INDEX user_auth_reset_code_hash_idx ON user_auth (reset_code_hash)
    WHERE reset_code_hash IS NOT NULL;
CREATE INDEX emails_verification_code_hash_idx ON emails (verification_code_hash)
    WHERE verification_code_hash IS NOT NULL;

-- The next version of a reply is the highest sibling's + 1: one index probe, not a count.
CREATE INDEX chat_messages_siblings_idx ON chat_messages (chat_id, parent_id, version_index DESC);

-- Failed sign-ins per (account, client address): a guesser is slowed where it guesses from, and
-- the owner signing in from elsewhere is not locked out by it.
CREATE TABLE login_failures (
    user_id         BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client          TEXT NOT NULL,
    failures        INTEGER NOT NULL DEFAULT 0,
    last_failure_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    locked_until    TIMESTAMPTZ,
    PRIMARY KEY (user_id, client)
);
CREATE INDEX login_failures_last_failure_at_idx ON login_failures (last_failure_at);

-- A chat "open to anyone with an invite" is opened by its invite link's secret, not by its id
-- (ids are time-ordered and guessable). Managers see the secret; turning the option off clears
-- it, so old links stop working.
ALTER TABLE chats ADD COLUMN invite_secret TEXT;
UPDATE chats SET invite_secret = md5(random()::TEXT || clock_timestamp()::TEXT || id::TEXT)
 WHERE open_to_anyone_with_invite;

-- The transactional outbox: a write's room events, committed with it, published afterwards in
-- `seq` order by one relay per room (src/outbox.rs), and deleted once published. `data` is JSON
-- (not JSONB) so an event's bytes are what the writer made.
CREATE TABLE outbox_events (
    seq          BIGSERIAL PRIMARY KEY,
    room         TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    event_type   TEXT NOT NULL,
    data         JSON NOT NULL,
    timestamp_ms BIGINT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX outbox_events_room_seq_idx ON outbox_events (room, seq);
CREATE INDEX outbox_events_created_at_idx ON outbox_events (created_at);
