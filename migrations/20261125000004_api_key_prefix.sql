-- The visible part of an API key ("vrk_<prefix>_…"), so owners can tell keys apart in lists
-- while only a hash of the whole key is stored.
ALTER TABLE api_keys ADD COLUMN key_prefix VARCHAR(16) NOT NULL DEFAULT '';
