-- Chat invites (accepting makes a participant) and notifications (the minimum the chat flow
-- needs: a row per notice, read or not).

CREATE TABLE chat_invites (
    id          BIGINT PRIMARY KEY,
    chat_id     BIGINT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    user_id     BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    inviter_id  BIGINT REFERENCES users (id) ON DELETE SET NULL,
    message     VARCHAR(4096),
    status      TEXT NOT NULL DEFAULT 'Pending' CHECK (status IN ('Pending', 'Accepted', 'Declined')),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT chat_invites_chat_user_key UNIQUE (chat_id, user_id)
);
-- "My pending invites".
CREATE INDEX chat_invites_user_idx ON chat_invites (user_id, id DESC) WHERE status = 'Pending';
CREATE TRIGGER chat_invites_updated_at BEFORE UPDATE ON chat_invites
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE notifications (
    id          BIGINT PRIMARY KEY,
    user_id     BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    category    TEXT NOT NULL,
    title       VARCHAR(256) NOT NULL,
    description VARCHAR(4096),
    link        VARCHAR(1024),
    is_read     BOOLEAN NOT NULL DEFAULT false,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX notifications_user_idx ON notifications (user_id, id DESC);
