//! Why a chat operation failed (and the code each answers with); a credit error becomes one.

use crate::errors::{Code, ErrorCode, Told};

#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error("no such chat")]
    ChatNotFound,
    #[error("no such message")]
    MessageNotFound,
    #[error("not allowed")]
    Forbidden,
    #[error("the parent message is not in this chat")]
    BadParent,
    #[error("only bots can be added directly; people are invited")]
    NotABot,
    #[error("not a member of that team")]
    NotATeamMember,
    /// A member whose role lacks the team permission this needs (named in the refusal).
    #[error("this needs the team permission {}", .0.as_str())]
    LacksTeamPermission(crate::teams::TeamPermission),
    #[error("insufficient credits")]
    InsufficientCredits { balance: i64, needed: i64 },
    #[error("the API key reached its credit limit")]
    KeyLimitReached { used: i64, limit: i64 },
    /// The session a read was asked to confirm ([`ChatService::readable_messages`](super::ChatService::readable_messages)) was revoked.
    #[error("the session was signed out")]
    SessionEnded,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl ErrorCode for ChatError {
    fn told(&self) -> Told {
        match self {
            ChatError::ChatNotFound => Told::of(Code::ChatNotFound, "No such chat"),
            ChatError::MessageNotFound => Told::of(Code::MessageNotFound, "No such message"),
            ChatError::Forbidden => Told::of(Code::NotAllowed, "You may not do this in this chat"),
            ChatError::BadParent => Told::of(
                Code::InvalidParent,
                "The parent message is not in this chat",
            ),
            ChatError::NotABot => Told::of(
                Code::NotABot,
                "Only bots can be added directly; invite people instead",
            ),
            ChatError::InsufficientCredits { balance, needed } => Told::of(
                Code::InsufficientCredits,
                format!("A bot's answer needs at least {needed} credits; the balance is {balance}"),
            ),
            ChatError::NotATeamMember => Told::of(
                Code::NotATeamMember,
                "Only admins of a team and members allowed CreateChats make its chats",
            ),
            ChatError::LacksTeamPermission(permission) => Told::of(
                Code::NotAllowed,
                format!(
                    "This needs the team permission {}, which your role in this team does not hold",
                    permission.as_str()
                ),
            ),
            ChatError::KeyLimitReached { used, limit } => Told::of(
                Code::ApiKeyCreditLimit,
                format!("This API key has spent {used} of its {limit} credits"),
            ),
            ChatError::SessionEnded => Told::of(Code::SessionRevoked, "the session was signed out"),
            ChatError::Database(e) => e.told(),
        }
    }
}

impl From<crate::credits::CreditError> for ChatError {
    fn from(error: crate::credits::CreditError) -> Self {
        use crate::credits::CreditError;
        match error {
            CreditError::Insufficient { balance, needed } => {
                ChatError::InsufficientCredits { balance, needed }
            }
            CreditError::KeyLimitReached { used, limit } => {
                ChatError::KeyLimitReached { used, limit }
            }
            CreditError::UnknownKey => ChatError::Forbidden,
            CreditError::Database(error) => ChatError::Database(error),
        }
    }
}
