-- Refresh tokens for API clients (bearer tokens instead of the cookie). Each use rotates the
-- token: the current one is stored hashed, the one before it too, so presenting the previous
-- token again is recognised as reuse (it was stolen, or replayed) and revokes the session.
ALTER TABLE sessions
    ADD COLUMN refresh_hash TEXT,
    ADD COLUMN previous_refresh_hash TEXT;
