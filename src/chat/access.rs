//! Who may do what with a chat — the one place it is decided, for REST handlers and for joining
//! the chat's WebSocket room alike.
//!
//! - read (see the chat, its messages, join its room): its creator, its participants, members of
//!   its team, and anyone (even signed out, or an API key with only ReadPublic) when it is not
//!   private. A chat open to anyone with an invite is joined with its invite secret
//!   (`POST /chat/{id}/join`), which makes the caller a participant; its id alone opens nothing;
//! - write (post messages, type, cancel a bot, invite): its creator, its participants, and
//!   members of its team who hold `WriteChats` (or are admins);
//! - manage (rename, change who may join, delete, remove participants): its creator, and
//!   members of its team who hold `ManageChats` (or are admins).
//!
//! A team chat's rights come from the team: its creator holds a creator's rights only while a
//! member of the team (a removed member is also taken off its participants, `teams::members`),
//! so leaving or being removed from a team leaves nothing behind in its chats.
//!
//! The team permissions are `teams::access::TeamPermission`, decided there; this module reads
//! them in SQL (a test keeps the names equal).

use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};

use crate::ids::{ChatId, UserId};

#[derive(Debug, Clone, Copy)]
pub struct ChatAccess {
    pub creator: bool,
    pub participant: bool,
    pub team_member: bool,
    /// A member of its team who may write in team chats.
    pub team_writer: bool,
    /// A member of its team who may manage team chats.
    pub team_manager: bool,
    pub is_private: bool,
    pub open_to_anyone_with_invite: bool,
    pub signed_in: bool,
}

impl ChatAccess {
    pub fn can_read(&self) -> bool {
        !self.is_private || self.creator || self.participant || self.team_member
    }

    pub fn can_join_room(&self) -> bool {
        self.signed_in && self.can_read()
    }

    pub fn can_write(&self) -> bool {
        self.creator || self.participant || self.team_writer
    }

    pub fn can_manage(&self) -> bool {
        self.creator || self.team_manager
    }
}

/// What a route needs of a chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Read,
    Write,
    Manage,
}

impl ChatAccess {
    /// Whether this access covers `need`.
    pub fn allows(&self, need: Need) -> bool {
        match need {
            Need::Read => self.can_read(),
            Need::Write => self.can_write(),
            Need::Manage => self.can_manage(),
        }
    }
}

/// What decides access, as columns of a query on `chats c` with the user as `$2`: the one
/// definition both [`chat_access`] and reads that check access in the same statement use.
///
/// The caller's membership of the chat's team is one probe of `members` (unique on team and
/// user, so at most one row) returning bits, not one `EXISTS` per permission: on the page GET
/// that is PostgreSQL's most frequent statement, two index probes fewer per request. Whether the
/// chat is a team's is a bit of the same column (a creator's rights there need the membership).
pub(crate) const ACCESS_COLUMNS: &str =
    "c.creator_id IS NOT DISTINCT FROM $2 AND $2 IS NOT NULL AS a_creator,
     EXISTS (SELECT 1 FROM chat_participants p WHERE p.chat_id = c.id AND p.user_id = $2)
        AS a_participant,
     CASE WHEN c.team_id IS NULL THEN 0 ELSE 8 END
     | COALESCE((SELECT 1
                 | CASE WHEN m.is_admin OR m.permissions ? 'WriteChats' THEN 2 ELSE 0 END
                 | CASE WHEN m.is_admin OR m.permissions ? 'ManageChats' THEN 4 ELSE 0 END
               FROM members m WHERE m.team_id = c.team_id AND m.user_id = $2), 0) AS a_team,
     c.is_private AS a_private, c.open_to_anyone_with_invite AS a_open";

/// How many columns [`ACCESS_COLUMNS`] has: a statement's own columns start after them.
pub(crate) const ACCESS_COLUMN_COUNT: usize = 5;

/// The bits of `a_team`.
const TEAM_MEMBER: i32 = 1;
const TEAM_WRITER: i32 = 2;
const TEAM_MANAGER: i32 = 4;
/// The chat is a team's.
const TEAM_CHAT: i32 = 8;

/// The access read from a row that has [`ACCESS_COLUMNS`].
pub(crate) fn access_from_row(
    row: &PgRow,
    user: Option<UserId>,
) -> Result<ChatAccess, sqlx::Error> {
    let team: i32 = row.try_get("a_team")?;
    let made_it: bool = row.try_get("a_creator")?;
    Ok(ChatAccess {
        // Having made a team chat grants nothing once out of the team.
        creator: made_it && (team & TEAM_CHAT == 0 || team & TEAM_MEMBER != 0),
        participant: row.try_get("a_participant")?,
        team_member: team & TEAM_MEMBER != 0,
        team_writer: team & TEAM_WRITER != 0,
        team_manager: team & TEAM_MANAGER != 0,
        is_private: row.try_get("a_private")?,
        open_to_anyone_with_invite: row.try_get("a_open")?,
        signed_in: user.is_some(),
    })
}

/// What `user` (None: signed out) may do with `chat`; `None` when the chat does not exist.
pub async fn chat_access(
    pool: &PgPool,
    chat: ChatId,
    user: Option<UserId>,
) -> Result<Option<ChatAccess>, sqlx::Error> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {ACCESS_COLUMNS} FROM chats c WHERE c.id = $1"
    )))
    .bind(chat)
    .bind(user)
    .fetch_optional(pool)
    .await?;
    row.map(|row| access_from_row(&row, user)).transpose()
}

#[cfg(test)]
mod tests {
    use crate::teams::TeamPermission;

    #[test]
    fn the_team_permissions_named_in_sql_are_the_teams_own() {
        for p in [TeamPermission::WriteChats, TeamPermission::ManageChats] {
            assert!(super::ACCESS_COLUMNS.contains(&format!("'{}'", p.as_str())));
        }
    }

    #[test]
    fn the_access_column_count_is_that_of_the_access_columns() {
        let named = super::ACCESS_COLUMNS.matches(" AS a_").count();
        assert_eq!(named, super::ACCESS_COLUMN_COUNT);
    }
}
