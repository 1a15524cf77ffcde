//! Team invites (the original's `member_invite`): a member with `InviteMembers` invites a
//! person, naming whether they will be an admin (admins only) and what they will be allowed
//! (only what the inviter holds). The invitee gets a notification and
//! `user/notification/received`; accepting makes them a member in the same transaction,
//! declining closes the invite. Inviting again makes an answered invite pending again.
//!
//! An invite grants with its inviter's authority, so only while they hold it: accepting checks
//! the inviter again under the team's lock (an invite they may no longer make is withdrawn
//! instead); a member's removal withdraws their pending invites, a lowered role those beyond
//! it (`members.rs`). Admins withdraw any of the team's invites, an inviter their own; a
//! withdrawn invite stays, `Withdrawn`, so its invitee is told why it no longer opens.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use vrooli_actors::{NewEvent, RoomKey};

use super::access::{self, DEFAULT_PERMISSIONS, TeamAccess, TeamPermission};
use super::{TeamError, TeamService, access_in, permissions_json};
use crate::ids::{MemberInviteId, PublicId, TeamId, UserId};
use crate::notifications::{self, Category, Notice};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberInvite {
    pub id: MemberInviteId,
    pub team_id: TeamId,
    pub user_id: UserId,
    pub inviter_id: Option<UserId>,
    pub message: Option<String>,
    pub will_be_admin: bool,
    pub will_have_permissions: Vec<TeamPermission>,
    /// `Pending`, `Accepted`, `Declined` or `Withdrawn`.
    #[schema(example = "Pending")]
    pub status: String,
    #[serde(serialize_with = "crate::domain::rfc3339::utc")]
    pub created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct InviteRow {
    id: MemberInviteId,
    team_id: TeamId,
    user_id: UserId,
    inviter_id: Option<UserId>,
    message: Option<String>,
    will_be_admin: bool,
    will_have_permissions: serde_json::Value,
    status: String,
    created_at: DateTime<Utc>,
}

impl From<InviteRow> for MemberInvite {
    fn from(r: InviteRow) -> Self {
        MemberInvite {
            id: r.id,
            team_id: r.team_id,
            user_id: r.user_id,
            inviter_id: r.inviter_id,
            message: r.message,
            will_be_admin: r.will_be_admin,
            will_have_permissions: access::parse_stored(&r.will_have_permissions),
            status: r.status,
            created_at: r.created_at,
        }
    }
}

const COLUMNS: &str = "id, team_id, user_id, inviter_id, message, will_be_admin, will_have_permissions, status, created_at";

/// What an invite offers.
pub struct NewInvite {
    pub team: TeamId,
    pub invitee: UserId,
    pub message: Option<String>,
    pub will_be_admin: bool,
    /// `None`: [`DEFAULT_PERMISSIONS`].
    pub will_have_permissions: Option<Vec<TeamPermission>>,
}

impl TeamService {
    pub async fn invite(&self, inviter: UserId, new: NewInvite) -> Result<MemberInvite, TeamError> {
        let access = self
            .require(new.team, Some(inviter), Some(TeamPermission::InviteMembers))
            .await?;
        let permissions = new
            .will_have_permissions
            .unwrap_or_else(|| DEFAULT_PERMISSIONS.to_vec());
        if (new.will_be_admin && !access.admin) || !access.may_grant(&permissions) {
            return Err(TeamError::NotAllowed);
        }
        let mut tx = self.pool.begin().await?;
        let person: Option<bool> = sqlx::query_scalar(
            "SELECT NOT is_bot FROM users WHERE id = $1 AND status <> 'Deleted'",
        )
        .bind(new.invitee)
        .fetch_optional(&mut *tx)
        .await?;
        match person {
            None => return Err(TeamError::UserNotFound),
            Some(false) => return Err(TeamError::BotInvitee),
            Some(true) => {}
        }
        let member: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM members WHERE team_id = $1 AND user_id = $2)",
        )
        .bind(new.team)
        .bind(new.invitee)
        .fetch_one(&mut *tx)
        .await?;
        if member {
            return Err(TeamError::AlreadyMember);
        }
        let row: InviteRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "INSERT INTO member_invites (id, team_id, user_id, inviter_id, message, will_be_admin,
                                         will_have_permissions)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (team_id, user_id) DO UPDATE
                 SET status = 'Pending', inviter_id = $4, message = $5, will_be_admin = $6,
                     will_have_permissions = $7
             RETURNING {COLUMNS}"
        )))
        .bind(self.ids.next_id())
        .bind(new.team)
        .bind(new.invitee)
        .bind(inviter)
        .bind(&new.message)
        .bind(new.will_be_admin)
        .bind(permissions_json(&permissions))
        .fetch_one(&mut *tx)
        .await?;
        let team_name: String = sqlx::query_scalar("SELECT name FROM teams WHERE id = $1")
            .bind(new.team)
            .fetch_one(&mut *tx)
            .await?;
        let (title, link) = (
            format!("You are invited to join {team_name}"),
            format!("/team/{}", new.team),
        );
        let notice = Notice {
            user: new.invitee,
            category: Category::TeamInvite,
            title: &title,
            description: new.message.as_deref(),
            link: Some(&link),
        };
        let notification = notifications::create_in(&mut tx, &self.ids, &self.jobs, notice).await?;
        // In the invite's transaction: the invitee hears of it once, in order, or not at all.
        let room = RoomKey::user(&new.invitee.to_string()).expect("numeric id");
        if let Some(notification) = notification {
            let event = NewEvent {
                id: self.ids.next_id().to_string(),
                event_type: "user/notification/received".into(),
                timestamp_ms: Utc::now().timestamp_millis(),
                room: room.clone(),
                data: json!({ "notification": notification }),
            };
            crate::outbox::Outbox::add_in(&mut tx, &event).await?;
        }
        tx.commit().await?;
        self.outbox.kick(&room);
        Ok(row.into())
    }

    /// Pending invites: to `user` or, with `team`, of that team (for those who may invite).
    pub async fn invites(
        &self,
        user: UserId,
        team: Option<TeamId>,
        take: i64,
        before: Option<i64>,
    ) -> Result<Vec<MemberInvite>, TeamError> {
        if let Some(team) = team {
            self.require(team, Some(user), Some(TeamPermission::InviteMembers))
                .await?;
        }
        let rows: Vec<InviteRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM member_invites
              WHERE status = 'Pending'
                AND (CASE WHEN $1::BIGINT IS NULL THEN user_id = $2 ELSE team_id = $1 END)
                AND ($3::BIGINT IS NULL OR id < $3)
              ORDER BY id DESC LIMIT $4"
        )))
        .bind(team)
        .bind(user)
        .bind(before)
        .bind(take + 1)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(MemberInvite::from).collect())
    }

    /// Accepts (`true`) or declines an invite to `user`; accepting makes the member.
    pub async fn answer(
        &self,
        user: UserId,
        invite: MemberInviteId,
        accept: bool,
    ) -> Result<MemberInvite, TeamError> {
        let mut tx = self.pool.begin().await?;
        let row: Option<InviteRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM member_invites WHERE id = $1 AND user_id = $2 FOR UPDATE"
        )))
        .bind(invite)
        .bind(user)
        .fetch_optional(&mut *tx)
        .await?;
        // Someone else's invite is not found: invites are not revealed to others.
        let row = row.ok_or(TeamError::InviteNotFound)?;
        check_pending(&row.status)?;
        if accept {
            // Shared with changes of members (which lock the row for update): the inviter's
            // standing read next is not one a removal is taking away meanwhile.
            sqlx::query("SELECT 1 FROM teams WHERE id = $1 FOR SHARE")
                .bind(row.team_id)
                .execute(&mut *tx)
                .await?;
            if !inviter_may_still(&mut tx, &row).await? {
                withdraw_in(&mut tx, invite).await?;
                tx.commit().await?;
                return Err(TeamError::InviteWithdrawn);
            }
            sqlx::query(
                "INSERT INTO members (id, public_id, team_id, user_id, is_admin, permissions)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (team_id, user_id) DO NOTHING",
            )
            .bind(self.ids.next_id())
            .bind(PublicId::generate().as_str())
            .bind(row.team_id)
            .bind(user)
            .bind(row.will_be_admin)
            .bind(&row.will_have_permissions)
            .execute(&mut *tx)
            .await?;
        }
        let answered: InviteRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE member_invites SET status = $2 WHERE id = $1 RETURNING {COLUMNS}"
        )))
        .bind(invite)
        .bind(if accept { "Accepted" } else { "Declined" })
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(answered.into())
    }

    /// Withdraws a pending invite: its inviter may, and an admin of its team. Others who may
    /// read the team are not allowed; to anyone else it is not found.
    pub async fn withdraw(
        &self,
        caller: UserId,
        invite: MemberInviteId,
    ) -> Result<MemberInvite, TeamError> {
        let mut tx = self.pool.begin().await?;
        let row: Option<InviteRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM member_invites WHERE id = $1 FOR UPDATE"
        )))
        .bind(invite)
        .fetch_optional(&mut *tx)
        .await?;
        let row = row.ok_or(TeamError::InviteNotFound)?;
        if row.inviter_id != Some(caller) {
            let access = access_in(&mut tx, row.team_id, Some(caller))
                .await?
                .unwrap_or_default();
            if !access.admin {
                let knows = (access.member && access.can(TeamPermission::InviteMembers))
                    || row.user_id == caller;
                return Err(if knows {
                    TeamError::NotAllowed
                } else {
                    TeamError::InviteNotFound
                });
            }
        }
        check_pending(&row.status)?;
        let withdrawn = withdraw_in(&mut tx, invite).await?;
        tx.commit().await?;
        Ok(withdrawn.into())
    }
}

/// Refuses an invite that is no longer pending, saying whether it was withdrawn.
fn check_pending(status: &str) -> Result<(), TeamError> {
    match status {
        "Pending" => Ok(()),
        "Withdrawn" => Err(TeamError::InviteWithdrawn),
        _ => Err(TeamError::InviteAnswered),
    }
}

async fn withdraw_in(
    conn: &mut sqlx::PgConnection,
    invite: MemberInviteId,
) -> Result<InviteRow, TeamError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE member_invites SET status = 'Withdrawn' WHERE id = $1 RETURNING {COLUMNS}"
    )))
    .bind(invite)
    .fetch_one(conn)
    .await?)
}

/// Whether an access may make this invite: invite members, make admins for an admin's invite,
/// and hold what it grants.
fn may_make(access: &TeamAccess, will_be_admin: bool, granted: &[TeamPermission]) -> bool {
    access.can(TeamPermission::InviteMembers)
        && (!will_be_admin || access.admin)
        && access.may_grant(granted)
}

/// Whether the invite's inviter may make it now (a deleted inviter may not).
async fn inviter_may_still(
    conn: &mut sqlx::PgConnection,
    row: &InviteRow,
) -> Result<bool, TeamError> {
    let Some(inviter) = row.inviter_id else {
        return Ok(false);
    };
    let access = access_in(conn, row.team_id, Some(inviter))
        .await?
        .unwrap_or_default();
    Ok(may_make(
        &access,
        row.will_be_admin,
        &access::parse_stored(&row.will_have_permissions),
    ))
}

/// Withdraws `inviter`'s pending invites of `team` that `access` (their standing now) may no
/// longer make, and, when they left the team, their pending invites to its chats. In the
/// transaction of the membership's change.
pub(super) async fn void_beyond(
    conn: &mut sqlx::PgConnection,
    team: TeamId,
    inviter: UserId,
    access: &TeamAccess,
) -> Result<(), TeamError> {
    let pending: Vec<(i64, bool, serde_json::Value)> = sqlx::query_as(
        "SELECT id, will_be_admin, will_have_permissions FROM member_invites
          WHERE team_id = $1 AND inviter_id = $2 AND status = 'Pending' FOR UPDATE",
    )
    .bind(team)
    .bind(inviter)
    .fetch_all(&mut *conn)
    .await?;
    let void: Vec<i64> = pending
        .into_iter()
        .filter(|(_, admin, granted)| !may_make(access, *admin, &access::parse_stored(granted)))
        .map(|(id, _, _)| id)
        .collect();
    sqlx::query("UPDATE member_invites SET status = 'Withdrawn' WHERE id = ANY($1)")
        .bind(&void)
        .execute(&mut *conn)
        .await?;
    if !access.member {
        sqlx::query(
            "UPDATE chat_invites i SET status = 'Withdrawn' FROM chats c
              WHERE c.id = i.chat_id AND c.team_id = $1 AND i.inviter_id = $2
                AND i.status = 'Pending'",
        )
        .bind(team)
        .bind(inviter)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}
