//! What a check answers: a [`Status`] and the service's [`ServiceHealth`] (the original's
//! shape). Below the checks (`checks.rs`) and the service that gathers them (`mod.rs`).

use chrono::{DateTime, Utc};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
pub enum Status {
    Operational,
    Degraded,
    Down,
}

/// One service's health, in the original's shape.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceHealth {
    pub healthy: bool,
    pub status: Status,
    pub last_checked: DateTime<Utc>,
    /// Internals, shown only to a caller with the system key.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
}

impl ServiceHealth {
    pub fn new(status: Status, details: serde_json::Value) -> Self {
        Self {
            healthy: status != Status::Down,
            status,
            last_checked: Utc::now(),
            details: Some(details),
        }
    }
}
