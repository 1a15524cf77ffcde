//! Each domain error says its code once, here on the ground floor, and every transport answers
//! through it (anchor: Meilisearch's `ErrorCode` trait in `meilisearch-types`).
//!
//! ```text
//! ChatError, RunError, … ──impl ErrorCode (beside the error's definition)──► Told {code, message}
//!                                                                              │
//!        REST: http::ApiError (status from the code's Kind) ◄──────────────────┤
//!        MCP:  mcp::ToolError (an isError result)           ◄──────────────────┤
//! ```
//!
//! The table of codes itself is the `vrooli-codes` crate, shared with the actor system, which
//! answers WebSocket acks from it. A failure of ours (the code's [`Kind::is_ours`]) is told with
//! the code's fixed message; its cause stays in the error, which the transport logs.
//!
//! A database error is an `ErrorCode` too: the constraints that stand for a rule a caller can
//! break map to that rule's code, a lost connection is `ServiceUnavailable`, anything else is
//! ours.

use std::borrow::Cow;

pub use vrooli_codes::{Code, Kind};

/// What a caller is told about an error: its code and a message safe to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Told {
    pub code: Code,
    pub message: Cow<'static, str>,
}

impl Told {
    /// A refusal with its message.
    pub fn of(code: Code, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// A refusal told in the error's own words (its `Display`).
    pub fn says(code: Code, error: &impl std::fmt::Display) -> Self {
        Self::of(code, error.to_string())
    }

    /// A failure of ours: the code's fixed message, never the cause's text.
    pub fn ours(code: Code) -> Self {
        debug_assert!(code.kind().is_ours(), "{code} is not a failure of ours");
        Self::of(code, code.fixed_message().unwrap_or("Try again shortly"))
    }

    /// Something went wrong on our side.
    pub fn internal() -> Self {
        Self::ours(Code::InternalError)
    }
}

/// An error that knows what its caller is told. Implemented beside each domain error's
/// definition; the transports convert any `ErrorCode` (`From` for `ApiError` and `ToolError`).
pub trait ErrorCode: std::error::Error + Send + Sync + 'static {
    fn told(&self) -> Told;
}

/// The schema's constraints that stand for a rule a caller can break, each mapped once to the
/// code the caller gets (the migrations name them).
pub(crate) const CONSTRAINTS: &[(&str, Code, &str)] = &[
    (
        "emails_address_key",
        Code::EmailInUse,
        "An account with this email address exists",
    ),
    (
        "chat_participants_chat_user_key",
        Code::AlreadyParticipant,
        "That user already takes part in this chat",
    ),
    (
        "users_handle_key",
        Code::HandleTaken,
        "Someone has this handle",
    ),
    (
        "teams_handle_key",
        Code::HandleTaken,
        "A team with this handle exists",
    ),
    (
        "members_team_user_key",
        Code::AlreadyMember,
        "This user is already a member",
    ),
    (
        "api_keys_soft_below_hard",
        Code::InvalidLimits,
        "The soft limit must be at most the hard limit",
    ),
    (
        "credit_accounts_balance_not_negative",
        Code::InsufficientCredits,
        "Not enough credits",
    ),
];

impl ErrorCode for sqlx::Error {
    fn told(&self) -> Told {
        if let sqlx::Error::Database(db) = self
            && let Some((_, code, message)) = CONSTRAINTS
                .iter()
                .find(|(name, _, _)| db.constraint() == Some(*name))
        {
            return Told::of(*code, *message);
        }
        match self {
            // Any other unique or foreign-key violation: the caller's conflict, in general terms.
            sqlx::Error::Database(db) if db.is_unique_violation() => Told::of(
                Code::AlreadyExists,
                "Something with these details already exists",
            ),
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => Told::of(
                Code::ReferenceNotFound,
                "The request refers to something that does not exist",
            ),
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                Told::ours(Code::ServiceUnavailable)
            }
            _ => Told::internal(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mapped_constraint_exists_in_the_migrations() {
        let migrations: String =
            std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
                .unwrap()
                .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
                .collect();
        for (name, _, _) in CONSTRAINTS {
            assert!(
                migrations.contains(name),
                "no constraint {name} in migrations/"
            );
        }
    }

    #[test]
    fn the_documented_table_is_the_table() {
        let doc = include_str!("../docs/ERRORS.md");
        for code in Code::ALL {
            let row = format!("| `{}` | {} |", code.as_str(), code.kind().status());
            assert!(doc.contains(&row), "docs/ERRORS.md lacks the row {row}");
        }
        let rows = doc.lines().filter(|l| l.starts_with("| `")).count();
        assert_eq!(
            rows,
            Code::ALL.len(),
            "docs/ERRORS.md lists codes that do not exist"
        );
    }

    #[test]
    fn a_lost_connection_is_unavailable_and_says_nothing_of_it() {
        let told = sqlx::Error::PoolTimedOut.told();
        assert_eq!(told.code, Code::ServiceUnavailable);
        let told = sqlx::Error::Protocol("password=hunter2".into()).told();
        assert_eq!(told.code, Code::InternalError);
        assert!(!told.message.contains("hunter2"));
    }
}
