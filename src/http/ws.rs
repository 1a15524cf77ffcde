//! `GET /ws`: the WebSocket endpoint (protocol in `docs/PROTOCOL.md`).
//!
//! The handshake is authenticated like any request — the session cookie or `Authorization:
//! Bearer`, read by the session middleware — or, for clients that cannot set headers on a
//! WebSocket, a token in the `token` query parameter or as a `Sec-WebSocket-Protocol` entry
//! `bearer.<token>` (answered with the `vrooli.v1` protocol). The origin guard has already
//! refused unsafe browser origins. Then the connection is admitted within the node's and the
//! user's limits and handed to the hub, which starts its `SessionActor`.

use actix_web::http::header::SEC_WEBSOCKET_PROTOCOL;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use vrooli_actors::{Caller, Refusal};

use super::auth::session::AuthState;
use super::error::{ApiError, ErrorKind};
use crate::auth::Authenticated;
use crate::state::AppState;

/// The subprotocol a client may offer (and the server then answers with).
pub const PROTOCOL: &str = "vrooli.v1";

fn token_from_request(req: &HttpRequest) -> Option<String> {
    let from_query =
        web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
            .ok()
            .and_then(|q| q.get("token").cloned());
    from_query.or_else(|| {
        req.headers()
            .get_all(SEC_WEBSOCKET_PROTOCOL)
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .find_map(|p| p.trim().strip_prefix("bearer.").map(str::to_owned))
    })
}

async fn authenticate(req: &HttpRequest, state: &AppState) -> Result<Authenticated, ApiError> {
    let found = req.extensions().get::<AuthState>().cloned();
    match found {
        Some(AuthState::Authenticated(a)) => return Ok(a),
        Some(AuthState::ApiKey(_)) | Some(AuthState::BadApiKey) => {
            return Err(ApiError::new(
                ErrorKind::Unauthorized,
                "ApiKeyNotAccepted",
                "WebSockets are opened with a session, not an API key",
            ));
        }
        Some(AuthState::Failed(_)) => return Err(not_signed_in()),
        Some(AuthState::Anonymous) | None => {}
    }
    let token = token_from_request(req).ok_or_else(not_signed_in)?;
    state
        .auth
        .authenticate(&token)
        .await
        .map_err(|_| not_signed_in())
}

fn not_signed_in() -> ApiError {
    ApiError::new(
        ErrorKind::Unauthorized,
        "NotSignedIn",
        "Sign in before opening a WebSocket",
    )
}

pub async fn connect(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let signed_in = authenticate(&req, &state).await?;
    let current = signed_in.current();
    let caller = Caller {
        user_id: current.id.to_string(),
        session_id: current.session_id.to_string(),
    };
    let admission = state.hub.admit(&caller.user_id).map_err(|refusal| {
        let kind = match refusal {
            Refusal::UserFull => ErrorKind::TooManyRequests,
            Refusal::NodeFull | Refusal::ShuttingDown => ErrorKind::Unavailable,
        };
        ApiError::new(kind, "TooManyConnections", refusal.to_string())
    })?;
    let (response, session, stream) = actix_ws::handle_with_protocols(&req, body, &[PROTOCOL])
        .map_err(|e| {
            ApiError::bad_request("NotAWebSocket", format!("WebSocket handshake failed: {e}"))
        })?;
    state.hub.connect(admission, caller, session, stream);
    Ok(response)
}
