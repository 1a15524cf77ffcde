-- Team API keys (issue 16): a team's key is made by one of its admins and acts as them, within
-- the team, while they stay an admin; a user's key is its owner's.
ALTER TABLE api_keys
    ADD COLUMN created_by BIGINT REFERENCES users (id) ON DELETE CASCADE,
    ADD CONSTRAINT api_keys_team_key_maker CHECK (team_id IS NULL OR created_by IS NOT NULL);
UPDATE api_keys SET created_by = user_id WHERE created_by IS NULL;
