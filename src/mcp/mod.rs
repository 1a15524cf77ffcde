//! The MCP server at `/mcp` (Streamable HTTP, the official SDK `rmcp`), stateless: every POST
//! is a whole exchange answered with JSON, so behind a balancer any node can take the next one.
//!
//! ```text
//! POST /mcp ─▶ edge + session layers (the API key is checked there) ─▶ `http::mcp` (who
//!   calls: a key's owner and permissions, or the system key) ─▶ `Mcp::handle` (the request
//!   rebuilt for rmcp, the `Caller` in its extensions) ─▶ rmcp's StreamableHttpService
//!   ─▶ `Handler::call_tool` ─▶ `tools::Tools` (the same services as REST) ─▶ a tool result
//!   (`isError` on a refusal) ─▶ JSON back.
//! ```

mod errors;
pub mod tools;

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, Implementation, InitializeResult,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, Tool,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::{Value, json};

pub use tools::{Caller, Tools};

/// One request's worth of MCP for rmcp: the tools, and nothing kept between requests.
#[derive(Clone)]
struct Handler {
    tools: Arc<Tools>,
}

impl ServerHandler for Handler {
    fn get_info(&self) -> InitializeResult {
        InitializeResult::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("vrooli", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Vrooli: chats with people and bots, routines and their runs. Find a bot with \
                 GET /api/v2/users?isBot=true; send_message posts to a chat you take part in.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let tools = tools::catalogue()
            .into_iter()
            .map(|(name, description, schema)| {
                let schema = schema.as_object().cloned().unwrap_or_default();
                Tool::new(name, description, Arc::new(schema))
            })
            .collect();
        Ok(ListToolsResult {
            tools,
            ..Default::default()
        })
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        // The HTTP handler put the caller in the request; rmcp hands its parts to us.
        let caller = context
            .extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<Caller>())
            .cloned()
            .ok_or_else(|| ErrorData::internal_error("no caller on the request", None))?;
        let arguments = Value::Object(request.arguments.unwrap_or_default());
        let result = match self.tools.call(&caller, &request.name, arguments).await {
            Ok(value) => CallToolResult::structured(value),
            Err(error) => CallToolResult::structured_error(
                json!({"code": error.code.as_str(), "message": error.message}),
            ),
        };
        Ok(result.into())
    }
}

/// rmcp's Streamable HTTP service over our tools, for the HTTP layer to call.
#[derive(Clone)]
pub struct Mcp {
    service: StreamableHttpService<Handler, NeverSessionManager>,
}

impl Mcp {
    pub fn new(tools: Tools, max_body_bytes: usize) -> Self {
        let handler = Handler {
            tools: Arc::new(tools),
        };
        let mut config = StreamableHttpServerConfig::default();
        // Stateless, answered with JSON: no session lives on one node.
        config.legacy_session_mode = false;
        config.json_response = true;
        config.max_request_body_bytes = max_body_bytes;
        // Every call carries an API key (checked before rmcp sees it), so the DNS-rebinding
        // guard for keyless local servers would only refuse this server's own host names.
        let config = config.disable_allowed_hosts();
        Self {
            service: StreamableHttpService::new(
                move || Ok(handler.clone()),
                Arc::new(NeverSessionManager::default()),
                config,
            ),
        }
    }

    /// One HTTP exchange: `request` (built by the HTTP layer, the caller in its extensions) in,
    /// status, headers and the whole body out.
    pub async fn handle(
        &self,
        request: http::Request<Full<Bytes>>,
    ) -> (http::StatusCode, http::HeaderMap, Bytes) {
        let response = self.service.handle(request).await;
        let (parts, body) = response.into_parts();
        // Infallible: the body is in memory or a stream that ends (no sessions, no SSE waits).
        let bytes = match body.collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(never) => match never {},
        };
        (parts.status, parts.headers, bytes)
    }
}
