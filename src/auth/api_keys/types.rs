//! What an API key is: its permissions, the row its owner sees, what a new key and a change
//! carry, and the errors of asking past a permission or making too many keys. Plain data; the
//! queries are in `crud.rs`.

use crate::errors::{Code, ErrorCode, Told};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{ApiKeyId, TeamId, UserId};

/// What an API key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Permission {
    ReadPublic,
    ReadPrivate,
    WritePrivate,
    ReadAuth,
    WriteAuth,
}

/// An API key asked for what its permissions do not cover (REST's extractors and the MCP tools
/// alike).
#[derive(Debug, thiserror::Error)]
#[error("This API key lacks the {} permission", .0.as_str())]
pub struct MissingPermission(pub Permission);

impl ErrorCode for MissingPermission {
    fn told(&self) -> Told {
        Told::says(Code::MissingPermission, self)
    }
}

impl Permission {
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::ReadPublic => "ReadPublic",
            Permission::ReadPrivate => "ReadPrivate",
            Permission::WritePrivate => "WritePrivate",
            Permission::ReadAuth => "ReadAuth",
            Permission::WriteAuth => "WriteAuth",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::ReadPublic,
            Self::ReadPrivate,
            Self::WritePrivate,
            Self::ReadAuth,
            Self::WriteAuth,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
    }
}

/// A request authenticated by an API key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyAuth {
    pub key_id: ApiKeyId,
    /// The key's owner; for a team's key, the admin who made it.
    pub user: UserId,
    pub permissions: Vec<Permission>,
    /// The team whose key this is.
    #[serde(default)]
    pub team: Option<TeamId>,
}

/// An API key as its owner sees it (never the secret).
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyRow {
    pub id: ApiKeyId,
    pub name: String,
    /// The key's public part (`vrk_<prefix>_…`), to tell keys apart.
    pub key_prefix: String,
    #[schema(value_type = Vec<Permission>)]
    pub permissions: Vec<String>,
    pub credits_used: i64,
    pub limit_soft: Option<i64>,
    pub limit_hard: i64,
    pub stop_at_limit: bool,
    pub disabled_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// A team's key: that team (it acts as `createdBy`, within the team).
    pub team_id: Option<TeamId>,
    /// Who made it.
    pub created_by: Option<UserId>,
}

/// What a new key may do and spend.
pub struct NewApiKey {
    pub name: String,
    pub permissions: Vec<Permission>,
    pub limit_hard: i64,
    pub limit_soft: Option<i64>,
    pub stop_at_limit: bool,
}

/// Changes to a key; `None` leaves a field as it is.
#[derive(Default)]
pub struct KeyChanges {
    pub name: Option<String>,
    pub permissions: Option<Vec<Permission>>,
    pub limit_hard: Option<i64>,
    pub limit_soft: Option<Option<i64>>,
    pub stop_at_limit: Option<bool>,
    pub disabled: Option<bool>,
}

/// Why a key could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateKeyError {
    #[error("a user (or team) may hold at most {0} API keys")]
    TooMany(i64),
    #[error("only an admin of the team makes its keys")]
    NotTeamAdmin,
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
}

impl ErrorCode for CreateKeyError {
    fn told(&self) -> Told {
        match self {
            CreateKeyError::TooMany(_) => Told::says(Code::TooManyApiKeys, self),
            CreateKeyError::NotTeamAdmin => Told::says(Code::NotAllowed, self),
            CreateKeyError::Sql(e) => e.told(),
        }
    }
}
