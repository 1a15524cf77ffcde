//! Team invites (the original's `member_invite`): a member with `InviteMembers` invites a
//! person, naming whether they will be an admin (admins only) and what they will be allowed
//! (only what the inviter holds). The invitee gets a notification and
//! `user/notification/received`; accepting makes them a member in the same transaction,
//! declining closes the invite. Inviting again makes an answered invite pending again.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use vrooli_actors::{NewEvent, RoomKey};

use super::access::{self, DEFAULT_PERMISSIONS, TeamPermission};
use super::{TeamError, TeamService, permissions_json};
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
    /// `Pending`, `Accepted` or `Declined`.
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
        if row.status != "Pending" {
            return Err(TeamError::InviteAnswered);
        }
        if accept {
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
}
