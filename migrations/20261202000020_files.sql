-- Uploaded files (issue 17): profile and banner images and chat attachments. A row is written
-- (Uploading, naming every object it will have) before its bytes are stored and marked Ready
-- after, so the orphan job can always find what a failed upload left behind.
CREATE TABLE files (
    id           BIGINT PRIMARY KEY,
    owner_id     BIGINT REFERENCES users (id) ON DELETE SET NULL,
    purpose      TEXT NOT NULL CHECK (purpose IN ('profile', 'banner', 'attachment')),
    -- An attachment's chat; NULL once the chat is gone (the orphan job then deletes it).
    chat_id      BIGINT REFERENCES chats (id) ON DELETE SET NULL,
    status       TEXT NOT NULL DEFAULT 'Uploading' CHECK (status IN ('Uploading', 'Ready')),
    content_type TEXT NOT NULL,
    extension    TEXT NOT NULL,
    size         BIGINT NOT NULL,
    width        INTEGER,
    height       INTEGER,
    -- [[width, height], ...]: stored as <id>_<W>x<H>.<extension> beside <id>.<extension>.
    variants     JSONB NOT NULL DEFAULT '[]',
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX files_chat_idx ON files (chat_id);
CREATE INDEX files_owner_idx ON files (owner_id);

ALTER TABLE users
    ADD COLUMN profile_image_id BIGINT REFERENCES files (id) ON DELETE SET NULL,
    ADD COLUMN banner_image_id  BIGINT REFERENCES files (id) ON DELETE SET NULL;
