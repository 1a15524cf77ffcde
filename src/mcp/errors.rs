//! What a refused or failed MCP tool call says: a stable code (the REST routes' codes of
//! `docs/ERRORS.md`, plus `InvalidArguments` and `UnknownTool`) and a message, returned as an
//! `isError` result by `super::Handler`.

/// Why a call did nothing: a stable code and a message, returned as an `isError` result.
#[derive(Debug)]
pub struct ToolError {
    pub code: &'static str,
    pub message: String,
}

impl ToolError {
    pub(super) fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// A failure of ours (the database): logged here, not described to the caller.
    fn internal(error: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %error, "an MCP tool failed");
        Self::new("InternalError", "The server could not do that; try again")
    }
}

// The services' errors as the REST routes' codes (`docs/ERRORS.md`), so an agent can tell a
// missing thing from a refusal; a database failure says only that it failed.
impl From<crate::chat::ChatError> for ToolError {
    fn from(error: crate::chat::ChatError) -> Self {
        use crate::chat::ChatError as E;
        let code = match &error {
            E::ChatNotFound => "ChatNotFound",
            E::MessageNotFound => "MessageNotFound",
            E::Forbidden => "NotAllowed",
            E::BadParent => "InvalidParent",
            E::NotABot => "NotABot",
            E::NotATeamMember => "NotATeamMember",
            E::InsufficientCredits { .. } => "InsufficientCredits",
            E::KeyLimitReached { .. } => "ApiKeyLimitReached",
            E::SessionEnded => "SessionRevoked",
            E::Database(_) => return Self::internal(&error),
        };
        Self::new(code, error.to_string())
    }
}

impl From<crate::routines::RoutineError> for ToolError {
    fn from(error: crate::routines::RoutineError) -> Self {
        use crate::routines::{GraphError, RoutineError as E};
        let code = match &error {
            E::Graph(GraphError::Unsupported(_)) => "GraphTypeUnsupported",
            E::Graph(GraphError::Unavailable { .. }) => "NodeKindUnavailable",
            E::Graph(GraphError::Invalid { .. }) | E::MissingSubroutine { .. } => {
                "InvalidRoutineGraph"
            }
            E::NotARoutine => "InvalidResourceType",
            E::ResourceNotFound => "ResourceNotFound",
            E::VersionNotFound => "ResourceVersionNotFound",
            E::VersionHasRuns => "VersionHasRuns",
            E::LabelInUse(_) => "VersionLabelInUse",
            E::Invalid(_) => "InvalidArguments",
            E::MissingReference(_) => "ReferenceNotFound",
            E::Team(crate::teams::TeamError::TeamNotFound) => "TeamNotFound",
            E::Team(_) => "NotAllowed",
            E::Sql(_) => return Self::internal(&error),
        };
        Self::new(code, error.to_string())
    }
}

impl From<crate::runs::RunError> for ToolError {
    fn from(error: crate::runs::RunError) -> Self {
        use crate::runs::RunError as E;
        let code = match &error {
            E::KindUnavailable { .. } => "NodeKindUnavailable",
            E::TooDeep(_) => "InvalidRoutineGraph",
            E::NotFound => "RunNotFound",
            E::NotAllowed => "NotAllowed",
            E::Transition(..) => "InvalidTransition",
            E::KeyReused => "IdempotencyKeyReused",
            E::Invalid(_) => "InvalidArguments",
            E::Limits(_) => "InvalidLimits",
            // Both have their own way out below.
            E::Routine(_) | E::Sql(_) => "InternalError",
        };
        match error {
            E::Routine(inner) => inner.into(),
            E::Sql(inner) => Self::internal(&inner),
            other => Self::new(code, other.to_string()),
        }
    }
}

impl From<sqlx::Error> for ToolError {
    fn from(error: sqlx::Error) -> Self {
        Self::internal(&error)
    }
}
