//! The MCP tools, named as the original's: `send_message`, `resource_manage`, `run_routine`,
//! `define_tool`. Each checks the caller's permissions, then calls the same service the REST
//! route calls (chats, routines, runs), so access rules live in one place. A refusal or bad
//! argument is a [`ToolError`] (a tool result with `isError`, never a protocol failure).

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::api_keys::{MissingPermission, Permission};
use crate::chat::ChatService;
use crate::chat::access::Need;
use crate::domain::MessageText;
use crate::errors::Code;
use crate::ids::{ChatId, ResourceVersionId, UserId};
use crate::routines::{NewRoutine, RoutineService};
use crate::runs::{RunService, RunSource, StartRequest};

pub use super::errors::ToolError;

/// Who is calling: an API key's owner with its permissions, or the system key (all of them,
/// acting as the seeded admin).
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: UserId,
    pub api_key: Option<crate::ids::ApiKeyId>,
    pub permissions: Vec<Permission>,
}

/// The longest a call may wait for a bot's answer or a run's end (`waitForResponse`, `sync`).
const MAX_WAIT: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub struct Tools {
    pub chats: ChatService,
    pub routines: RoutineService,
    pub runs: RunService,
}

fn need(caller: &Caller, permission: Permission) -> Result<(), ToolError> {
    if caller.permissions.contains(&permission) {
        Ok(())
    } else {
        Err(MissingPermission(permission).into())
    }
}

fn args<T: for<'de> Deserialize<'de>>(arguments: Value) -> Result<T, ToolError> {
    serde_json::from_value(arguments)
        .map_err(|e| ToolError::new(Code::InvalidArguments, e.to_string()))
}

fn parse_id<T: std::str::FromStr>(text: &str, what: &str) -> Result<T, ToolError> {
    text.parse()
        .map_err(|_| ToolError::new(Code::InvalidArguments, format!("{what} is a decimal id")))
}

fn wait_for(timeout_ms: Option<u64>) -> Duration {
    timeout_ms
        .map_or(MAX_WAIT, Duration::from_millis)
        .min(MAX_WAIT)
}

/// The tools as `tools/list` describes them: name, description, JSON Schema of the arguments.
pub fn catalogue() -> Vec<(&'static str, &'static str, Value)> {
    vec![
        (
            "send_message",
            "Post a message to a chat; optionally wait for a bot's answer to it.",
            json!({"type": "object", "required": ["chatId", "text"], "additionalProperties": false,
                "properties": {
                    "chatId": {"type": "string", "description": "the chat's id"},
                    "text": {"type": "string", "minLength": 1},
                    "waitForResponse": {"type": "boolean", "default": false},
                    "timeoutMs": {"type": "integer", "minimum": 1, "maximum": 60000}}}),
        ),
        (
            "resource_manage",
            "Find, get, add or update routines (resourceType Routine).",
            json!({"type": "object", "required": ["op", "resourceType"], "additionalProperties": false,
                "properties": {
                    "op": {"enum": ["find", "get", "add", "update"]},
                    "resourceType": {"enum": ["Routine"]},
                    "id": {"type": "string", "description": "a routine version id (get, update)"},
                    "name": {"type": "string", "description": "a new routine's name (add)"},
                    "config": {"type": "object", "description": "the routine's graph config (add, update)"},
                    "take": {"type": "integer", "minimum": 1, "maximum": 100}}}),
        ),
        (
            "run_routine",
            "Start a routine version's run, or read, pause, resume or cancel a run.",
            json!({"type": "object", "required": ["action"], "additionalProperties": false,
                "properties": {
                    "action": {"enum": ["start", "status", "pause", "resume", "cancel"]},
                    "routineId": {"type": "string", "description": "the routine version to start"},
                    "runId": {"type": "string"},
                    "inputs": {"type": "object"},
                    "mode": {"enum": ["sync", "async"], "default": "async"},
                    "timeoutMs": {"type": "integer", "minimum": 1, "maximum": 60000}}}),
        ),
        (
            "define_tool",
            "Describe one of these tools: its arguments' JSON Schema.",
            json!({"type": "object", "required": ["toolName"], "additionalProperties": false,
                "properties": {"toolName": {"enum": ["send_message", "resource_manage", "run_routine", "define_tool"]}}}),
        ),
    ]
}

impl Tools {
    pub async fn call(
        &self,
        caller: &Caller,
        name: &str,
        arguments: Value,
    ) -> Result<Value, ToolError> {
        match name {
            "send_message" => self.send_message(caller, args(arguments)?).await,
            "resource_manage" => self.resource_manage(caller, args(arguments)?).await,
            "run_routine" => self.run_routine(caller, args(arguments)?).await,
            "define_tool" => define_tool(args(arguments)?),
            other => Err(ToolError::new(
                Code::UnknownTool,
                format!("no tool named {other:?}"),
            )),
        }
    }

    async fn send_message(&self, caller: &Caller, a: SendMessage) -> Result<Value, ToolError> {
        need(caller, Permission::WritePrivate)?;
        let chat: ChatId = parse_id(&a.chat_id, "chatId")?;
        let text = MessageText::parse(a.text).map_err(|_| {
            ToolError::new(Code::InvalidText, "A message is 1 to 32,768 characters")
        })?;
        self.chats
            .require(chat, Some(caller.user), Need::Write)
            .await?;
        let message = self
            .chats
            .post(caller.user, caller.api_key, chat, text, None)
            .await?;
        let mut out = json!({"message": message});
        if a.wait_for_response {
            let deadline = tokio::time::Instant::now() + wait_for(a.timeout_ms);
            // The answer is a bot's message whose parent is ours; it is written when the
            // answer is finished (streamed chunks go to the chat's room meanwhile).
            let answer = loop {
                let page = self
                    .chats
                    .readable_messages(chat, Some(caller.user), 20, None, None)
                    .await?;
                if let Some(answer) = page.into_iter().find(|m| m.parent_id == Some(message.id)) {
                    break Some(answer);
                }
                if tokio::time::Instant::now() >= deadline {
                    break None;
                }
                // Polled: the answer's job may run on any node.
                tokio::time::sleep(Duration::from_millis(200)).await;
            };
            out["response"] = json!(answer);
        }
        Ok(out)
    }

    async fn resource_manage(
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

    async fn run_routine(&self, caller: &Caller, a: RunRoutine) -> Result<Value, ToolError> {
        let run_id = || -> Result<i64, ToolError> {
            let id = a
                .run_id
                .as_deref()
                .ok_or_else(|| ToolError::new(Code::InvalidArguments, "runId names the run"))?;
            parse_id(id, "runId")
        };
        let run = match a.action.as_str() {
            "start" => {
                need(caller, Permission::WritePrivate)?;
                let version = a.routine_id.as_deref().ok_or_else(|| {
                    ToolError::new(
                        Code::InvalidArguments,
                        "routineId names the routine version",
                    )
                })?;
                let (run, _) = self
                    .runs
                    .start(
                        caller.user,
                        StartRequest {
                            version: parse_id(version, "routineId")?,
                            team: None,
                            inputs: a.inputs.clone().unwrap_or_else(|| json!({})),
                            source: RunSource::Api,
                            idempotency_key: None,
                            request_hash: String::new(),
                            limits: Default::default(),
                        },
                    )
                    .await?;
                run
            }
            "status" => {
                need(caller, Permission::ReadPrivate)?;
                run_id()?
            }
            "pause" | "cancel" => {
                need(caller, Permission::WritePrivate)?;
                let run = run_id()?;
                let command = if a.action == "pause" {
                    vrooli_actors::RunCommand::Pause
                } else {
                    vrooli_actors::RunCommand::Cancel
                };
                self.runs.stop(run, caller.user, command).await?;
                run
            }
            "resume" => {
                need(caller, Permission::WritePrivate)?;
                let (run, _) = self
                    .runs
                    .resume(run_id()?, caller.user, Default::default())
                    .await?;
                run
            }
            other => {
                return Err(ToolError::new(
                    Code::InvalidArguments,
                    format!("unknown action {other:?}"),
                ));
            }
        };
        let mut found = self.runs.get(run, Some(caller.user)).await?;
        if a.action == "start" && a.mode.as_deref() == Some("sync") {
            let deadline = tokio::time::Instant::now() + wait_for(a.timeout_ms);
            // Polled: the run executes on whichever node holds its lease.
            while !matches!(
                found["status"].as_str(),
                Some("Completed" | "Failed" | "Cancelled" | "Paused")
            ) && tokio::time::Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(200)).await;
                found = self.runs.get(run, Some(caller.user)).await?;
            }
        }
        Ok(json!({"runId": run.to_string(), "run": found}))
    }
}

fn define_tool(a: DefineTool) -> Result<Value, ToolError> {
    catalogue()
        .into_iter()
        .find(|(name, _, _)| *name == a.tool_name)
        .map(|(name, description, schema)| {
            json!({"name": name, "description": description, "inputSchema": schema})
        })
        .ok_or_else(|| ToolError::new(Code::UnknownTool, format!("no tool named {:?}", a.tool_name)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SendMessage {
    chat_id: String,
    text: String,
    #[serde(default)]
    wait_for_response: bool,
    timeout_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ResourceManage {
    op: String,
    resource_type: String,
    id: Option<String>,
    name: Option<String>,
    config: Option<Value>,
    take: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RunRoutine {
    action: String,
    routine_id: Option<String>,
    run_id: Option<String>,
    inputs: Option<Value>,
    mode: Option<String>,
    timeout_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct DefineTool {
    tool_name: String,
}

/// `action` steps: the run's owner calls a tool with what the owner may do (a run acts for its
/// owner, not for a key).
impl crate::runs::nodes::ActionTools for Tools {
    fn call<'a>(
        &'a self,
        user: UserId,
        tool: &'a str,
        arguments: Value,
    ) -> crate::runs::nodes::ActionCall<'a> {
        Box::pin(async move {
            let caller = Caller {
                user,
                api_key: None,
                permissions: vec![
                    Permission::ReadPublic,
                    Permission::ReadPrivate,
                    Permission::WritePrivate,
                ],
            };
            Tools::call(self, &caller, tool, arguments)
                .await
                .map_err(|e| (e.code.as_str(), e.message))
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_catalogue_is_what_action_nodes_may_call() {
        let names: Vec<&str> = super::catalogue()
            .iter()
            .map(|(name, _, _)| *name)
            .collect();
        assert_eq!(names, crate::routines::graph::ACTION_TOOLS);
    }
}
