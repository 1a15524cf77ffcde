-- Data exports (the original's export-user-data queue): a JSON archive of one user's data,
-- made by a job in chunks (so large accounts stream and any node can serve the download), and
-- downloadable once by its owner; the chunks are deleted when it is downloaded.
CREATE TABLE user_exports (
    id            BIGINT PRIMARY KEY,
    user_id       BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    status        TEXT NOT NULL DEFAULT 'Pending'
                  CHECK (status IN ('Pending', 'Ready', 'Failed', 'Downloaded')),
    bytes         BIGINT NOT NULL DEFAULT 0,
    error         TEXT,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    ready_at      TIMESTAMPTZ,
    downloaded_at TIMESTAMPTZ
);
-- At most one export in the making per user.
CREATE UNIQUE INDEX user_exports_one_pending ON user_exports (user_id) WHERE status = 'Pending';
CREATE TABLE user_export_chunks (
    export_id BIGINT NOT NULL REFERENCES user_exports (id) ON DELETE CASCADE,
    seq       INTEGER NOT NULL,
    data      BYTEA NOT NULL,
    PRIMARY KEY (export_id, seq)
);
