//! `/mcp`: who is calling (an API key's owner with its permissions, or the system key acting as
//! the seeded admin), then the exchange handed to `crate::mcp` as an `http` 1.x request (rmcp's
//! types; actix-web still speaks `http` 0.2) and its answer handed back.

use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};

use super::auth::session::AuthState;
use super::{ApiError, Code};
use crate::auth::api_keys::Permission;
use crate::mcp::Caller;
use crate::state::AppState;

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/mcp")
            .route(web::post().to(exchange))
            .route(web::get().to(exchange))
            .route(web::delete().to(exchange)),
    );
}

async fn caller(req: &HttpRequest, state: &AppState) -> Result<Caller, ApiError> {
    if super::system_key::is_system(req) {
        let admin = state.people.first_admin().await?.ok_or_else(|| {
            ApiError::of(
                Code::NotAllowed,
                "The system key acts as the admin, and there is none",
            )
        })?;
        return Ok(Caller {
            user: admin,
            api_key: None,
            permissions: vec![
                Permission::ReadPublic,
                Permission::ReadPrivate,
                Permission::WritePrivate,
            ],
        });
    }
    match req.extensions().get::<AuthState>() {
        Some(AuthState::ApiKey(key)) => Ok(Caller {
            user: key.user,
            api_key: Some(key.key_id),
            permissions: key.permissions.clone(),
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

pub async fn exchange(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let caller = caller(&req, &state).await?;
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
    let (status, headers, body) = state.mcp.handle(request).await;
    let status = actix_web::http::StatusCode::from_u16(status.as_u16())
        .map_err(|e| ApiError::internal(anyhow::anyhow!(e)))?;
    let mut response = HttpResponse::build(status);
    for (name, value) in &headers {
        response.append_header((name.as_str(), value.as_bytes()));
    }
    Ok(response.body(body))
}
