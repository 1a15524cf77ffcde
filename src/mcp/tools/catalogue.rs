//! The tools as `tools/list` describes them (name, description, JSON Schema of the arguments),
//! and `define_tool`, which answers one of those descriptions.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::errors::Code;
use crate::mcp::errors::ToolError;

/// The tools as `tools/list` describes them: name, description, JSON Schema of the arguments.
pub fn catalogue() -> Vec<(&'static str, &'static str, Value)> {
    vec![
        (
            "send_message",
            "Post a message to a chat; optionally wait for a bot's answer to it. It goes on the latest thread (bots answer with the thread's history) unless parentId or newThread says otherwise.",
            json!({"type": "object", "required": ["chatId", "text"], "additionalProperties": false,
                "properties": {
                    "chatId": {"type": "string", "description": "the chat's id"},
                    "text": {"type": "string", "minLength": 1},
                    "parentId": {"type": "string", "description": "the message this one answers (default: the chat's newest message)"},
                    "newThread": {"type": "boolean", "default": false, "description": "start a thread of its own (no parent)"},
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
                    "routineId": {"type": "string", "description": "the routine to start (its latest version), or one of its versions"},
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

pub(super) fn define_tool(a: DefineTool) -> Result<Value, ToolError> {
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
pub(super) struct DefineTool {
    tool_name: String,
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
