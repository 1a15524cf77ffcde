-- Chat messages (a tree: parent_id + version_index), and credits (an account per user or team,
-- a ledger whose idempotency key makes every charge happen once).

ALTER TABLE chats ADD COLUMN config JSONB NOT NULL DEFAULT '{}';

CREATE TABLE chat_messages (
    id              BIGINT PRIMARY KEY,
    chat_id         BIGINT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    user_id         BIGINT REFERENCES users (id) ON DELETE SET NULL,
    parent_id       BIGINT REFERENCES chat_messages (id) ON DELETE SET NULL,
    version_index   INTEGER NOT NULL DEFAULT 0,
    text            TEXT NOT NULL CHECK (char_length(text) <= 32768),
    language        VARCHAR(8) NOT NULL DEFAULT 'en',
    config          JSONB NOT NULL DEFAULT '{}',
    -- A bot's answer that was stopped or broke off keeps what it had.
    status          TEXT NOT NULL DEFAULT 'Sent' CHECK (status IN ('Sent', 'Cancelled', 'Failed')),
    -- Set on bot answers: a retried job finds its answer instead of writing a second one.
    idempotency_key TEXT UNIQUE,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- A chat's messages, newest first (paging).
CREATE INDEX chat_messages_chat_id_idx ON chat_messages (chat_id, id DESC);
CREATE INDEX chat_messages_parent_id_idx ON chat_messages (parent_id);
CREATE TRIGGER chat_messages_updated_at BEFORE UPDATE ON chat_messages
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE credit_accounts (
    id          BIGINT PRIMARY KEY,
    user_id     BIGINT UNIQUE REFERENCES users (id) ON DELETE CASCADE,
    team_id     BIGINT UNIQUE REFERENCES teams (id) ON DELETE CASCADE,
    -- 1 US cent = 1,000,000 credits.
    balance     BIGINT NOT NULL DEFAULT 0,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT credit_accounts_one_owner CHECK ((user_id IS NULL) <> (team_id IS NULL))
);
CREATE TRIGGER credit_accounts_updated_at BEFORE UPDATE ON credit_accounts
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE credit_ledger_entries (
    id              BIGINT PRIMARY KEY,
    account_id      BIGINT NOT NULL REFERENCES credit_accounts (id) ON DELETE CASCADE,
    -- Signed: grants positive, charges negative.
    amount          BIGINT NOT NULL,
    kind            TEXT NOT NULL,
    source          TEXT,
    idempotency_key TEXT NOT NULL UNIQUE,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX credit_ledger_entries_account_idx ON credit_ledger_entries (account_id, id DESC);
