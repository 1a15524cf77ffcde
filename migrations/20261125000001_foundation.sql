-- The first schema: accounts, sign-in, sessions, API keys, teams and their members.
-- Ids are Snowflake BIGINTs made by the server (never sequences), so rows can be created on any
-- node without a round trip. Handles and email addresses are unique case-insensitively through
-- indexes on lower(...), which needs no extension (citext would need CREATE EXTENSION rights).

CREATE FUNCTION set_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

CREATE TABLE users (
    id                 BIGINT PRIMARY KEY,
    public_id          VARCHAR(12) NOT NULL,
    handle             VARCHAR(16),
    name               VARCHAR(128) NOT NULL,
    is_bot             BOOLEAN NOT NULL DEFAULT false,
    bot_settings       JSONB,
    is_admin           BOOLEAN NOT NULL DEFAULT false,
    status             TEXT NOT NULL DEFAULT 'Unlocked'
                       CHECK (status IN ('Unlocked', 'SoftLocked', 'HardLocked', 'Deleted')),
    log_in_attempts    INTEGER NOT NULL DEFAULT 0,
    last_login_attempt TIMESTAMPTZ,
    languages          TEXT[] NOT NULL DEFAULT '{}',
    theme              TEXT,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT users_bot_settings_only_for_bots CHECK (is_bot OR bot_settings IS NULL)
);
CREATE UNIQUE INDEX users_public_id_key ON users (public_id);
CREATE UNIQUE INDEX users_handle_key ON users (lower(handle));
CREATE INDEX users_bots_idx ON users (id) WHERE is_bot;
CREATE TRIGGER users_updated_at BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- One row per way a user can sign in (today: 'Password').
CREATE TABLE user_auth (
    id              BIGINT PRIMARY KEY,
    user_id         BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider        TEXT NOT NULL CHECK (provider IN ('Password')),
    hashed_password TEXT,
    -- Single-use password reset code (hashed) and when it was issued.
    reset_code_hash TEXT,
    reset_code_at   TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT user_auth_user_provider_key UNIQUE (user_id, provider)
);
CREATE TRIGGER user_auth_updated_at BEFORE UPDATE ON user_auth
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE emails (
    id                     BIGINT PRIMARY KEY,
    user_id                BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email_address          VARCHAR(254) NOT NULL,
    verified_at            TIMESTAMPTZ,
    verification_code_hash TEXT,
    verification_code_at   TIMESTAMPTZ,
    created_at             TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at             TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX emails_address_key ON emails (lower(email_address));
CREATE INDEX emails_user_id_idx ON emails (user_id);
CREATE TRIGGER emails_updated_at BEFORE UPDATE ON emails
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- One row per device sign-in. A request past its access window is checked against this row.
CREATE TABLE sessions (
    id              BIGINT PRIMARY KEY,
    user_id         BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    user_auth_id    BIGINT REFERENCES user_auth (id) ON DELETE SET NULL,
    last_refresh_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at      TIMESTAMPTZ NOT NULL,
    revoked_at      TIMESTAMPTZ,
    device_info     TEXT,
    ip_address      INET,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- "This user's live sessions" (logoutAll, the session list).
CREATE INDEX sessions_user_live_idx ON sessions (user_id) WHERE revoked_at IS NULL;
-- The cleanup job deletes expired and revoked sessions by time.
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);
CREATE INDEX sessions_revoked_at_idx ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;
CREATE TRIGGER sessions_updated_at BEFORE UPDATE ON sessions
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE teams (
    id         BIGINT PRIMARY KEY,
    public_id  VARCHAR(12) NOT NULL,
    handle     VARCHAR(16),
    name       VARCHAR(128) NOT NULL,
    is_private BOOLEAN NOT NULL DEFAULT false,
    config     JSONB NOT NULL DEFAULT '{}',
    created_by BIGINT REFERENCES users (id) ON DELETE SET NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX teams_public_id_key ON teams (public_id);
CREATE UNIQUE INDEX teams_handle_key ON teams (lower(handle));
CREATE INDEX teams_created_by_idx ON teams (created_by);
CREATE TRIGGER teams_updated_at BEFORE UPDATE ON teams
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE members (
    id          BIGINT PRIMARY KEY,
    public_id   VARCHAR(12) NOT NULL,
    team_id     BIGINT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    user_id     BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    is_admin    BOOLEAN NOT NULL DEFAULT false,
    permissions JSONB NOT NULL DEFAULT '[]',
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT members_team_user_key UNIQUE (team_id, user_id)
);
CREATE UNIQUE INDEX members_public_id_key ON members (public_id);
-- "Teams this user belongs to"; (team_id, ...) is served by the unique constraint.
CREATE INDEX members_user_id_idx ON members (user_id);
CREATE TRIGGER members_updated_at BEFORE UPDATE ON members
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- API keys are shown once and stored only as a hash; exactly one owner, a user or a team.
CREATE TABLE api_keys (
    id            BIGINT PRIMARY KEY,
    key_hash      TEXT NOT NULL,
    name          VARCHAR(128) NOT NULL,
    permissions   TEXT[] NOT NULL DEFAULT '{ReadPublic}'
                  CHECK (permissions <@ ARRAY['ReadPublic', 'ReadPrivate', 'WritePrivate',
                                              'ReadAuth', 'WriteAuth']::TEXT[]),
    credits_used  BIGINT NOT NULL DEFAULT 0,
    limit_soft    BIGINT,
    limit_hard    BIGINT NOT NULL,
    stop_at_limit BOOLEAN NOT NULL DEFAULT true,
    disabled_at   TIMESTAMPTZ,
    last_used_at  TIMESTAMPTZ,
    user_id       BIGINT REFERENCES users (id) ON DELETE CASCADE,
    team_id       BIGINT REFERENCES teams (id) ON DELETE CASCADE,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT api_keys_one_owner CHECK ((user_id IS NULL) <> (team_id IS NULL)),
    CONSTRAINT api_keys_soft_below_hard CHECK (limit_soft IS NULL OR limit_soft <= limit_hard)
);
CREATE UNIQUE INDEX api_keys_key_hash_key ON api_keys (key_hash);
CREATE INDEX api_keys_user_id_idx ON api_keys (user_id) WHERE user_id IS NOT NULL;
CREATE INDEX api_keys_team_id_idx ON api_keys (team_id) WHERE team_id IS NOT NULL;
CREATE TRIGGER api_keys_updated_at BEFORE UPDATE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
