//! `/mcp`: who is calling (an API key's owner with its permissions, or the system key acting as
//! the seeded admin), then the exchange handed to `crate::mcp` as an `http` 1.x request (rmcp's
//! types; actix-web still speaks `http` 0.2) and its answer handed back.

use actix_web::{HttpMessage, HttpRequest, HttpResponse, post, web};

use super::auth::session::AuthState;
use super::error::ApiError;
use crate::errors::Code;
use crate::mcp::Caller;
use crate::state::AppState;

pub fn config(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    // POST only: the server keeps no sessions, so there is no stream to GET and nothing to
    // DELETE; those methods are 405 with `Allow: POST`, as the MCP transport allows.
    cfg.service(post_mcp);
}

/// One JSON-RPC message of the Model Context Protocol (Streamable HTTP, stateless: any node
/// answers any request).
#[utoipa::path(
    tag = "mcp",
    params(("Accept" = inline(AcceptMcp), Header, description = "The transport requires both types (406 otherwise)")),
    request_body(content = Object, content_type = "application/json",
        description = "A JSON-RPC 2.0 request or notification (MCP 2025-06-18)"),
    responses(
        (status = 200, description = "The JSON-RPC answer", content_type = "application/json", body = Object),
        (status = 202, description = "A notification was accepted"),
    ),
    security(("apiKey" = [])),
)]
#[post("/mcp")]
async fn post_mcp(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    exchange(req, body, state).await
}

/// The `Accept` header an MCP client sends.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // described, not read: rmcp checks the header
enum AcceptMcp {
    #[schema(rename = "application/json, text/event-stream")]
    Both,
}

async fn caller(req: &HttpRequest, state: &AppState) -> Result<Caller, ApiError> {
    if super::system_key::is_system(req) {
        let admin = state.people.directory.first_admin().await?.ok_or_else(|| {
            ApiError::of(
                Code::NotAllowed,
                "The system key acts as the admin, and there is none",
            )
        })?;
        return Ok(Caller {
            user: admin,
            api_key: None,
            permissions: crate::runs::scope::SESSION_PERMISSIONS.to_vec(),
            team: None,
            run: None,
        });
    }
    match req.extensions().get::<AuthState>() {
        // Its tools act on a person's chats and routines: not within one team.
        Some(AuthState::ApiKey(key)) if key.team.is_some() => Err(ApiError::of(
            Code::TeamKeyNotAccepted,
            "MCP takes a person's API key, not a team's",
        )),
        Some(AuthState::ApiKey(key)) => Ok(Caller {
            user: key.user,
            api_key: Some(key.key_id),
            permissions: key.permissions.clone(),
            team: None,
            run: None,
        }),
        Some(AuthState::BadApiKey) => Err(ApiError::of(
            Code::InvalidApiKey,
            "This API key is unknown or disabled",
        )),
        _ => Err(ApiError::of(
            Code::MissingApiKey,
            "MCP needs an API key (X-API-Key or Authorization: Bearer)",
        )),
    }
}

async fn exchange(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let caller = caller(&req, &state).await?;
    let is_json = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
        });
    let mut request = http::Request::builder()
        .method(req.method().as_str())
        .uri(req.uri().to_string());
    for (name, value) in req.headers() {
        request = request.header(name.as_str(), value.as_bytes());
    }
    let mut request = request
        .body(http_body_util::Full::new(bytes::Bytes::from(body.to_vec())))
        .map_err(|e| ApiError::of(Code::BadRequest, format!("Unreadable MCP request: {e}")))?;
    request.extensions_mut().insert(caller);
    let (status, headers, body) = state.runs.mcp.handle(request).await;
    // rmcp answers 415 both for a body that is not JSON and for JSON that is no JSON-RPC
    // message; the second is a bad body, not a bad media type.
    if status == http::StatusCode::UNSUPPORTED_MEDIA_TYPE && is_json {
        return Err(ApiError::of(
            Code::InvalidBody,
            "The body is not a JSON-RPC 2.0 message",
        ));
    }
    let status = actix_web::http::StatusCode::from_u16(status.as_u16())
        .map_err(|e| ApiError::internal(anyhow::anyhow!(e)))?;
    let mut response = HttpResponse::build(status);
    for (name, value) in &headers {
        response.append_header((name.as_str(), value.as_bytes()));
    }
    Ok(response.body(body))
}
