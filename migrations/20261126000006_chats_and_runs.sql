-- Chats, their participants, and runs: the rooms of the WebSocket protocol. This migration holds
-- what joining a room needs (who created it, who takes part, who may read it); the chat and run
-- issues add their content (messages, invites, steps) beside it.

CREATE TABLE chats (
    id                          BIGINT PRIMARY KEY,
    public_id                   VARCHAR(12) NOT NULL,
    creator_id                  BIGINT REFERENCES users (id) ON DELETE SET NULL,
    team_id                     BIGINT REFERENCES teams (id) ON DELETE CASCADE,
    name                        VARCHAR(128) NOT NULL DEFAULT '',
    is_private                  BOOLEAN NOT NULL DEFAULT true,
    open_to_anyone_with_invite  BOOLEAN NOT NULL DEFAULT false,
    created_at                  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at                  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX chats_public_id_key ON chats (public_id);
CREATE INDEX chats_creator_id_idx ON chats (creator_id);
CREATE INDEX chats_team_id_idx ON chats (team_id);
CREATE TRIGGER chats_updated_at BEFORE UPDATE ON chats
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE chat_participants (
    id          BIGINT PRIMARY KEY,
    chat_id     BIGINT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    user_id     BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    has_unread  BOOLEAN NOT NULL DEFAULT false,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT chat_participants_chat_user_key UNIQUE (chat_id, user_id)
);
-- "Chats this user takes part in"; (chat_id, ...) is served by the unique constraint.
CREATE INDEX chat_participants_user_id_idx ON chat_participants (user_id);
CREATE TRIGGER chat_participants_updated_at BEFORE UPDATE ON chat_participants
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE runs (
    id          BIGINT PRIMARY KEY,
    public_id   VARCHAR(12) NOT NULL,
    user_id     BIGINT REFERENCES users (id) ON DELETE CASCADE,
    team_id     BIGINT REFERENCES teams (id) ON DELETE CASCADE,
    name        VARCHAR(128) NOT NULL DEFAULT '',
    status      TEXT NOT NULL DEFAULT 'Scheduled'
                CHECK (status IN ('Scheduled', 'InProgress', 'Paused', 'Completed', 'Failed', 'Cancelled')),
    is_private  BOOLEAN NOT NULL DEFAULT true,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT runs_owner_check CHECK (user_id IS NOT NULL OR team_id IS NOT NULL)
);
CREATE UNIQUE INDEX runs_public_id_key ON runs (public_id);
CREATE INDEX runs_user_id_idx ON runs (user_id);
CREATE INDEX runs_team_id_idx ON runs (team_id);
CREATE TRIGGER runs_updated_at BEFORE UPDATE ON runs
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
