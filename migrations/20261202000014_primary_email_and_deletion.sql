-- When an account was deleted (status 'Deleted'); the purge job removes it days later.
ALTER TABLE users ADD COLUMN deleted_at TIMESTAMPTZ;

-- The email address a user picked as primary (notices by email go there). At most one per user;
-- without one, the oldest verified address serves.
ALTER TABLE emails ADD COLUMN is_primary BOOLEAN NOT NULL DEFAULT false;
CREATE UNIQUE INDEX emails_one_primary_per_user ON emails (user_id) WHERE is_primary;
