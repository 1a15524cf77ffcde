//! Identifiers. Primary keys are 64-bit Snowflake ids ([`snowflake`]), wrapped in one type per
//! table so a `UserId` can never be passed where a `TeamId` is meant. On the wire they are strings:
//! JavaScript numbers lose precision above 2^53. Shareable rows also get a 12-character
//! [`public_id`].

pub mod public_id;
pub mod snowflake;

pub use public_id::PublicId;
pub use snowflake::Snowflake;

/// Declares a typed id over a Snowflake `i64`: `BIGINT` in SQL, a string in JSON.
macro_rules! typed_id {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, sqlx::Type)]
        #[sqlx(transparent)]
        pub struct $name(pub i64);

        vrooli_actors::snowflake_id_impls!($name);

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                id_schema()
            }
        }

        impl utoipa::ToSchema for $name {}
    )*};
}

/// How every typed id is described in the OpenAPI document: always written as a decimal string,
/// read from a string or a JSON integer.
fn id_schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::Type;
    use utoipa::openapi::schema::SchemaType;
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Integer]))
        .description(Some(
            "A 64-bit id: written as a decimal string, read as one or as an integer",
        ))
        .pattern(Some("^[0-9]{1,19}$"))
        .examples([serde_json::json!("7263419283746592768")])
        .into()
}

typed_id!(
    /// A row of `users` (people and bots).
    UserId,
    /// A row of `teams`.
    TeamId,
    /// A row of `members` (a user in a team).
    MemberId,
    /// A row of `emails`.
    EmailId,
    /// A row of `user_auth`.
    UserAuthId,
    /// A row of `sessions` (one sign-in on one device).
    SessionId,
    /// A row of `chats`.
    ChatId,
    /// A row of `chat_messages`.
    ChatMessageId,
    /// A row of `chat_invites`.
    ChatInviteId,
    /// A row of `member_invites` (an invite to a team).
    MemberInviteId,
    /// A row of `push_devices` (a browser subscribed to Web Push).
    PushDeviceId,
    /// A row of `user_exports` (an archive of one user's data).
    UserExportId,
    /// A row of `user_imports` (an archive being recreated under its importer).
    UserImportId,
    /// A row of `files` (an upload and its variants).
    FileId,
    /// A row of `notifications`.
    NotificationId,
    /// A row of `api_keys`.
    ApiKeyId,
    /// A row of `resources` (a routine).
    ResourceId,
    /// A row of `resource_versions`.
    ResourceVersionId,
    /// A row of `runs`.
    RunId,
);

/// The actor crate mirrors the ids it passes around; these convert at the boundary.
macro_rules! actor_ids {
    ($($name:ident),*) => {$(
        impl From<$name> for vrooli_actors::$name {
            fn from(id: $name) -> Self {
                Self(id.0)
            }
        }

        impl From<vrooli_actors::$name> for $name {
            fn from(id: vrooli_actors::$name) -> Self {
                Self(id.0)
            }
        }
    )*};
}

actor_ids!(UserId, SessionId, ChatId);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_travel_as_strings() {
        let id = UserId(9_007_199_254_740_993); // 2^53 + 1: a JS number would round it
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"9007199254740993\"");
        assert_eq!(serde_json::from_str::<UserId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<UserId>("\"12x\"").is_err());
        assert_eq!(serde_json::from_str::<UserId>("12").unwrap(), UserId(12));
    }
}
