//! Chat invites: a participant invites someone (a notification and
//! `user/notification/received` reach them); accepting makes them a participant and publishes
//! `chat/participants/changed`; declining closes the invite. Bots are added directly, not invited.
//!
//! An invite lets someone in with its inviter's authority, so only while they hold it:
//! accepting checks that the inviter may still write in the chat (an invite they may no longer
//! make is withdrawn instead). The chat's managers withdraw any of its invites, an inviter
//! their own; a withdrawn invite stays, `Withdrawn`, so its invitee is told.

use crate::errors::{Code, ErrorCode, Told};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use vrooli_actors::RoomKey;

use super::{ChatError, ChatService};
use crate::ids::{ChatId, UserId};
use crate::notifications::{self, Notification};

/// An invitation of a person to a chat.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatInvite {
    pub id: crate::ids::ChatInviteId,
    pub chat_id: ChatId,
    pub user_id: UserId,
    pub inviter_id: Option<UserId>,
    pub message: Option<String>,
    /// `Pending`, `Accepted`, `Declined` or `Withdrawn`.
    #[schema(example = "Pending")]
    pub status: String,
    #[serde(serialize_with = "crate::domain::rfc3339::utc")]
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, chat_id, user_id, inviter_id, message, status, created_at";

#[derive(Debug, thiserror::Error)]
pub enum InviteError {
    #[error("no such user")]
    UserNotFound,
    #[error("already a participant")]
    AlreadyParticipant,
    #[error("no such invite")]
    NotFound,
    #[error("the invite was already answered")]
    Answered,
    #[error("the invite was withdrawn")]
    Withdrawn,
    #[error(transparent)]
    Chat(#[from] ChatError),
}

impl ErrorCode for InviteError {
    fn told(&self) -> Told {
        match self {
            InviteError::UserNotFound => Told::of(Code::UserNotFound, "No such user"),
            InviteError::AlreadyParticipant => Told::of(
                Code::AlreadyParticipant,
                "This user already takes part in the chat",
            ),
            InviteError::NotFound => Told::of(Code::InviteNotFound, "No such invite"),
            InviteError::Answered => Told::of(
                Code::InviteAnswered,
                "This invite was already accepted, declined or withdrawn",
            ),
            InviteError::Withdrawn => Told::of(
                Code::InviteWithdrawn,
                "This invite was withdrawn, or the one who sent it may no longer invite",
            ),
            InviteError::Chat(e) => e.told(),
        }
    }
}

impl From<sqlx::Error> for InviteError {
    fn from(e: sqlx::Error) -> Self {
        InviteError::Chat(ChatError::Database(e))
    }
}

fn user_room(user: UserId) -> RoomKey {
    RoomKey::user(&user.to_string()).expect("numeric id")
}

impl ChatService {
    pub async fn invite(
        &self,
        inviter: UserId,
        chat: ChatId,
        invitee: UserId,
        message: Option<String>,
    ) -> Result<ChatInvite, InviteError> {
        let mut tx = self.pool.begin().await?;
        let person: Option<bool> = sqlx::query_scalar(
            "SELECT NOT is_bot FROM users WHERE id = $1 AND status <> 'Deleted'",
        )
        .bind(invitee)
        .fetch_optional(&mut *tx)
        .await?;
        match person {
            None => return Err(InviteError::UserNotFound),
            Some(false) => return Err(ChatError::NotABot.into()),
            Some(true) => {}
        }
        let participant: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM chat_participants WHERE chat_id = $1 AND user_id = $2)",
        )
        .bind(chat)
        .bind(invitee)
        .fetch_one(&mut *tx)
        .await?;
        if participant {
            return Err(InviteError::AlreadyParticipant);
        }
        let invite: ChatInvite = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "INSERT INTO chat_invites (id, chat_id, user_id, inviter_id, message)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (chat_id, user_id) DO UPDATE
                 SET status = 'Pending', inviter_id = $4, message = $5
             RETURNING {COLUMNS}"
        )))
        .bind(self.ids.next_id())
        .bind(chat)
        .bind(invitee)
        .bind(inviter)
        .bind(&message)
        .fetch_one(&mut *tx)
        .await?;
        let chat_name: String = sqlx::query_scalar("SELECT name FROM chats WHERE id = $1")
            .bind(chat)
            .fetch_one(&mut *tx)
            .await?;
        let title = format!(
            "You are invited to {}",
            if chat_name.is_empty() {
                "a chat"
            } else {
                &chat_name
            }
        );
        let link = format!("/chat/{chat}");
        let notice = notifications::Notice {
            user: invitee,
            category: notifications::Category::ChatInvite,
            title: &title,
            description: message.as_deref(),
            link: Some(&link),
        };
        let notification = notifications::create_in(&mut tx, &self.ids, &self.jobs, notice).await?;
        tx.commit().await?;
        if let Some(notification) = notification {
            self.notify(&notification).await;
        }
        Ok(invite)
    }

    pub async fn notify(&self, notification: &Notification) {
        self.publish(
            user_room(notification.user_id),
            "user/notification/received",
            json!({ "notification": notification }),
        )
        .await;
    }

    pub async fn invites_for(
        &self,
        user: UserId,
        take: i64,
        before: Option<i64>,
    ) -> Result<Vec<ChatInvite>, sqlx::Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM chat_invites
             WHERE user_id = $1 AND status = 'Pending' AND id < COALESCE($2::BIGINT, 9223372036854775807)
             ORDER BY id DESC LIMIT $3"
        )))
        .bind(user)
        .bind(before)
        .bind(take + 1)
        .fetch_all(&self.pool)
        .await
    }

    /// The invitee answers. Accepting adds them to the chat in the same transaction.
    pub async fn answer_invite(
        &self,
        invitee: UserId,
        invite: crate::ids::ChatInviteId,
        accept: bool,
    ) -> Result<ChatInvite, InviteError> {
        let mut tx = self.pool.begin().await?;
        let current: Option<(String, ChatId, Option<UserId>)> = sqlx::query_as(
            "SELECT status, chat_id, inviter_id FROM chat_invites
              WHERE id = $1 AND user_id = $2 FOR UPDATE",
        )
        .bind(invite)
        .bind(invitee)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((status, chat, inviter)) = current else {
            return Err(InviteError::NotFound);
        };
        check_pending(&status)?;
        if accept && !may_write_in(&mut tx, chat, inviter).await? {
            withdraw_in(&mut tx, invite).await?;
            tx.commit().await?;
            return Err(InviteError::Withdrawn);
        }
        let updated: ChatInvite = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE chat_invites SET status = $2 WHERE id = $1 RETURNING {COLUMNS}"
        )))
        .bind(invite)
        .bind(if accept { "Accepted" } else { "Declined" })
        .fetch_one(&mut *tx)
        .await?;
        if accept {
            sqlx::query(
                "INSERT INTO chat_participants (id, chat_id, user_id) VALUES ($1, $2, $3)
                 ON CONFLICT (chat_id, user_id) DO NOTHING",
            )
            .bind(self.ids.next_id())
            .bind(chat)
            .bind(invitee)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        if accept {
            self.participants_changed(chat).await?;
        }
        Ok(updated)
    }

    /// Withdraws a pending invite: its inviter may, and the chat's managers. Others who may
    /// read the chat are not allowed; to anyone else it is not found.
    pub async fn withdraw_invite(
        &self,
        caller: UserId,
        invite: crate::ids::ChatInviteId,
    ) -> Result<ChatInvite, InviteError> {
        let mut tx = self.pool.begin().await?;
        let current: Option<(String, ChatId, Option<UserId>, UserId)> = sqlx::query_as(
            "SELECT status, chat_id, inviter_id, user_id FROM chat_invites WHERE id = $1 FOR UPDATE",
        )
        .bind(invite)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((status, chat, inviter, invitee)) = current else {
            return Err(InviteError::NotFound);
        };
        if inviter != Some(caller) {
            let access = access_in(&mut tx, chat, caller).await?;
            if !access.is_some_and(|a| a.can_manage()) {
                let knows = access.is_some_and(|a| a.can_write()) || invitee == caller;
                return Err(if knows {
                    ChatError::Forbidden.into()
                } else {
                    InviteError::NotFound
                });
            }
        }
        check_pending(&status)?;
        let withdrawn = withdraw_in(&mut tx, invite).await?;
        tx.commit().await?;
        Ok(withdrawn)
    }
}

/// Refuses an invite that is no longer pending, saying whether it was withdrawn.
fn check_pending(status: &str) -> Result<(), InviteError> {
    match status {
        "Pending" => Ok(()),
        "Withdrawn" => Err(InviteError::Withdrawn),
        _ => Err(InviteError::Answered),
    }
}

async fn withdraw_in(
    conn: &mut sqlx::PgConnection,
    invite: crate::ids::ChatInviteId,
) -> Result<ChatInvite, InviteError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE chat_invites SET status = 'Withdrawn' WHERE id = $1 RETURNING {COLUMNS}"
    )))
    .bind(invite)
    .fetch_one(conn)
    .await?)
}

/// `user`'s access to `chat`, read in the caller's transaction.
async fn access_in(
    conn: &mut sqlx::PgConnection,
    chat: ChatId,
    user: UserId,
) -> Result<Option<super::access::ChatAccess>, InviteError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {} FROM chats c WHERE c.id = $1",
        super::access::ACCESS_COLUMNS
    )))
    .bind(chat)
    .bind(user)
    .fetch_optional(conn)
    .await?;
    Ok(row
        .map(|row| super::access::access_from_row(&row, Some(user)))
        .transpose()?)
}

/// Whether the inviter may still write in the chat (what inviting needs); a deleted one may not.
async fn may_write_in(
    conn: &mut sqlx::PgConnection,
    chat: ChatId,
    inviter: Option<UserId>,
) -> Result<bool, InviteError> {
    let Some(inviter) = inviter else {
        return Ok(false);
    };
    Ok(access_in(conn, chat, inviter)
        .await?
        .is_some_and(|a| a.can_write()))
}
