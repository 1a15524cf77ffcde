//! What the actors ask the server about callers: may this caller join that room, and is the
//! caller's session still valid. The server answers from PostgreSQL; the actors only see this
//! trait.

use crate::fut::BoxFut;
use crate::ids::{SessionId, UserId};
use crate::key::RoomKey;

/// Who is on the other end of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub user_id: UserId,
    pub session_id: SessionId,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Allowed,
    /// The room exists but this caller may not join it.
    Denied,
    /// No such room (or one the caller may not know exists).
    NotFound,
}

pub trait Authorizer: Send + Sync + 'static {
    fn can_join(&self, caller: &Caller, room: &RoomKey) -> BoxFut<'static, Result<Access, String>>;
    /// May this caller act in the room (stop a bot's answer), not only watch it? By default,
    /// whoever may join.
    fn can_act(&self, caller: &Caller, room: &RoomKey) -> BoxFut<'static, Result<Access, String>> {
        self.can_join(caller, room)
    }
    /// `false` when the session was revoked or has expired.
    fn session_valid(&self, caller: &Caller) -> BoxFut<'static, Result<bool, String>>;
}
