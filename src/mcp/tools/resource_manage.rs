//! `resource_manage`: find, get, add or update routines through the routine service, each op
//! checking its permission first.

use serde::Deserialize;
use serde_json::{Value, json};

use super::context::{Caller, Tools, need, parse_id};
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
                let mut rows = self.routines.list(caller.user, None, take, None).await?;
                rows.truncate(take as usize);
                Ok(json!({"routines": rows}))
            }
            "get" => {
                need(caller, Permission::ReadPrivate)?;
                let found = self
                    .routines
                    .version(version(&a.id)?, Some(caller.user))
                    .await?;
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
                            team: None,
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
                let updated = self
                    .routines
                    .update(caller.user, version(&a.id)?, config)
                    .await?;
                Ok(json!({"routine": updated}))
            }
            other => Err(ToolError::new(
                Code::InvalidArguments,
                format!("unknown op {other:?}"),
            )),
        }
    }
}
