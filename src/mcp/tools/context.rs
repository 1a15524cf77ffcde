//! What every tool shares: who is calling (`Caller`), the services the tools call (`Tools`, the
//! same as REST's), the permission check, reading arguments and ids, and the longest wait.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::auth::api_keys::{MissingPermission, Permission};
use crate::chat::ChatService;
use crate::errors::Code;
use crate::ids::{TeamId, UserId};
use crate::mcp::errors::ToolError;
use crate::routines::RoutineService;
use crate::runs::RunService;

/// Who is calling: an API key's owner with its permissions, the system key (all of them,
/// acting as the seeded admin), or a run's `action` step with the run's scope
/// (`runs::scope`).
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: UserId,
    pub api_key: Option<crate::ids::ApiKeyId>,
    pub permissions: Vec<Permission>,
    /// A team run's step: it reaches only that team's chats, routines and runs (`within`).
    pub team: Option<TeamId>,
    /// The run whose step calls: a run it starts is that run's child.
    pub run: Option<i64>,
}

/// The longest a call may wait for a bot's answer or a run's end (`waitForResponse`, `sync`).
const MAX_WAIT: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub struct Tools {
    pub chats: ChatService,
    pub routines: RoutineService,
    pub runs: RunService,
}

pub(super) fn need(caller: &Caller, permission: Permission) -> Result<(), ToolError> {
    if caller.permissions.contains(&permission) {
        Ok(())
    } else {
        Err(MissingPermission(permission).into())
    }
}

/// A team run's step may touch only what belongs to its team (`owner` being the team of what it
/// touches); other callers are not kept to a team.
pub(super) fn within(caller: &Caller, owner: Option<TeamId>) -> Result<(), ToolError> {
    match caller.team {
        Some(team) if owner != Some(team) => Err(ToolError::new(
            Code::OutsideTeam,
            "A team's run reaches only its team's chats, routines and runs",
        )),
        _ => Ok(()),
    }
}

pub(super) fn args<T: for<'de> Deserialize<'de>>(arguments: Value) -> Result<T, ToolError> {
    serde_json::from_value(arguments)
        .map_err(|e| ToolError::new(Code::InvalidArguments, e.to_string()))
}

pub(super) fn parse_id<T: std::str::FromStr>(text: &str, what: &str) -> Result<T, ToolError> {
    text.parse()
        .map_err(|_| ToolError::new(Code::InvalidArguments, format!("{what} is a decimal id")))
}

pub(super) fn wait_for(timeout_ms: Option<u64>) -> Duration {
    timeout_ms
        .map_or(MAX_WAIT, Duration::from_millis)
        .min(MAX_WAIT)
}
