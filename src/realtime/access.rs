//! Who may join which room, answered from PostgreSQL for the actors:
//! - a chat room: whoever may read the chat (`chat::access`, the one place chat permissions are
//!   decided);
//! - a run room: whoever may read the run (its owner, members of its team, or anyone when it is
//!   not private);
//! - a user room: that user only.
//!
//! - acting in a chat room (stopping a bot's answer): whoever may write in the chat.
//!
//! Also whether a connection's session is still live (not revoked, not expired, user not locked).

use sqlx::PgPool;
use vrooli_actors::broker::BoxFut;
use vrooli_actors::{Access, Authorizer, Caller, RoomKey, RoomKind};

use crate::ids::{ChatId, UserId};

pub struct SqlAuthorizer {
    pool: PgPool,
}

impl SqlAuthorizer {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

fn parse_id(text: &str) -> Option<i64> {
    text.parse().ok()
}

async fn chat_room_access(pool: &PgPool, chat: i64, user: i64) -> Result<Access, sqlx::Error> {
    let access = crate::chat::access::chat_access(pool, ChatId(chat), Some(UserId(user))).await?;
    Ok(match access {
        None => Access::NotFound,
        Some(a) if a.can_join_room() => Access::Allowed,
        Some(_) => Access::Denied,
    })
}

async fn run_access(pool: &PgPool, run: i64, user: i64) -> Result<Access, sqlx::Error> {
    Ok(
        match crate::runs::read::visibility(pool, run, Some(UserId(user))).await? {
            None => Access::NotFound,
            Some(true) => Access::Allowed,
            Some(false) => Access::Denied,
        },
    )
}

impl Authorizer for SqlAuthorizer {
    fn can_join(&self, caller: &Caller, room: &RoomKey) -> BoxFut<'static, Result<Access, String>> {
        let pool = self.pool.clone();
        let user = caller.user_id.0;
        let kind = room.kind();
        let id = parse_id(room.id());
        let same_user = room.id() == caller.user_id.to_string();
        Box::pin(async move {
            let Some(id) = id else {
                return Ok(Access::NotFound);
            };
            let access = match kind {
                RoomKind::User if same_user => Ok(Access::Allowed),
                RoomKind::User => Ok(Access::Denied),
                RoomKind::Chat => chat_room_access(&pool, id, user).await,
                RoomKind::Run => run_access(&pool, id, user).await,
            };
            access.map_err(|e| e.to_string())
        })
    }

    fn can_act(&self, caller: &Caller, room: &RoomKey) -> BoxFut<'static, Result<Access, String>> {
        if room.kind() != RoomKind::Chat {
            return self.can_join(caller, room);
        }
        let pool = self.pool.clone();
        let user = caller.user_id.0;
        let chat = parse_id(room.id());
        Box::pin(async move {
            let Some(chat) = chat else {
                return Ok(Access::NotFound);
            };
            let access = crate::chat::access::chat_access(&pool, ChatId(chat), Some(UserId(user)))
                .await
                .map_err(|e| e.to_string())?;
            Ok(match access {
                Some(a) if a.signed_in && a.can_write() => Access::Allowed,
                Some(a) if a.can_read() => Access::Denied,
                _ => Access::NotFound,
            })
        })
    }

    fn session_valid(&self, caller: &Caller) -> BoxFut<'static, Result<bool, String>> {
        let pool = self.pool.clone();
        let session = caller.session_id.0;
        Box::pin(async move {
            let live: Option<bool> = sqlx::query_scalar(
                "SELECT s.revoked_at IS NULL AND s.expires_at > now()
                        AND u.status NOT IN ('HardLocked', 'Deleted')
                   FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1",
            )
            .bind(session)
            .fetch_optional(&pool)
            .await
            .map_err(|e| e.to_string())?;
            Ok(live == Some(true))
        })
    }
}
