//! Why a routine operation failed, and the code each answers with (a team's refusal and a
//! database error keep their own).

use super::graph::GraphError;
use crate::errors::{Code, ErrorCode, Told};
use crate::teams::TeamError;

#[derive(Debug, thiserror::Error)]
pub enum RoutineError {
    #[error(transparent)]
    Graph(#[from] GraphError),
    #[error("node {node:?}: routine version {version} does not exist")]
    MissingSubroutine { node: String, version: String },
    #[error("resourceType must be \"Routine\"")]
    NotARoutine,
    #[error("no such routine")]
    ResourceNotFound,
    #[error("no such routine version")]
    VersionNotFound,
    #[error("this version has been run; add a new version instead")]
    VersionHasRuns,
    #[error("this routine already has a version {0:?}")]
    LabelInUse(String),
    #[error("{0}")]
    Invalid(String),
    /// An import names a routine it neither holds nor finds stored.
    #[error("{0}")]
    MissingReference(String),
    /// The team of a team routine: not found, or the caller may not do this there.
    #[error(transparent)]
    Team(TeamError),
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
}

impl ErrorCode for RoutineError {
    fn told(&self) -> Told {
        let code = match self {
            RoutineError::Graph(GraphError::Unsupported(_)) => Code::GraphTypeUnsupported,
            RoutineError::Graph(GraphError::Unavailable { .. }) => Code::NodeKindUnavailable,
            RoutineError::Graph(GraphError::Invalid { .. })
            | RoutineError::MissingSubroutine { .. } => Code::InvalidRoutineGraph,
            RoutineError::NotARoutine => Code::InvalidResourceType,
            RoutineError::ResourceNotFound => Code::ResourceNotFound,
            RoutineError::VersionNotFound => Code::ResourceVersionNotFound,
            RoutineError::VersionHasRuns => Code::VersionHasRuns,
            RoutineError::LabelInUse(_) => Code::VersionLabelInUse,
            RoutineError::Invalid(_) => Code::InvalidBody,
            RoutineError::MissingReference(_) => Code::ReferenceNotFound,
            RoutineError::Team(e) => return e.told(),
            RoutineError::Sql(e) => return e.told(),
        };
        Told::says(code, self)
    }
}

impl From<TeamError> for RoutineError {
    fn from(error: TeamError) -> Self {
        match error {
            TeamError::Database(e) => RoutineError::Sql(e),
            other => RoutineError::Team(other),
        }
    }
}
