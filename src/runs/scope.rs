//! Who a run acts for, and with what: stored with the run when it starts (the person, the team
//! of a team run, the API key that started it and that key's permissions), read again before
//! each `action` step and handed to the tools as the caller.
//!
//! ```text
//! start (REST, MCP, a step) ─▶ runs.user_id, team_id, api_key_id, permissions (NULL: a session)
//!   a child run (started by a step) ─▶ its parent's scope, whatever the step asked
//! action step ─▶ scope_of(run) ─▶ permissions = stored ∩ what the key holds now
//!                                   (a key disabled, deleted or whose team maker left: none)
//!             ─▶ the tools' caller: that user, team, key and permissions, and the run
//! llm step ─▶ holds and settles against api_key_id's credit limits (`executor/walk.rs`)
//! ```
//!
//! Why read again: a key narrowed or disabled while its run waits must not keep acting with
//! what it had.

use sqlx::{PgConnection, PgPool};

use crate::auth::api_keys::Permission;
use crate::ids::{ApiKeyId, TeamId, UserId};

/// The scope an `action` step's tools run with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunScope {
    /// The run whose step calls: a run it starts is its child.
    pub run: i64,
    pub user: UserId,
    /// A team run: its tools reach only the team's resources.
    pub team: Option<TeamId>,
    pub api_key: Option<ApiKeyId>,
    /// What the tools may do: a session's run all a person may, a key's run what the key held
    /// at the start and still holds.
    pub permissions: Vec<Permission>,
}

/// What a signed-in person may do through the tools (as the system key: every tool permission).
pub const SESSION_PERMISSIONS: [Permission; 3] = [
    Permission::ReadPublic,
    Permission::ReadPrivate,
    Permission::WritePrivate,
];

/// The permissions key `key` holds now, if it still acts: enabled, and a team's key only while
/// its maker is an admin there (as `ApiKeys::authenticate` decides).
pub async fn key_permissions(
    conn: &mut PgConnection,
    key: ApiKeyId,
) -> Result<Option<Vec<String>>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT k.permissions FROM api_keys k
          WHERE k.id = $1 AND k.disabled_at IS NULL
            AND (k.team_id IS NULL
                 OR EXISTS (SELECT 1 FROM members m WHERE m.team_id = k.team_id
                               AND m.user_id = k.created_by AND m.is_admin))",
    )
    .bind(key)
    .fetch_optional(conn)
    .await
}

/// Run `run`'s scope now; `None` when the run has no owner.
pub async fn scope_of(pool: &PgPool, run: i64) -> Result<Option<RunScope>, sqlx::Error> {
    /// The run's person, team, key and the key's permissions at the start.
    type Row = (
        Option<UserId>,
        Option<TeamId>,
        Option<ApiKeyId>,
        Option<Vec<String>>,
    );
    let mut conn = pool.acquire().await?;
    let row: Option<Row> =
        sqlx::query_as("SELECT user_id, team_id, api_key_id, permissions FROM runs WHERE id = $1")
            .bind(run)
            .fetch_optional(&mut *conn)
            .await?;
    let Some((Some(user), team, api_key, stored)) = row else {
        return Ok(None);
    };
    let permissions = match stored {
        None => SESSION_PERMISSIONS.to_vec(),
        Some(stored) => {
            // Started by a key: what it held then, and still holds now (a deleted key: nothing).
            let now = match api_key {
                Some(key) => key_permissions(&mut conn, key).await?.unwrap_or_default(),
                None => Vec::new(),
            };
            stored
                .iter()
                .filter(|p| now.contains(p))
                .filter_map(|p| Permission::parse(p))
                .collect()
        }
    };
    Ok(Some(RunScope {
        run,
        user,
        team,
        api_key,
        permissions,
    }))
}
