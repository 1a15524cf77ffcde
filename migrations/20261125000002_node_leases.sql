-- Which running node holds which Snowflake worker id. Two live nodes with one worker id would
-- make colliding primary keys, so a node takes the lease for its node.worker_id at start-up,
-- renews it while it runs and deletes it on shutdown. A crashed node's lease simply expires.
CREATE TABLE node_leases (
    worker_id   SMALLINT PRIMARY KEY CHECK (worker_id BETWEEN 0 AND 4095),
    -- Random per process start, so a restarted node is told apart from its predecessor.
    instance_id TEXT NOT NULL,
    hostname    TEXT NOT NULL,
    acquired_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at  TIMESTAMPTZ NOT NULL
);
