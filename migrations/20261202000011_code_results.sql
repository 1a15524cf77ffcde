-- `code` steps run as `sandbox-execution` jobs; a job stores its script's outcome here, keyed by
-- the step and its attempt, and wakes the run. Not in run_decisions: people answer those, and a
-- person must not be able to answer for a script.
CREATE TABLE run_code_results (
    run_id     BIGINT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    step_key   TEXT NOT NULL,
    attempt    INT NOT NULL,
    outcome    JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (step_key, attempt)
);
CREATE INDEX run_code_results_run ON run_code_results (run_id);
