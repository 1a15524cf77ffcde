//! Admin and system routes into the actor system:
//! - `POST /api/v2/admin/rooms/publish {room, type, data}`: publish an event to a room on every
//!   node (what later issues do from their handlers; used by tests and operators);
//! - `GET /api/v2/admin/rooms/{room}/presence`: who is in a room on any live node;
//! - `GET /api/v2/admin/nodes/{id}/stats`: a node's connection and room counts, asked through
//!   that node's mailbox (request/reply).

use actix_web::{HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use vrooli_actors::{BrokerError, NewEvent, NodeReply, NodeRequest, NodeStats, RoomKey};

use crate::errors::Code;
use crate::http::error::ApiError;
use crate::http::reply::{Envelope, ok};
use crate::http::system_key::SystemCaller;
use crate::ids::UserId;
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishBody {
    /// `chat:<id>`, `run:<id>` or `user:<id>`.
    #[schema(example = "chat:7263419283746592768")]
    room: String,
    /// Up to 64 letters, digits, `/`, `_` or `-`.
    #[serde(rename = "type")]
    #[schema(example = "test/ping")]
    event_type: String,
    /// The event's payload, as members receive it: any JSON value.
    #[serde(default)]
    data: serde_json::Value,
}

/// Where a published event landed in its room's history.
#[derive(Serialize, ToSchema)]
pub struct Published {
    id: String,
    room: String,
    offset: u64,
    epoch: String,
}

/// Who is in a room.
#[derive(Serialize, ToSchema)]
pub struct Presence {
    room: String,
    online: Vec<UserId>,
}

/// A node's connection and room counts.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeStatsBody {
    node: u16,
    connections: usize,
    users: usize,
    rooms: usize,
}

impl From<NodeStats> for NodeStatsBody {
    fn from(s: NodeStats) -> Self {
        Self {
            node: s.node,
            connections: s.connections,
            users: s.users,
            rooms: s.rooms,
        }
    }
}

fn room(text: &str) -> Result<RoomKey, ApiError> {
    RoomKey::parse(text).ok_or_else(|| {
        ApiError::of(
            Code::InvalidRoom,
            "A room is chat:<id>, run:<id> or user:<id>",
        )
    })
}

fn broker_error(error: BrokerError) -> ApiError {
    match error {
        BrokerError::NoSuchNode(_) => ApiError::of(Code::NodeNotFound, "No live node has this id"),
        // The broker's own text names hosts and commands: logged, not sent.
        other => ApiError {
            source: Some(other.into()),
            ..ApiError::of(
                Code::BrokerUnavailable,
                "The message broker is unavailable; try again shortly",
            )
        },
    }
}

/// Publishes an event to a room on every node.
#[utoipa::path(
    tag = "admin",
    request_body = PublishBody,
    responses((status = 200, description = "Published", body = Envelope<Published>)),
    security(("apiKey" = []), ("bearer" = [])),
)]
#[post("/admin/rooms/publish")]
pub async fn publish(
    _: SystemCaller,
    state: web::Data<AppState>,
    body: web::Json<PublishBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let room = room(&body.room)?;
    let valid_type = !body.event_type.is_empty()
        && body.event_type.len() <= 64
        && body
            .event_type
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'/' || b == b'_' || b == b'-');
    if !valid_type {
        return Err(ApiError::of(
            Code::InvalidEventType,
            "An event type is up to 64 letters, digits, '/', '_' or '-'",
        ));
    }
    let event = NewEvent {
        id: state.infra.ids.next_id().to_string(),
        event_type: body.event_type,
        timestamp_ms: chrono::Utc::now().timestamp_millis(),
        room,
        data: body.data,
    };
    let head = state
        .infra
        .hub
        .publish(&event)
        .await
        .map_err(broker_error)?;
    Ok(ok(Published {
        id: event.id,
        room: event.room.to_string(),
        offset: head.offset,
        epoch: head.epoch.to_string(),
    }))
}

/// Who is in a room on any live node.
#[utoipa::path(
    tag = "admin",
    params(("room" = String, Path, description = "`chat:<id>`, `run:<id>` or `user:<id>`")),
    responses((status = 200, description = "The users online in the room", body = Envelope<Presence>)),
    security(("apiKey" = []), ("bearer" = [])),
)]
#[get("/admin/rooms/{room}/presence")]
pub async fn presence(
    _: SystemCaller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let room = room(&path)?;
    let users = state
        .infra
        .hub
        .presence(&room)
        .await
        .map_err(broker_error)?;
    Ok(ok(Presence {
        room: room.to_string(),
        online: users.into_iter().map(UserId::from).collect(),
    }))
}

/// A node's connection and room counts, asked through that node's mailbox.
#[utoipa::path(
    tag = "admin",
    params(("id" = u16, Path, description = "The node's worker id")),
    responses((status = 200, description = "The node's counts", body = Envelope<NodeStatsBody>)),
    security(("apiKey" = []), ("bearer" = [])),
)]
#[get("/admin/nodes/{id}/stats")]
pub async fn node_stats(
    _: SystemCaller,
    state: web::Data<AppState>,
    path: web::Path<u16>,
) -> Result<HttpResponse, ApiError> {
    let reply = state
        .infra
        .hub
        .request(path.into_inner(), NodeRequest::Stats)
        .await
        .map_err(broker_error)?;
    match reply {
        NodeReply::Stats(stats) => Ok(ok(NodeStatsBody::from(stats))),
        other => Err(ApiError::internal(anyhow::anyhow!(
            "unexpected node reply {other:?}"
        ))),
    }
}
