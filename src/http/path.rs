//! Typed ids from the path, parsed at the edge: a handler takes `Id<ChatId>` (the `{id}`
//! segment) or `Ids<ChatId, UserId>` (the route's two segments, in order) and never sees the
//! text. A segment that is not an id of that type is a 400 with the type's own code
//! (`InvalidChatId`, `InvalidUserId`, …), as before.

use std::future::{Ready, ready};
use std::str::FromStr;

use actix_web::{FromRequest, HttpRequest, dev::Payload};

use super::error::ApiError;
use crate::errors::Code;
use crate::ids::{
    ApiKeyId, ChatId, ChatInviteId, ChatMessageId, FileId, MemberId, MemberInviteId,
    NotificationId, PushDeviceId, ResourceVersionId, RunId, TeamId, UserExportId, UserId,
    UserImportId,
};
use crate::jobs::JobId;

/// An id type that may appear in a path, with the code of its parse error.
pub trait PathId: FromStr + Sized {
    const CODE: Code;
    /// What the error message calls it: "A chat id is a decimal number".
    const NAME: &'static str;
}

macro_rules! path_ids {
    ($($ty:ty => $code:ident, $name:literal;)*) => {$(
        impl PathId for $ty {
            const CODE: Code = Code::$code;
            const NAME: &'static str = $name;
        }
    )*};
}

path_ids! {
    ChatId => InvalidChatId, "chat id";
    ChatMessageId => InvalidMessageId, "message id";
    ChatInviteId => InvalidInviteId, "invite id";
    UserId => InvalidUserId, "user id";
    NotificationId => InvalidNotificationId, "notification id";
    ApiKeyId => InvalidId, "API key id";
    JobId => InvalidJobId, "job id";
    ResourceVersionId => InvalidResourceVersionId, "routine version id";
    RunId => InvalidRunId, "run id";
    TeamId => InvalidTeamId, "team id";
    MemberId => InvalidMemberId, "member id";
    MemberInviteId => InvalidInviteId, "invite id";
    PushDeviceId => InvalidPushDeviceId, "push device id";
    UserExportId => InvalidExportId, "export id";
    UserImportId => InvalidImportId, "import id";
    FileId => InvalidId, "file id";
}

/// An id of type `T` from its text, with the type's own 400 code: the path's segments, and ids
/// in query strings (`?teamId=`).
pub fn parse_id<T: PathId>(text: &str) -> Result<T, ApiError> {
    text.parse()
        .map_err(|_| ApiError::of(T::CODE, format!("A {} is a decimal number", T::NAME)))
}

/// The `{id}` segment as a `T`.
#[derive(Debug, Clone, Copy)]
pub struct Id<T>(pub T);

impl<T: PathId> FromRequest for Id<T> {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(parse_id(req.match_info().get("id").unwrap_or("")).map(Id))
    }
}

/// A route's two segments, in order, as an `A` and a `B`.
#[derive(Debug, Clone, Copy)]
pub struct Ids<A, B>(pub A, pub B);

impl<A: PathId, B: PathId> FromRequest for Ids<A, B> {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let mut segments = req.match_info().iter().map(|(_, value)| value);
        let (first, second) = (segments.next().unwrap_or(""), segments.next().unwrap_or(""));
        ready(parse_id(first).and_then(|a| Ok(Ids(a, parse_id(second)?))))
    }
}
