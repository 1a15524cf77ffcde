//! Who may see and act on a run — decided here, in SQL on `runs r` with the user as `$2`:
//! - **read** (the run, its steps, its timeline, its room): anyone when it is public; the
//!   person who started it (a team run: while they are a member of the team); any member of its
//!   team;
//! - **act** (cancel, pause, resume, answer its waits, rename it): the person who started it,
//!   while they may still read it; a member of its team who holds `ManageRuns`, or an admin.
//!   Starting a run as a team needs `StartRuns` there (`teams::TeamAccess::can`), and the team
//!   then pays for its steps.

/// Whether `$2` may read run `r`. A team run's rights come from the team: its starter who left
/// the team reads it no more than any stranger.
pub(crate) const CAN_READ: &str = "(NOT r.is_private
    OR (COALESCE(r.user_id = $2, false) AND r.team_id IS NULL)
    OR EXISTS (SELECT 1 FROM members m WHERE m.team_id = r.team_id AND m.user_id = $2))";

/// Whether `$2` may act on run `r`. A team run's starter who left the team may not.
pub(crate) const CAN_ACT: &str = "((COALESCE(r.user_id = $2, false)
       AND (r.team_id IS NULL
            OR EXISTS (SELECT 1 FROM members m WHERE m.team_id = r.team_id AND m.user_id = $2)))
    OR EXISTS (SELECT 1 FROM members m WHERE m.team_id = r.team_id AND m.user_id = $2
               AND (m.is_admin OR m.permissions ? 'ManageRuns')))";

#[cfg(test)]
mod tests {
    use crate::teams::TeamPermission;

    #[test]
    fn the_team_permission_named_in_sql_is_the_teams_own() {
        assert!(super::CAN_ACT.contains(&format!("'{}'", TeamPermission::ManageRuns.as_str())));
    }
}
