//! The MCP tools, named as the original's: `send_message`, `resource_manage`, `run_routine`,
//! `define_tool`. Each checks the caller's permissions, then calls the same service the REST
//! route calls (chats, routines, runs), so access rules live in one place. A refusal or bad
//! argument is a [`ToolError`] (a tool result with `isError`, never a protocol failure).
//!
//! A call comes in here (`Tools::call`, or an `action` step through `ActionTools`) and goes to
//! its tool's file: `send_message.rs`, `resource_manage.rs`, `run_routine.rs`, and
//! `catalogue.rs` (every tool's schema, and `define_tool`, which reads them). `context.rs` holds
//! the caller, the services and the checks every tool shares.

use serde_json::Value;

use crate::errors::Code;
use context::args;

mod catalogue;
mod context;
mod resource_manage;
mod run_routine;
mod send_message;

pub use super::errors::ToolError;
pub use catalogue::catalogue;
pub use context::{Caller, Tools};

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
            "define_tool" => catalogue::define_tool(args(arguments)?),
            other => Err(ToolError::new(
                Code::UnknownTool,
                format!("no tool named {other:?}"),
            )),
        }
    }
}

/// `action` steps: a tool called with exactly the run's scope (`runs::scope`): its person, its
/// team, the key that started it and that key's permissions (a session's run: the person's
/// own), checked by each tool as for an MCP caller.
impl crate::runs::nodes::ActionTools for Tools {
    fn call<'a>(
        &'a self,
        scope: crate::runs::scope::RunScope,
        tool: &'a str,
        arguments: Value,
    ) -> crate::runs::nodes::ActionCall<'a> {
        Box::pin(async move {
            let caller = Caller {
                user: scope.user,
                api_key: scope.api_key,
                permissions: scope.permissions,
                team: scope.team,
                run: Some(scope.run),
            };
            Tools::call(self, &caller, tool, arguments)
                .await
                .map_err(|e| (e.code.as_str(), e.message))
        })
    }
}
