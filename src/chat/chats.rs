//! Chats themselves: the row as readers see it, its participants' shape, and creating, reading,
//! listing, changing and deleting a chat. A change of who may read asks every node to recheck
//! the chat's room.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{ChatError, ChatService, room};
use crate::ids::{ChatId, PublicId, UserId};

/// A chat as its readers see it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Chat {
    pub id: ChatId,
    /// The 12-character id for shareable links.
    pub public_id: String,
    pub creator_id: Option<UserId>,
    pub team_id: Option<crate::ids::TeamId>,
    pub name: String,
    pub is_private: bool,
    pub open_to_anyone_with_invite: bool,
    #[serde(serialize_with = "crate::domain::rfc3339::utc")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::domain::rfc3339::utc")]
    pub updated_at: DateTime<Utc>,
}

/// A user taking part in a chat.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Participant {
    pub user_id: UserId,
    pub name: String,
    pub handle: Option<String>,
    pub is_bot: bool,
    /// Messages arrived since this participant last read the chat.
    pub has_unread: bool,
}

const CHAT_COLUMNS: &str = "id, public_id, creator_id, team_id, name, is_private, open_to_anyone_with_invite, created_at, updated_at";

/// What a new chat looks like.
pub struct NewChat {
    pub name: String,
    /// A team chat: the team's members may read and write it.
    pub team: Option<i64>,
    pub is_private: bool,
    pub open_to_anyone_with_invite: bool,
    pub bots: Vec<UserId>,
}

impl ChatService {
    pub async fn create(&self, creator: UserId, new: NewChat) -> Result<Chat, ChatError> {
        let mut tx = self.pool.begin().await?;
        let bots: Vec<UserId> =
            sqlx::query_scalar("SELECT id FROM users WHERE id = ANY($1) AND is_bot")
                .bind(new.bots.iter().map(|b| b.0).collect::<Vec<_>>())
                .fetch_all(&mut *tx)
                .await?;
        if bots.len() != new.bots.len() {
            return Err(ChatError::NotABot);
        }
        if let Some(team) = new.team {
            // Team chats are made by admins and members holding `CreateChats`; a member
            // without it is told so, not that they are no member.
            let may_create: Option<bool> = sqlx::query_scalar(
                "SELECT is_admin OR permissions ? 'CreateChats' FROM members
                  WHERE team_id = $1 AND user_id = $2",
            )
            .bind(team)
            .bind(creator)
            .fetch_optional(&mut *tx)
            .await?;
            match may_create {
                None => return Err(ChatError::NotATeamMember),
                Some(false) => {
                    return Err(ChatError::LacksTeamPermission(
                        crate::teams::TeamPermission::CreateChats,
                    ));
                }
                Some(true) => {}
            }
        }
        let id = ChatId(self.ids.next_id());
        let chat: Chat = sqlx::query_as(sql!(
            "INSERT INTO chats (id, public_id, creator_id, name, is_private, open_to_anyone_with_invite,
                                team_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {CHAT_COLUMNS}"
        ))
        .bind(id)
        .bind(PublicId::generate().as_str())
        .bind(creator)
        .bind(&new.name)
        .bind(new.is_private)
        .bind(new.open_to_anyone_with_invite)
        .bind(new.team)
        .fetch_one(&mut *tx)
        .await?;
        if new.open_to_anyone_with_invite {
            sqlx::query("UPDATE chats SET invite_secret = $2 WHERE id = $1")
                .bind(id)
                .bind(crate::domain::secret::new_code())
                .execute(&mut *tx)
                .await?;
        }
        for user in std::iter::once(creator).chain(bots) {
            sqlx::query(
                "INSERT INTO chat_participants (id, chat_id, user_id) VALUES ($1, $2, $3)
                 ON CONFLICT (chat_id, user_id) DO NOTHING",
            )
            .bind(self.ids.next_id())
            .bind(id)
            .bind(user)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(chat)
    }

    pub async fn get(&self, chat: ChatId) -> Result<Chat, ChatError> {
        sqlx::query_as(sql!("SELECT {CHAT_COLUMNS} FROM chats WHERE id = $1"))
            .bind(chat)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(ChatError::ChatNotFound)
    }

    /// The caller's chats, newest first; `take + 1` rows so the caller can tell if more exist.
    pub async fn list_mine(
        &self,
        user: UserId,
        take: i64,
        before: Option<ChatId>,
    ) -> Result<Vec<Chat>, ChatError> {
        Ok(sqlx::query_as(sql!(
            "SELECT {} FROM chats c JOIN chat_participants p ON p.chat_id = c.id
             WHERE p.user_id = $1 AND ($2::BIGINT IS NULL OR c.id < $2)
             ORDER BY c.id DESC LIMIT $3",
            CHAT_COLUMNS
                .split(", ")
                .map(|c| format!("c.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .bind(user)
        .bind(before)
        .bind(take + 1)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn update(
        &self,
        chat: ChatId,
        name: Option<String>,
        is_private: Option<bool>,
        open: Option<bool>,
    ) -> Result<Chat, ChatError> {
        let updated: Chat = sqlx::query_as(sql!(
            "UPDATE chats SET name = COALESCE($2, name), is_private = COALESCE($3, is_private),
                    open_to_anyone_with_invite = COALESCE($4, open_to_anyone_with_invite)
             WHERE id = $1 RETURNING {CHAT_COLUMNS}"
        ))
        .bind(chat)
        .bind(name)
        .bind(is_private)
        .bind(open)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(ChatError::ChatNotFound)?;
        // Opening gives the chat an invite secret (kept if it has one); closing drops it, so
        // links already shared stop working.
        sqlx::query(
            "UPDATE chats SET invite_secret = CASE WHEN open_to_anyone_with_invite
                                                   THEN COALESCE(invite_secret, $2) END
              WHERE id = $1",
        )
        .bind(chat)
        .bind(crate::domain::secret::new_code())
        .execute(&self.pool)
        .await?;
        if is_private.is_some() || open.is_some() {
            self.recheck(chat).await;
        }
        Ok(updated)
    }

    /// Who may be in the chat's room changed: every connection in it, on every node, checks
    /// again and leaves if it may no longer read the chat.
    pub(super) async fn recheck(&self, chat: ChatId) {
        if let Err(error) = self.hub.recheck_room(&room(chat)).await {
            // The hub handled this node's own copy itself; other nodes miss this signal while
            // the broker is down (REST refuses the removed caller regardless).
            tracing::warn!(%error, chat = %chat, "could not ask other nodes to recheck a room");
        }
    }

    pub async fn delete(&self, chat: ChatId) -> Result<(), ChatError> {
        let deleted = sqlx::query("DELETE FROM chats WHERE id = $1")
            .bind(chat)
            .execute(&self.pool)
            .await?
            .rows_affected();
        if deleted == 0 {
            return Err(ChatError::ChatNotFound);
        }
        self.recheck(chat).await;
        Ok(())
    }
}
