//! What a member may do in a team — the one place it is decided (team chats read the same
//! rules through `chat::access`, which names these permissions in its SQL).
//!
//! - an **admin** (`members.is_admin`) may do everything: delete the team, make and unmake
//!   admins, remove admins;
//! - any other member may do what their `members.permissions` list names:
//!   `UpdateTeam` (name, handle, privacy), `InviteMembers`, `ManageMembers` (change the
//!   permissions of members who are not admins, remove them), `CreateChats` (team chats),
//!   `WriteChats` (post in team chats, invite to them), `ManageChats` (rename, delete, remove
//!   participants of team chats), `ManageRoutines` (make the team's routines, add and edit their
//!   versions: `routines::access`), `StartRuns` (start runs as the team, paid by its credits),
//!   `ManageRuns` (cancel, pause, resume, answer and rename the team's runs, not only one's
//!   own: `runs::access`);
//! - every member may read the team, its members and its chats, and may leave;
//! - a stranger may read a team that is not private, and nothing else: a private team is not
//!   found for them.
//!
//! Nobody grants what they do not hold: an invite or a change of permissions by a member who
//! is not an admin may only name permissions that member has.

use serde::{Deserialize, Serialize};

/// One thing a member who is not an admin may be allowed.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
pub enum TeamPermission {
    UpdateTeam,
    InviteMembers,
    ManageMembers,
    CreateChats,
    WriteChats,
    ManageChats,
    ManageRoutines,
    StartRuns,
    ManageRuns,
}

impl TeamPermission {
    pub const ALL: [TeamPermission; 9] = [
        TeamPermission::UpdateTeam,
        TeamPermission::InviteMembers,
        TeamPermission::ManageMembers,
        TeamPermission::CreateChats,
        TeamPermission::WriteChats,
        TeamPermission::ManageChats,
        TeamPermission::ManageRoutines,
        TeamPermission::StartRuns,
        TeamPermission::ManageRuns,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TeamPermission::UpdateTeam => "UpdateTeam",
            TeamPermission::InviteMembers => "InviteMembers",
            TeamPermission::ManageMembers => "ManageMembers",
            TeamPermission::CreateChats => "CreateChats",
            TeamPermission::WriteChats => "WriteChats",
            TeamPermission::ManageChats => "ManageChats",
            TeamPermission::ManageRoutines => "ManageRoutines",
            TeamPermission::StartRuns => "StartRuns",
            TeamPermission::ManageRuns => "ManageRuns",
        }
    }
}

/// What a new member holds when their invite names nothing: they may talk in team chats.
pub const DEFAULT_PERMISSIONS: &[TeamPermission] = &[TeamPermission::WriteChats];

/// A member's standing in a team, or a stranger's (`member` false).
#[derive(Debug, Clone, Default)]
pub struct TeamAccess {
    pub member: bool,
    pub admin: bool,
    pub permissions: Vec<TeamPermission>,
    pub is_private: bool,
}

impl TeamAccess {
    pub fn can_read(&self) -> bool {
        self.member || !self.is_private
    }

    /// Whether this member may do `what` (admins may do everything).
    pub fn can(&self, what: TeamPermission) -> bool {
        self.admin || (self.member && self.permissions.contains(&what))
    }

    /// Whether this member may hand out `granted` (an invite, a change of permissions).
    pub fn may_grant(&self, granted: &[TeamPermission]) -> bool {
        self.admin || granted.iter().all(|p| self.can(*p))
    }
}

/// Stored permissions as read back (unknown names, from an older version, are dropped).
pub fn parse_stored(value: &serde_json::Value) -> Vec<TeamPermission> {
    let mut permissions: Vec<TeamPermission> = value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| serde_json::from_value(p.clone()).ok())
        .collect();
    permissions.sort();
    permissions.dedup();
    permissions
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(permissions: &[TeamPermission]) -> TeamAccess {
        TeamAccess {
            member: true,
            admin: false,
            permissions: permissions.to_vec(),
            is_private: true,
        }
    }

    #[test]
    fn admins_may_everything_members_what_they_hold_strangers_nothing() {
        let admin = TeamAccess {
            member: true,
            admin: true,
            ..TeamAccess::default()
        };
        let writer = member(&[TeamPermission::WriteChats]);
        let stranger = TeamAccess {
            is_private: true,
            ..TeamAccess::default()
        };
        for p in TeamPermission::ALL {
            assert!(admin.can(p));
            assert_eq!(writer.can(p), p == TeamPermission::WriteChats);
            assert!(!stranger.can(p));
        }
        assert!(writer.can_read() && !stranger.can_read());
        assert!(
            TeamAccess {
                is_private: false,
                ..TeamAccess::default()
            }
            .can_read()
        );
        assert!(writer.may_grant(&[TeamPermission::WriteChats]));
        assert!(!writer.may_grant(&[TeamPermission::ManageMembers]));
        assert!(admin.may_grant(&TeamPermission::ALL));
    }

    #[test]
    fn stored_permissions_read_back_sorted_without_unknown_names() {
        let stored = serde_json::json!(["WriteChats", "Fly", "CreateChats", "WriteChats"]);
        assert_eq!(
            parse_stored(&stored),
            vec![TeamPermission::CreateChats, TeamPermission::WriteChats]
        );
    }

    #[test]
    fn the_names_are_the_serde_names() {
        for p in TeamPermission::ALL {
            assert_eq!(serde_json::to_value(p).unwrap(), p.as_str());
        }
    }
}
