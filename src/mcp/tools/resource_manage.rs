//! `resource_manage`: find, get, add or update routines through the routine service, each op
//! checking its permission first; a team run's step finds, reads (unless public), adds and
//! updates only its team's routines.

use serde::Deserialize;
use serde_json::{Value, json};

use super::context::{Caller, Tools, need, parse_id, within};
use crate::auth::api_keys::Permission;
use crate::errors::Code;
use crate::ids::ResourceVersionId;
use crate::mcp::errors::ToolError;
use crate::routines::NewRoutine;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct ResourceManage {
    op: String,
    resource_type: String,
    id: Option<String>,
    name: Option<String>,
    config: Option<Value>,
    take: Option<i64>,
}

impl Tools {
    pub(super) async fn resource_manage(
        &self,
        caller: &Caller,
        a: ResourceManage,
    ) -> Result<Value, ToolError> {
        if a.resource_type != "Routine" {
            return Err(ToolError::new(
                Code::InvalidResourceType,
                "only Routine resources",
            ));
        }
        let version = |id: &Option<String>| -> Result<ResourceVersionId, ToolError> {
            let id = id.as_deref().ok_or_else(|| {
                ToolError::new(Code::InvalidArguments, "id names the routine version")
            })?;
            parse_id(id, "id")
        };
        match a.op.as_str() {
            "find" => {
                need(caller, Permission::ReadPrivate)?;
                let take = a.take.unwrap_or(20).clamp(1, 100);
                // A team run's step lists its team's routines, not its person's.
                let mut rows = self
                    .routines
                    .list(caller.user, caller.team, take, None)
                    .await?;
                rows.truncate(take as usize);
                Ok(json!({"routines": rows}))
            }
            "get" => {
                need(caller, Permission::ReadPrivate)?;
                let found = self
                    .routines
                    .version(version(&a.id)?, Some(caller.user))
                    .await?;
                // Anyone may read a public routine; a private one only within the team.
                if found.is_private {
                    within(caller, found.team_id)?;
                }
                Ok(json!({"routine": found}))
            }
            "add" => {
                need(caller, Permission::WritePrivate)?;
                let name = a.name.filter(|n| !n.trim().is_empty()).ok_or_else(|| {
                    ToolError::new(Code::InvalidArguments, "name names the new routine")
                })?;
                let config = a.config.ok_or_else(|| {
                    ToolError::new(Code::InvalidArguments, "config is the routine's graph")
                })?;
                let created = self
                    .routines
                    .create(
                        caller.user,
                        NewRoutine {
                            // A team run's step makes its team's routine (ManageRoutines there).
                            team: caller.team,
                            name: name.trim().to_owned(),
                            is_private: true,
                            version_label: "1.0.0".into(),
                            sub_type: "RoutineMultiStep".into(),
                            config,
                        },
                    )
                    .await?;
                Ok(json!({"routine": created}))
            }
            "update" => {
                need(caller, Permission::WritePrivate)?;
                let config = a.config.ok_or_else(|| {
                    ToolError::new(Code::InvalidArguments, "config is the routine's graph")
                })?;
                let version = version(&a.id)?;
                if caller.team.is_some() {
                    let found = self.routines.version(version, Some(caller.user)).await?;
                    within(caller, found.team_id)?;
                }
                let updated = self.routines.update(caller.user, version, config).await?;
                Ok(json!({"routine": updated}))
            }
            other => Err(ToolError::new(
                Code::InvalidArguments,
                format!("unknown op {other:?}"),
            )),
        }
    }
}
