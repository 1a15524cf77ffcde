//! What a refused or failed MCP tool call says: a stable code from the one table (`docs/ERRORS.md`;
//! MCP adds only `InvalidArguments` and `UnknownTool`) and a message, returned as an `isError`
//! result by `super::Handler`. A service's error becomes one through `crate::errors`, exactly as
//! REST's `ApiError` does, so both transports answer the same code for the same refusal.

use crate::errors::{Code, ErrorCode, Told};

/// Why a call did nothing: a stable code and a message, returned as an `isError` result.
#[derive(Debug)]
pub struct ToolError {
    pub code: Code,
    pub message: String,
}

impl ToolError {
    pub(super) fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// Any domain error (and a database error) as its code says. A failure of ours is logged here
/// with its cause and told only as the code's fixed message.
impl<E: ErrorCode> From<E> for ToolError {
    fn from(error: E) -> Self {
        let Told { code, message } = error.told();
        if code.kind().is_ours() {
            // With its source chain, as REST's `ApiError` logs a cause.
            let cause = anyhow::Error::new(error);
            tracing::error!(
                code = code.as_str(),
                cause = format!("{cause:#}"),
                "an MCP tool failed"
            );
        }
        Self::new(code, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::ApiError;

    /// One sample of each kind of service error, made afresh for each transport.
    fn samples() -> Vec<Box<dyn Fn() -> (ApiError, ToolError)>> {
        fn both<E: ErrorCode>(
            make: impl Fn() -> E + 'static,
        ) -> Box<dyn Fn() -> (ApiError, ToolError)> {
            Box::new(move || (ApiError::from(make()), ToolError::from(make())))
        }
        use crate::chat::ChatError;
        use crate::routines::{GraphError, RoutineError};
        use crate::runs::RunError;
        use crate::teams::TeamError;
        vec![
            both(|| ChatError::KeyLimitReached { used: 5, limit: 5 }),
            both(|| ChatError::InsufficientCredits {
                balance: 1,
                needed: 2,
            }),
            both(|| ChatError::Forbidden),
            both(|| ChatError::ChatNotFound),
            both(|| RoutineError::VersionNotFound),
            both(|| RoutineError::Invalid("no".into())),
            both(|| RoutineError::Graph(GraphError::Unsupported("x".into()))),
            both(|| RoutineError::Team(TeamError::NotAllowed)),
            both(|| TeamError::Lacks(crate::teams::TeamPermission::StartRuns)),
            both(|| RunError::NotFound),
            both(|| RunError::Invalid("no".into())),
            both(|| RunError::Routine(RoutineError::ResourceNotFound)),
            both(|| TeamError::LastAdmin),
            both(|| {
                crate::auth::api_keys::MissingPermission(
                    crate::auth::api_keys::Permission::WritePrivate,
                )
            }),
            both(|| sqlx::Error::PoolTimedOut),
            both(|| sqlx::Error::RowNotFound),
        ]
    }

    #[test]
    fn rest_and_mcp_give_the_same_code_and_message_for_every_service_error() {
        for make in samples() {
            let (rest, mcp) = make();
            assert_eq!(rest.code, mcp.code, "{rest}");
            assert_eq!(rest.message, mcp.message, "{rest}");
        }
    }

    #[test]
    fn a_key_over_its_limit_is_the_documented_code_on_both() {
        let (rest, mcp) = (samples()[0])();
        assert_eq!(rest.code, Code::ApiKeyCreditLimit);
        assert_eq!(mcp.code, Code::ApiKeyCreditLimit);
    }
}
