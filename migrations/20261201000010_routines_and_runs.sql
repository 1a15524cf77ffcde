-- Routines and runs (issue 12): routines as resource + resource_version (config JSON holding the
-- graph), and what a run needs to survive its node: a snapshot of the graph it executes, its
-- lease (owner, epoch, expiry), its steps with their outputs, its timeline of events, and the
-- answers given to its waits (kept even when they arrive before the wait began).

CREATE TABLE resources (
    id            BIGINT PRIMARY KEY,
    public_id     VARCHAR(12) NOT NULL,
    resource_type TEXT NOT NULL CHECK (resource_type IN ('Routine')),
    owner_id      BIGINT REFERENCES users (id) ON DELETE CASCADE,
    team_id       BIGINT REFERENCES teams (id) ON DELETE CASCADE,
    name          VARCHAR(128) NOT NULL,
    is_private    BOOLEAN NOT NULL DEFAULT true,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT resources_owner_check CHECK (owner_id IS NOT NULL OR team_id IS NOT NULL)
);
CREATE UNIQUE INDEX resources_public_id_key ON resources (public_id);
CREATE INDEX resources_owner_id_idx ON resources (owner_id);
CREATE INDEX resources_team_id_idx ON resources (team_id);
CREATE TRIGGER resources_updated_at BEFORE UPDATE ON resources
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE resource_versions (
    id                BIGINT PRIMARY KEY,
    resource_id       BIGINT NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    version_label     VARCHAR(32) NOT NULL,
    -- The original's kinds: RoutineMultiStep (a graph), RoutineGenerate, RoutineApi, ...
    resource_sub_type TEXT NOT NULL,
    config            JSONB NOT NULL,
    is_latest         BOOLEAN NOT NULL DEFAULT true,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT resource_versions_label_key UNIQUE (resource_id, version_label)
);
-- One latest version per resource.
CREATE UNIQUE INDEX resource_versions_latest_key ON resource_versions (resource_id) WHERE is_latest;
CREATE TRIGGER resource_versions_updated_at BEFORE UPDATE ON resource_versions
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

ALTER TABLE runs
    ADD COLUMN resource_version_id BIGINT REFERENCES resource_versions (id) ON DELETE SET NULL,
    -- The checked graph the run executes: editing the routine never changes a started run.
    ADD COLUMN snapshot            JSONB,
    ADD COLUMN inputs              JSONB NOT NULL DEFAULT '{}',
    ADD COLUMN outputs             JSONB,
    ADD COLUMN limits              JSONB NOT NULL DEFAULT '{}',
    ADD COLUMN status_reason       TEXT,
    -- What a person asked for (Paused, Cancelled); the owner acts on it at the next boundary.
    ADD COLUMN desired_status      TEXT CHECK (desired_status IN ('Paused', 'Cancelled')),
    ADD COLUMN idempotency_key     TEXT,
    ADD COLUMN request_hash        TEXT,
    ADD COLUMN credits_used        BIGINT NOT NULL DEFAULT 0,
    -- The timeline's next sequence number (events are numbered in the transaction that writes
    -- them, so the sequence is gapless per run).
    ADD COLUMN next_seq            BIGINT NOT NULL DEFAULT 1,
    ADD COLUMN lease_owner         INTEGER,
    ADD COLUMN lease_epoch         BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN lease_expires_at    TIMESTAMPTZ,
    -- A run waiting (timer, input, approval) holds no lease; `wake_at` is its timer.
    ADD COLUMN waiting_for         TEXT,
    ADD COLUMN wake_at             TIMESTAMPTZ,
    ADD COLUMN started_at          TIMESTAMPTZ,
    ADD COLUMN completed_at        TIMESTAMPTZ;
CREATE UNIQUE INDEX runs_idempotency_key ON runs (user_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
-- Runs whose lease expired while in progress: the sweeper's probe.
CREATE INDEX runs_lease_expires_idx ON runs (lease_expires_at) WHERE status = 'InProgress';
CREATE INDEX runs_wake_at_idx ON runs (wake_at) WHERE wake_at IS NOT NULL;

CREATE TABLE run_steps (
    id           BIGINT PRIMARY KEY,
    run_id       BIGINT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    node_id      TEXT NOT NULL,
    -- `<run>:<node>` (`:<index>` inside a map): the Idempotency-Key of its calls and the
    -- ledger key of its debit, the same on every attempt and every node.
    step_key     TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('InProgress', 'Completed', 'Failed', 'Skipped')),
    attempt      INTEGER NOT NULL DEFAULT 1,
    inputs       JSONB,
    outputs      JSONB,
    error        TEXT,
    credits      BIGINT NOT NULL DEFAULT 0,
    started_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    completed_at TIMESTAMPTZ,
    CONSTRAINT run_steps_step_key_key UNIQUE (step_key)
);
CREATE INDEX run_steps_run_id_idx ON run_steps (run_id);

CREATE TABLE run_events (
    run_id     BIGINT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq        BIGINT NOT NULL,
    event_type TEXT NOT NULL,
    data       JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, seq)
);

CREATE TABLE run_decisions (
    run_id      BIGINT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    key         TEXT NOT NULL,
    value       JSONB NOT NULL,
    answered_by BIGINT REFERENCES users (id) ON DELETE SET NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, key)
);
