-- Data imports (the original's import-user-data queue): an archive of a data export, checked
-- when it is sent, held here until the job recreates it under the importer, then dropped.
CREATE TABLE user_imports (
    id          BIGINT PRIMARY KEY,
    user_id     BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    status      TEXT NOT NULL DEFAULT 'Pending' CHECK (status IN ('Pending', 'Done', 'Failed')),
    bytes       BIGINT NOT NULL,
    -- The archive until it is recreated (or refused); NULL after.
    archive     BYTEA,
    error       TEXT,
    -- What was recreated: {routines, versions, chats, messages, runs}.
    counts      JSONB,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at TIMESTAMPTZ
);
-- At most one import under way per user.
CREATE UNIQUE INDEX user_imports_one_pending ON user_imports (user_id) WHERE status = 'Pending';
