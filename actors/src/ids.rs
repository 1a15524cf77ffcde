//! The ids the actors pass around: a user, a session, a chat. The server's are 64-bit Snowflakes
//! with their own types (and SQL mappings); these mirror them so the actor crate never passes an
//! id as a bare `String` and cannot swap a user for a session. In JSON (node messages, event
//! data) they are strings, as the server's are, and bare numbers are read too.

/// The impls every id over a Snowflake `i64` has, here and in the server (`vrooli::ids`):
/// `Display` and `FromStr` as the number, JSON as a string (a bare number is read too, for
/// payloads stored when some ids were integers). The server adds its SQL mapping on top.
#[macro_export]
macro_rules! snowflake_id_impls {
    ($name:ident) => {
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = std::num::ParseIntError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.parse().map($name)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                // Not `collect_str`: that formats through `core::fmt` and an escaping adapter,
                // and a page of messages writes about a hundred ids.
                s.serialize_str($crate::__itoa::Buffer::new().format(self.0))
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                #[derive(serde::Deserialize)]
                #[serde(untagged)]
                enum Text<'a> {
                    #[serde(borrow)]
                    Str(std::borrow::Cow<'a, str>),
                    Num(i64),
                }
                match Text::deserialize(d)? {
                    Text::Num(n) => Ok($name(n)),
                    Text::Str(text) => text.parse().map_err(|_| {
                        serde::de::Error::custom(concat!("invalid ", stringify!($name)))
                    }),
                }
            }
        }
    };
}

macro_rules! actor_id {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub i64);

        $crate::snowflake_id_impls!($name);
    )*};
}

actor_id!(
    /// A person or bot.
    UserId,
    /// One sign-in on one device.
    SessionId,
    /// A chat (whose bot answers can be cancelled).
    ChatId,
    /// A run of a routine.
    RunId,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_strings_in_json_and_numbers_are_read() {
        assert_eq!(serde_json::to_string(&UserId(7)).unwrap(), "\"7\"");
        assert_eq!(serde_json::from_str::<UserId>("\"7\"").unwrap(), UserId(7));
        assert_eq!(
            serde_json::from_str::<SessionId>("7").unwrap(),
            SessionId(7)
        );
        assert!(serde_json::from_str::<ChatId>("\"x\"").is_err());
    }
}
