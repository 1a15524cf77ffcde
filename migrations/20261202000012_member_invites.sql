-- Team invites (the original's member_invite): a member who may invite asks a person to join;
-- accepting makes them a member with the role and permissions the invite names.
CREATE TABLE member_invites (
    id                    BIGINT PRIMARY KEY,
    team_id               BIGINT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    user_id               BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    inviter_id            BIGINT REFERENCES users (id) ON DELETE SET NULL,
    message               VARCHAR(4096),
    will_be_admin         BOOLEAN NOT NULL DEFAULT false,
    will_have_permissions JSONB NOT NULL DEFAULT '[]',
    status                TEXT NOT NULL DEFAULT 'Pending'
                          CHECK (status IN ('Pending', 'Accepted', 'Declined')),
    created_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT member_invites_team_user_key UNIQUE (team_id, user_id)
);
-- "My pending invites" and "this team's pending invites".
CREATE INDEX member_invites_user_idx ON member_invites (user_id, id DESC) WHERE status = 'Pending';
CREATE INDEX member_invites_team_idx ON member_invites (team_id, id DESC) WHERE status = 'Pending';
CREATE TRIGGER member_invites_updated_at BEFORE UPDATE ON member_invites
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
