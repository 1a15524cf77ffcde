//! `GET /ws`: the WebSocket endpoint (protocol in `docs/PROTOCOL.md`).
//!
//! The handshake is authenticated like any request — the session cookie or `Authorization:
//! Bearer`, read by the session middleware — or, for clients that cannot set headers on a
//! WebSocket, a token in the `token` query parameter or as a `Sec-WebSocket-Protocol` entry
//! `bearer.<token>` (answered with the `vrooli.v1` protocol). The origin guard has already
//! refused unsafe browser origins. Then the connection is admitted within the node's and the
//! user's limits; the handler answers 101 and leaves the connection in the request's
//! [`Accepted`] slot, from where the upgrade service (`upgrade.rs`) hands the socket to the hub,
//! which starts its `SessionActor`.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::SEC_WEBSOCKET_PROTOCOL;
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, get, web};
use vrooli_actors::{Caller, Refusal};

use super::auth::session::{AuthState, unconfirmed};
use super::error::ApiError;
use super::upgrade::Accepted;
use crate::auth::Authenticated;
use crate::errors::Code;
use crate::state::AppState;

/// The subprotocol a client may offer (and the server then answers with).
pub const PROTOCOL: &str = "vrooli.v1";

/// A token that came in `/ws?token=…`, moved out of the URI by [`hide_query_token`].
#[derive(Clone)]
struct QueryToken(String);

/// Takes `token` out of `/ws`'s query string into a request extension before the request is
/// logged: the request span records the URI, and tokens must not reach the logs.
pub async fn hide_query_token(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if req.path() == "/ws" && req.query_string().contains("token=") {
        // Work on the raw segments so the rest of the query is kept byte for byte.
        let (tokens, rest): (Vec<&str>, Vec<&str>) = req
            .query_string()
            .split('&')
            .partition(|segment| segment.starts_with("token="));
        let token = tokens.first().and_then(|segment| {
            web::Query::<std::collections::HashMap<String, String>>::from_query(segment)
                .ok()
                .and_then(|q| q.get("token").cloned())
        });
        let query = rest.join("&");
        let path_and_query = if query.is_empty() {
            req.path().to_owned()
        } else {
            format!("{}?{query}", req.path())
        };
        if let Some(token) = token {
            req.extensions_mut().insert(QueryToken(token));
        }
        match path_and_query.parse::<actix_web::http::Uri>() {
            Ok(uri) => {
                req.match_info_mut().get_mut().update(&uri);
                req.head_mut().uri = uri;
            }
            // Cannot happen (a subset of a valid query); refuse rather than log the token.
            Err(_) => {
                return Err(ApiError::of(Code::InvalidQuery, "Malformed query string").into());
            }
        }
    }
    next.call(req).await
}

fn token_from_request(req: &HttpRequest) -> Option<String> {
    let from_query = req.extensions().get::<QueryToken>().map(|t| t.0.clone());
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
            return Err(ApiError::of(
                Code::ApiKeyNotAccepted,
                "WebSockets are opened with a session, not an API key",
            ));
        }
        Some(AuthState::Failed(_)) => return Err(not_signed_in()),
        // `/ws` is not a route that defers the session check to its handler.
        Some(AuthState::Unconfirmed(_)) => return Err(unconfirmed()),
        Some(AuthState::Anonymous) | None => {}
    }
    let token = token_from_request(req).ok_or_else(not_signed_in)?;
    state
        .auth
        .sessions
        .authenticate(&token)
        .await
        .map_err(|_| not_signed_in())
}

fn not_signed_in() -> ApiError {
    ApiError::of(Code::NotLoggedIn, "Sign in before opening a WebSocket")
}

/// Opens the WebSocket (docs/PROTOCOL.md). A browser authenticates with its cookie; other
/// clients with `Authorization: Bearer`, `?token=` or a `Sec-WebSocket-Protocol` entry
/// `bearer.<token>`.
#[utoipa::path(
    tag = "realtime",
    params(("token" = Option<String>, Query, description = "A session token, for clients that cannot set headers; taken out of the URL before anything logs it")),
    responses((status = 101, description = "Switching to the WebSocket protocol")),
    security(("cookie" = []), ("bearer" = [])),
)]
#[get("/ws")]
pub async fn connect(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let signed_in = authenticate(&req, &state).await?;
    let current = signed_in.current();
    let caller = Caller {
        user_id: current.id.into(),
        session_id: current.session_id.into(),
    };
    let admission = state.infra.hub.admit(caller.user_id).map_err(|refusal| {
        // Too many of the user's own: their doing (429). The node full or stopping: try
        // another node (503).
        let code = match refusal {
            Refusal::UserFull => Code::TooManyConnections,
            Refusal::NodeFull | Refusal::ShuttingDown => Code::NotAcceptingConnections,
        };
        ApiError::of(code, refusal.to_string())
    })?;
    // Only a request actix-http handed to the upgrade service (`Connection: upgrade`) can
    // become a WebSocket; the service left this slot in it.
    let accepted = req.extensions().get::<Accepted>().cloned();
    let handshake = actix_http::ws::handshake(req.head())
        .map_err(|e| e.to_string())
        .and_then(|response| {
            accepted
                .map(|a| (response, a))
                .ok_or_else(|| "not an upgrade request".to_owned())
        });
    let (mut response, accepted) = handshake.map_err(|e| {
        ApiError::of(
            Code::NotAWebSocket,
            format!("WebSocket handshake failed: {e}"),
        )
    })?;
    let offers_ours = req
        .headers()
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim() == PROTOCOL);
    if offers_ours {
        response.insert_header((SEC_WEBSOCKET_PROTOCOL, PROTOCOL));
    }
    accepted.fill(admission, caller);
    Ok(HttpResponse::from(response.finish().map_into_boxed_body()))
}
