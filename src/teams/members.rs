//! A team's members: listed, changed (role, permissions) and removed or leaving. Every change
//! locks the team's row first and reads the caller's and the target's standing under that lock,
//! so two changes never both pass the last-admin check and nobody acts on authority a change
//! just took away.
//!
//! A removal takes the person off the team's chats in the same transaction (what they read
//! there, they read as a member) and withdraws their pending invites (to the team and its
//! chats); a role lowered withdraws the team invites beyond it. After either, their sockets
//! recheck every room they are in.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::access::{self, TeamPermission};
use super::{TeamError, TeamService, permissions_json, require_in};
use crate::ids::{ChatId, MemberId, TeamId, UserId};

/// A user in a team, with what others may see of the user.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    pub id: MemberId,
    pub team_id: TeamId,
    pub user_id: UserId,
    pub name: String,
    pub handle: Option<String>,
    pub is_bot: bool,
    pub is_admin: bool,
    pub permissions: Vec<TeamPermission>,
    #[serde(serialize_with = "crate::domain::rfc3339::utc")]
    pub created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct MemberRow {
    id: MemberId,
    team_id: TeamId,
    user_id: UserId,
    name: String,
    handle: Option<String>,
    is_bot: bool,
    is_admin: bool,
    permissions: serde_json::Value,
    created_at: DateTime<Utc>,
}

impl From<MemberRow> for Member {
    fn from(r: MemberRow) -> Self {
        Member {
            id: r.id,
            team_id: r.team_id,
            user_id: r.user_id,
            name: r.name,
            handle: r.handle,
            is_bot: r.is_bot,
            is_admin: r.is_admin,
            permissions: access::parse_stored(&r.permissions),
            created_at: r.created_at,
        }
    }
}

const MEMBER_SELECT: &str = "SELECT m.id, m.team_id, m.user_id, u.name, u.handle, u.is_bot,
        m.is_admin, m.permissions, m.created_at
   FROM members m JOIN users u ON u.id = m.user_id";

/// A member removed: who, and the team chats they were taken off (whose participants changed).
pub struct Removed {
    pub user: UserId,
    pub chats: Vec<ChatId>,
}

/// What a member may do, admins holding every permission.
fn held(is_admin: bool, permissions: &[TeamPermission]) -> Vec<TeamPermission> {
    if is_admin {
        TeamPermission::ALL.to_vec()
    } else {
        permissions.to_vec()
    }
}

/// A change to a member; `None` leaves a field as it is.
#[derive(Default)]
pub struct MemberChange {
    pub is_admin: Option<bool>,
    pub permissions: Option<Vec<TeamPermission>>,
}

impl TeamService {
    /// The team's members, oldest first, after the id `after`.
    pub async fn members(
        &self,
        team: TeamId,
        take: i64,
        after: Option<i64>,
    ) -> Result<Vec<Member>, sqlx::Error> {
        let rows: Vec<MemberRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{MEMBER_SELECT} WHERE m.team_id = $1 AND ($2::BIGINT IS NULL OR m.id > $2)
              ORDER BY m.id LIMIT $3"
        )))
        .bind(team)
        .bind(after)
        .bind(take + 1)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(Member::from).collect())
    }

    /// One member (the team is read from it: the caller's access is checked against that).
    pub async fn member(&self, id: MemberId) -> Result<Member, TeamError> {
        let mut conn = self.pool.acquire().await?;
        member_in(&mut conn, id).await
    }

    /// Changes a member as `caller` may: permissions of members who are not admins with
    /// `ManageMembers` and only what the caller holds; the admin flag, and anything of an
    /// admin, only as an admin. The last admin stays one.
    pub async fn update_member(
        &self,
        caller: UserId,
        id: MemberId,
        change: MemberChange,
    ) -> Result<Member, TeamError> {
        let team = self.member(id).await?.team_id;
        let mut tx = self.pool.begin().await?;
        // Under the team's lock: the caller's standing and the target's are as they are now,
        // not as they were before a change that committed meanwhile.
        lock_team(&mut tx, team).await?;
        let target = member_in(&mut tx, id).await?;
        let access = require_in(
            &mut tx,
            team,
            Some(caller),
            Some(TeamPermission::ManageMembers),
        )
        .await?;
        if (target.is_admin || change.is_admin.is_some()) && !access.admin {
            return Err(TeamError::NotAllowed);
        }
        if let Some(permissions) = &change.permissions
            && !access.may_grant(permissions)
        {
            return Err(TeamError::NotAllowed);
        }
        if change.is_admin == Some(false) {
            last_admin_check(&mut tx, target.team_id, id).await?;
        }
        let updated = sqlx::query(
            "UPDATE members SET is_admin = COALESCE($2, is_admin),
                    permissions = COALESCE($3, permissions)
              WHERE id = $1",
        )
        .bind(id)
        .bind(change.is_admin)
        .bind(change.permissions.as_deref().map(permissions_json))
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(TeamError::MemberNotFound);
        }
        let after = member_in(&mut tx, id).await?;
        let now_held = held(after.is_admin, &after.permissions);
        let lowered = held(target.is_admin, &target.permissions)
            .iter()
            .any(|p| !now_held.contains(p));
        if lowered {
            let standing = access::TeamAccess {
                member: true,
                admin: after.is_admin,
                permissions: after.permissions.clone(),
                is_private: access.is_private,
            };
            super::invites::void_beyond(&mut tx, team, after.user_id, &standing).await?;
        }
        tx.commit().await?;
        if lowered {
            self.recheck_user(after.user_id).await;
        }
        Ok(after)
    }

    /// Removes a member: oneself (leaving), one who is not an admin with `ManageMembers`, or
    /// anyone as an admin. The last admin cannot go: delete the team, or make another admin.
    pub async fn remove_member(&self, caller: UserId, id: MemberId) -> Result<Removed, TeamError> {
        let team = self.member(id).await?.team_id;
        let mut tx = self.pool.begin().await?;
        lock_team(&mut tx, team).await?;
        let target = member_in(&mut tx, id).await?;
        if target.user_id != caller {
            let access = require_in(
                &mut tx,
                team,
                Some(caller),
                Some(TeamPermission::ManageMembers),
            )
            .await?;
            if target.is_admin && !access.admin {
                return Err(TeamError::NotAllowed);
            }
        }
        last_admin_check(&mut tx, target.team_id, id).await?;
        sqlx::query("DELETE FROM members WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        // What they invited others to, they invited to with a member's authority.
        super::invites::void_beyond(
            &mut tx,
            team,
            target.user_id,
            &access::TeamAccess::default(),
        )
        .await?;
        // Their seat in the team's chats came with the membership (a chat they made included).
        let chats: Vec<ChatId> = sqlx::query_scalar(
            "DELETE FROM chat_participants p USING chats c
              WHERE p.chat_id = c.id AND c.team_id = $1 AND p.user_id = $2
             RETURNING p.chat_id",
        )
        .bind(team)
        .bind(target.user_id)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        self.recheck_user(target.user_id).await;
        Ok(Removed {
            user: target.user_id,
            chats,
        })
    }
}

async fn member_in(conn: &mut sqlx::PgConnection, id: MemberId) -> Result<Member, TeamError> {
    let row: Option<MemberRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{MEMBER_SELECT} WHERE m.id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.map(Member::from).ok_or(TeamError::MemberNotFound)
}

/// Orders every change of a team's members after the others (the last-admin rule needs it).
async fn lock_team(conn: &mut sqlx::PgConnection, team: TeamId) -> Result<(), TeamError> {
    sqlx::query_scalar::<_, i64>("SELECT id FROM teams WHERE id = $1 FOR UPDATE")
        .bind(team)
        .fetch_optional(conn)
        .await?
        .map(drop)
        .ok_or(TeamError::TeamNotFound)
}

/// Refuses when `member` is the team's only admin (under the team's lock).
async fn last_admin_check(
    conn: &mut sqlx::PgConnection,
    team: TeamId,
    member: MemberId,
) -> Result<(), TeamError> {
    let others: bool = sqlx::query_scalar(
        "SELECT NOT EXISTS (SELECT 1 FROM members WHERE id = $2 AND is_admin)
             OR EXISTS (SELECT 1 FROM members WHERE team_id = $1 AND is_admin AND id <> $2)",
    )
    .bind(team)
    .bind(member)
    .fetch_one(conn)
    .await?;
    if others {
        Ok(())
    } else {
        Err(TeamError::LastAdmin)
    }
}
