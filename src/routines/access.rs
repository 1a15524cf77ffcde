//! Who may see and change a routine — decided here, in SQL on `resources r` with the user as
//! `$2`, so a check and the read or write it guards are one statement:
//! - **read** (a version, and calling it as a subroutine): anyone when it is public; its owner;
//!   any member of its team;
//! - **write** (add or edit versions): its owner; a member of its team who holds
//!   `ManageRoutines`, or an admin of it. Making a team's routine needs the same
//!   (`teams::TeamAccess::can`), checked in the transaction that makes it.
//!
//! A team's routine has no owner (`owner_id` NULL): who may change it follows the team's
//! members as they are now, so a member who leaves takes no routine with them. (Hence the
//! `COALESCE`s: `owner_id = $2` is NULL, not false, for a team's routine or a signed-out reader.)

/// Whether `$2` may read routine `r`.
pub(crate) const CAN_READ: &str = "(NOT r.is_private OR COALESCE(r.owner_id = $2, false)
    OR EXISTS (SELECT 1 FROM members m WHERE m.team_id = r.team_id AND m.user_id = $2))";

/// Whether `$2` may change routine `r`.
pub(crate) const CAN_WRITE: &str = "(COALESCE(r.owner_id = $2, false)
    OR EXISTS (SELECT 1 FROM members m WHERE m.team_id = r.team_id AND m.user_id = $2
               AND (m.is_admin OR m.permissions ? 'ManageRoutines')))";

#[cfg(test)]
mod tests {
    use crate::teams::TeamPermission;

    #[test]
    fn the_team_permission_named_in_sql_is_the_teams_own() {
        assert!(
            super::CAN_WRITE.contains(&format!("'{}'", TeamPermission::ManageRoutines.as_str()))
        );
    }
}
