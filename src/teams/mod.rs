//! Teams and their members. HTTP → `http::teams` → `TeamService` → PostgreSQL.
//!
//! ```text
//! POST /team ─▶ one tx: team row + its creator as an admin member
//! PUT/DELETE /team/{id} ─▶ access (access.rs) ─▶ one statement
//! PUT/DELETE /member/{id} ─▶ members.rs: one tx that locks the team's row first, so two
//!     changes of its members never both pass the last-admin check
//! POST /memberInvite … accept ─▶ invites.rs: accepting makes the member in the invite's tx,
//!     while its inviter may still invite so; POST /memberInvite/{id}/withdraw (admins, the
//!     inviter)
//! ```
//!
//! Who may do what is `access.rs`; team chats follow the same permissions (`chat::access`).
//! A team's chats go with it when it is deleted (`chats.team_id ON DELETE CASCADE`).
//!
//! What a member reads through the team ends with their membership: a removed member is taken
//! off the team's chats, and every write that lowers someone's standing (removal, a role
//! lowered, the team deleted) asks the nodes to recheck the rooms it concerns (`Hub`), so
//! open sockets leave the team's chat and run rooms with `room/removed`.

pub mod access;
pub mod invites;
mod members;

use crate::errors::{Code, ErrorCode, Told};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use std::sync::Arc;

pub use access::{TeamAccess, TeamPermission};
pub use members::{Member, MemberChange, Removed};

use vrooli_actors::{Hub, RoomKey};

use crate::ids::{PublicId, Snowflake, TeamId, UserId};
use crate::jobs::JobStore;
use crate::outbox::Outbox;

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Team {
    pub id: TeamId,
    pub handle: Option<String>,
    pub name: String,
    pub is_private: bool,
    pub created_by: Option<UserId>,
    #[serde(serialize_with = "crate::domain::rfc3339::utc")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::domain::rfc3339::utc")]
    pub updated_at: DateTime<Utc>,
}

const TEAM_COLUMNS: &str =
    "t.id, t.handle, t.name, t.is_private, t.created_by, t.created_at, t.updated_at";

#[derive(Debug, thiserror::Error)]
pub enum TeamError {
    #[error("no such team")]
    TeamNotFound,
    #[error("no such member")]
    MemberNotFound,
    #[error("not allowed in this team")]
    NotAllowed,
    /// The caller's role in the team lacks this permission (the refusal names it).
    #[error("this needs the team permission {}", .0.as_str())]
    Lacks(TeamPermission),
    #[error("a team keeps at least one admin")]
    LastAdmin,
    #[error("no such user")]
    UserNotFound,
    #[error("bots cannot answer invites")]
    BotInvitee,
    #[error("already a member")]
    AlreadyMember,
    #[error("no such invite")]
    InviteNotFound,
    #[error("the invite was already answered")]
    InviteAnswered,
    #[error("the invite was withdrawn")]
    InviteWithdrawn,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl ErrorCode for TeamError {
    fn told(&self) -> Told {
        match self {
            TeamError::TeamNotFound => Told::of(Code::TeamNotFound, "No such team"),
            TeamError::MemberNotFound => Told::of(Code::MemberNotFound, "No such member"),
            TeamError::NotAllowed => Told::of(
                Code::NotAllowed,
                "Your role in this team does not allow this",
            ),
            TeamError::Lacks(permission) => Told::of(
                Code::NotAllowed,
                format!(
                    "This needs the team permission {}, which your role in this team does not hold",
                    permission.as_str()
                ),
            ),
            TeamError::LastAdmin => Told::of(
                Code::LastAdmin,
                "A team keeps at least one admin: make another admin first, or delete the team",
            ),
            TeamError::UserNotFound => Told::of(Code::UserNotFound, "No such user"),
            TeamError::BotInvitee => Told::of(
                Code::InvalidInvitee,
                "Bots cannot answer invites; only people are invited to teams",
            ),
            TeamError::AlreadyMember => {
                Told::of(Code::AlreadyMember, "This user is already a member")
            }
            TeamError::InviteNotFound => Told::of(Code::InviteNotFound, "No such invite"),
            TeamError::InviteAnswered => Told::of(
                Code::InviteAnswered,
                "This invite was already accepted, declined or withdrawn",
            ),
            TeamError::InviteWithdrawn => Told::of(
                Code::InviteWithdrawn,
                "This invite was withdrawn, or the one who sent it may no longer invite",
            ),
            TeamError::Database(e) => e.told(),
        }
    }
}

/// A new team: its name, handle and privacy (the handle already checked by the caller).
pub struct NewTeam {
    pub name: String,
    pub handle: Option<String>,
    pub is_private: bool,
}

/// A change to a team; `None` leaves a field as it is (`handle: Some(None)` clears it).
#[derive(Default)]
pub struct TeamChange {
    pub name: Option<String>,
    pub handle: Option<Option<String>>,
    pub is_private: Option<bool>,
}

#[derive(Clone)]
pub struct TeamService {
    pool: PgPool,
    ids: Arc<Snowflake>,
    outbox: Outbox,
    /// Notices by email go through the `email-send` queue.
    jobs: JobStore,
    /// Sockets in rooms someone may no longer join are rechecked through it.
    hub: Hub,
}

fn permissions_json(permissions: &[TeamPermission]) -> serde_json::Value {
    let mut sorted = permissions.to_vec();
    sorted.sort();
    sorted.dedup();
    serde_json::json!(sorted)
}

impl TeamService {
    pub fn new(
        pool: PgPool,
        ids: Arc<Snowflake>,
        outbox: Outbox,
        jobs: JobStore,
        hub: Hub,
    ) -> Self {
        Self {
            pool,
            ids,
            outbox,
            jobs,
            hub,
        }
    }

    /// `user`'s standing in `team`; `None` when the team does not exist.
    pub async fn access(
        &self,
        team: TeamId,
        user: Option<UserId>,
    ) -> Result<Option<TeamAccess>, sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        access_in(&mut conn, team, user).await
    }

    /// Checks that `user` may read `team` and, with `need`, do that: a team the caller may not
    /// read is not found (private teams are not revealed); one they may read but not act in is
    /// not allowed.
    pub async fn require(
        &self,
        team: TeamId,
        user: Option<UserId>,
        need: Option<TeamPermission>,
    ) -> Result<TeamAccess, TeamError> {
        let mut conn = self.pool.acquire().await?;
        require_in(&mut conn, team, user, need).await
    }

    /// Checks that `user` is an admin of `team` (deleting it, changing admins).
    pub async fn require_admin(&self, team: TeamId, user: UserId) -> Result<(), TeamError> {
        let access = self.require(team, Some(user), None).await?;
        if access.admin {
            Ok(())
        } else {
            Err(TeamError::NotAllowed)
        }
    }

    pub async fn create(&self, creator: UserId, new: NewTeam) -> Result<Team, TeamError> {
        let mut tx = self.pool.begin().await?;
        let id = TeamId(self.ids.next_id());
        sqlx::query(
            "INSERT INTO teams (id, public_id, handle, name, is_private, created_by)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(PublicId::generate().as_str())
        .bind(&new.handle)
        .bind(&new.name)
        .bind(new.is_private)
        .bind(creator)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO members (id, public_id, team_id, user_id, is_admin, permissions)
             VALUES ($1, $2, $3, $4, true, $5)",
        )
        .bind(self.ids.next_id())
        .bind(PublicId::generate().as_str())
        .bind(id)
        .bind(creator)
        .bind(permissions_json(&TeamPermission::ALL))
        .execute(&mut *tx)
        .await?;
        let team = fetch_team(&mut tx, id).await?;
        tx.commit().await?;
        Ok(team)
    }

    pub async fn get(&self, team: TeamId) -> Result<Team, TeamError> {
        let mut conn = self.pool.acquire().await?;
        fetch_team(&mut conn, team).await
    }

    pub async fn update(&self, team: TeamId, change: TeamChange) -> Result<Team, TeamError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE teams SET name = COALESCE($2, name),
                    handle = CASE WHEN $3 THEN $4 ELSE handle END,
                    is_private = COALESCE($5, is_private)
              WHERE id = $1",
        )
        .bind(team)
        .bind(&change.name)
        .bind(change.handle.is_some())
        .bind(change.handle.flatten())
        .bind(change.is_private)
        .execute(&mut *tx)
        .await?;
        let team = fetch_team(&mut tx, team).await?;
        tx.commit().await?;
        Ok(team)
    }

    /// Deletes the team with its members, invites, chats and runs; then every node rechecks
    /// the rooms of those chats and runs, so their sockets leave them.
    pub async fn delete(&self, team: TeamId) -> Result<bool, TeamError> {
        // The delete cascades through the team's chats and runs while their work goes on (a
        // run's steps write under its row, an answer into its chat): PostgreSQL may end this
        // transaction as a deadlock's victim. It wrote nothing then; it is tried again.
        let mut attempts = 1;
        loop {
            match self.delete_once(team).await {
                Err(TeamError::Database(e)) if attempts < 3 && crate::db::is_deadlock(&e) => {
                    tracing::warn!(%team, attempts, "team delete chosen as a deadlock's victim; again");
                    attempts += 1;
                }
                done => return done,
            }
        }
    }

    async fn delete_once(&self, team: TeamId) -> Result<bool, TeamError> {
        let mut tx = self.pool.begin().await?;
        // Read in the deleting transaction, after the team's row is locked: a chat or run made
        // meanwhile waits for the team's row (their foreign key) and then fails.
        let locked: Option<i64> =
            sqlx::query_scalar("SELECT id FROM teams WHERE id = $1 FOR UPDATE")
                .bind(team)
                .fetch_optional(&mut *tx)
                .await?;
        if locked.is_none() {
            return Ok(false);
        }
        let rooms: Vec<(bool, i64)> = sqlx::query_as(
            "SELECT true, id FROM chats WHERE team_id = $1
             UNION ALL SELECT false, id FROM runs WHERE team_id = $1",
        )
        .bind(team)
        .fetch_all(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM teams WHERE id = $1")
            .bind(team)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        for (chat, id) in rooms {
            let id = id.to_string();
            let room = if chat {
                RoomKey::chat(&id)
            } else {
                RoomKey::run(&id)
            };
            self.recheck_room(&room.expect("numeric id")).await;
        }
        Ok(true)
    }

    /// Every node rechecks `room`'s connections.
    pub(crate) async fn recheck_room(&self, room: &RoomKey) {
        if let Err(error) = self.hub.recheck_room(room).await {
            // This node's sockets were rechecked; other nodes miss it while the broker is down
            // (REST refuses regardless).
            tracing::warn!(%error, %room, "could not ask other nodes to recheck a room");
        }
    }

    /// Every node rechecks the rooms `user`'s connections are in.
    pub(crate) async fn recheck_user(&self, user: UserId) {
        if let Err(error) = self.hub.recheck_user(user.into()).await {
            tracing::warn!(%error, %user, "could not ask other nodes to recheck a user's rooms");
        }
    }

    /// Teams `user` is a member of, newest first, after the id `before`.
    pub async fn mine(
        &self,
        user: UserId,
        take: i64,
        before: Option<i64>,
    ) -> Result<Vec<Team>, sqlx::Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {TEAM_COLUMNS} FROM teams t JOIN members m ON m.team_id = t.id
              WHERE m.user_id = $1 AND ($2::BIGINT IS NULL OR t.id < $2)
              ORDER BY t.id DESC LIMIT $3"
        )))
        .bind(user)
        .bind(before)
        .bind(take + 1)
        .fetch_all(&self.pool)
        .await
    }
}

pub(super) async fn access_in(
    conn: &mut sqlx::PgConnection,
    team: TeamId,
    user: Option<UserId>,
) -> Result<Option<TeamAccess>, sqlx::Error> {
    let row: Option<(bool, Option<bool>, Option<serde_json::Value>)> = sqlx::query_as(
        "SELECT t.is_private, m.is_admin, m.permissions
           FROM teams t LEFT JOIN members m ON m.team_id = t.id AND m.user_id = $2
          WHERE t.id = $1",
    )
    .bind(team)
    .bind(user)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(is_private, admin, permissions)| TeamAccess {
        member: admin.is_some(),
        admin: admin.unwrap_or(false),
        permissions: permissions
            .as_ref()
            .map(access::parse_stored)
            .unwrap_or_default(),
        is_private,
    }))
}

/// [`TeamService::require`] inside the caller's transaction.
pub async fn require_in(
    conn: &mut sqlx::PgConnection,
    team: TeamId,
    user: Option<UserId>,
    need: Option<TeamPermission>,
) -> Result<TeamAccess, TeamError> {
    let access = access_in(conn, team, user)
        .await?
        .filter(TeamAccess::can_read)
        .ok_or(TeamError::TeamNotFound)?;
    match need {
        Some(need) if !access.can(need) => Err(TeamError::Lacks(need)),
        _ => Ok(access),
    }
}

async fn fetch_team(conn: &mut sqlx::PgConnection, id: TeamId) -> Result<Team, TeamError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {TEAM_COLUMNS} FROM teams t WHERE t.id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?
    .ok_or(TeamError::TeamNotFound)
}
