-- Durable background jobs (see docs/adr/0002). A job is a row: enqueued in the same transaction
-- as the write that causes it, claimed with FOR UPDATE SKIP LOCKED, locked while it runs (a
-- heartbeat extends the lock), completed in batches, retried with backoff, dead after its last
-- attempt. A job whose worker died is retried once its lock has expired.
CREATE TABLE jobs (
    id           BIGINT PRIMARY KEY,
    queue        TEXT NOT NULL,
    kind         TEXT NOT NULL,
    payload      JSONB NOT NULL DEFAULT '{}',
    -- Lower runs first; the original's base was 100.
    priority     INTEGER NOT NULL DEFAULT 100,
    state        TEXT NOT NULL DEFAULT 'available'
                 CHECK (state IN ('available', 'running', 'completed', 'retrying', 'dead', 'cancelled')),
    attempt      INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL DEFAULT 5 CHECK (max_attempts >= 1),
    run_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    locked_by    TEXT,
    locked_until TIMESTAMPTZ,
    last_error   TEXT,
    -- De-duplication: at most one job per key until the job is pruned (the scheduler uses
    -- "schedule:<name>:<tick>" so a tick runs once however many nodes are up).
    unique_key   TEXT,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at   TIMESTAMPTZ,
    finished_at  TIMESTAMPTZ
);
-- The claim query: due jobs of one queue in priority order.
CREATE INDEX jobs_claim_idx ON jobs (queue, priority, run_at, id) WHERE state IN ('available', 'retrying');
-- The rescue sweep: running jobs by lock expiry.
CREATE INDEX jobs_locked_until_idx ON jobs (locked_until) WHERE state = 'running';
-- Health and admin counts of what is not finished, and the dead-letter list.
CREATE INDEX jobs_open_state_idx ON jobs (queue, state) WHERE state IN ('available', 'retrying', 'running', 'dead');
-- The prune job: finished jobs by age.
CREATE INDEX jobs_finished_at_idx ON jobs (finished_at) WHERE state IN ('completed', 'cancelled');
CREATE UNIQUE INDEX jobs_unique_key ON jobs (unique_key) WHERE unique_key IS NOT NULL;
