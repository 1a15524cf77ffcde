-- Issue 34. A team chat's rights come from the team: a member removed from a team is taken off
-- its chats when removed. Creators removed before that rule kept the seat they got by making
-- the chat; take it away (a seat a guest got by an invite is left as it is).
DELETE FROM chat_participants p USING chats c
 WHERE p.chat_id = c.id AND c.team_id IS NOT NULL AND p.user_id = c.creator_id
   AND NOT EXISTS (SELECT 1 FROM members m WHERE m.team_id = c.team_id AND m.user_id = p.user_id);

-- An invite can be withdrawn: by an admin of its team (a manager of its chat) or its inviter, and
-- voided when its inviter leaves the team. It is kept as `Withdrawn` so its invitee is told.
ALTER TABLE chat_invites DROP CONSTRAINT chat_invites_status_check,
    ADD CONSTRAINT chat_invites_status_check
        CHECK (status IN ('Pending', 'Accepted', 'Declined', 'Withdrawn'));
ALTER TABLE member_invites DROP CONSTRAINT member_invites_status_check,
    ADD CONSTRAINT member_invites_status_check
        CHECK (status IN ('Pending', 'Accepted', 'Declined', 'Withdrawn'));

-- Exports: one outstanding per person (Pending, or Ready and not yet downloaded); a Ready archive
-- not downloaded in time expires (exports.ready_ttl_secs): `Expired`, its chunks deleted.
ALTER TABLE user_exports DROP CONSTRAINT user_exports_status_check,
    ADD CONSTRAINT user_exports_status_check
        CHECK (status IN ('Pending', 'Ready', 'Failed', 'Downloaded', 'Expired'));
-- Before the rule a person could have several: the newest stays, the others expire.
WITH extra AS (
    UPDATE user_exports e SET status = 'Expired'
     WHERE e.status IN ('Pending', 'Ready')
       AND EXISTS (SELECT 1 FROM user_exports n
                    WHERE n.user_id = e.user_id AND n.status IN ('Pending', 'Ready')
                      AND n.id > e.id)
    RETURNING e.id)
DELETE FROM user_export_chunks WHERE export_id IN (SELECT id FROM extra);
DROP INDEX user_exports_one_pending;
CREATE UNIQUE INDEX user_exports_one_outstanding ON user_exports (user_id)
    WHERE status IN ('Pending', 'Ready');
-- The expiry job's look-up.
CREATE INDEX user_exports_ready_idx ON user_exports (ready_at) WHERE status = 'Ready';
