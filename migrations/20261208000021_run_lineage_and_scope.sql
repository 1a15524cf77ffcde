-- Issue 34: a run started by a step of another run is that run's child, and every run keeps the
-- scope it was started with.
--
-- Lineage: `parent_run_id` is the run whose `action` step started it, `root_run_id` the run a
-- request started (NULL on that root itself), `depth` its distance from the root. A child counts
-- against the root's limits (its steps, time and credits are summed over the tree), its depth
-- is bounded by `runs.max_subroutine_depth`, and cancelling or pausing a run reaches its
-- descendants.
--
-- Scope: `api_key_id` is the key that started the run (NULL: a signed-in session), and
-- `permissions` that key's permissions when it did (NULL: a session, the person's own rights).
-- Action steps call the tools with exactly that scope (and no more than the key holds now); llm
-- steps hold and settle against the key's credit limits, as chat answers do.
ALTER TABLE runs
    ADD COLUMN parent_run_id BIGINT REFERENCES runs (id) ON DELETE CASCADE,
    ADD COLUMN root_run_id   BIGINT REFERENCES runs (id) ON DELETE CASCADE,
    ADD COLUMN depth         INTEGER NOT NULL DEFAULT 0 CHECK (depth >= 0),
    ADD COLUMN api_key_id    BIGINT REFERENCES api_keys (id) ON DELETE SET NULL,
    ADD COLUMN permissions   TEXT[],
    ADD CONSTRAINT runs_lineage_check
        CHECK ((parent_run_id IS NULL) = (root_run_id IS NULL) AND (depth = 0) = (parent_run_id IS NULL));
-- A tree's runs, summed before each of their steps; a run's children, for a cascading stop.
CREATE INDEX runs_root_run_id_idx ON runs (root_run_id) WHERE root_run_id IS NOT NULL;
CREATE INDEX runs_parent_run_id_idx ON runs (parent_run_id) WHERE parent_run_id IS NOT NULL;
