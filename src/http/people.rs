//! Finding people (`crate::people::Directory`; public fields only, for anyone, signed in or not):
//! - `GET /user/{id}` · `GET /user?handle=` — one user, 404 `UserNotFound` otherwise;
//! - `GET /users?search=&isBot=&take&after` — a Relay page in id order.

use actix_web::{HttpResponse, get, web};
use serde::Deserialize;
use utoipa::IntoParams;

use super::error::ApiError;
use super::paging;
use super::paging::Relay;
use super::path::Id;
use super::reply::{Envelope, ok};
use crate::errors::Code;
use crate::ids::UserId;
use crate::people::{PublicUser, Search};
use crate::state::AppState;

/// The longest search text (a name is at most 128 characters).
const MAX_SEARCH_CHARS: usize = 128;

pub fn config(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(by_handle).service(by_id).service(search);
}

fn found(user: Option<PublicUser>) -> Result<HttpResponse, ApiError> {
    user.map(ok)
        .ok_or_else(|| ApiError::of(Code::UserNotFound, "No such user"))
}

/// One user's public fields.
#[utoipa::path(
    tag = "users",
    params(("id" = UserId, Path, description = "The user's id")),
    responses((status = 200, description = "The user", body = Envelope<PublicUser>)),
    security(("public" = [])),
)]
#[get("/user/{id:\\d+}")]
pub async fn by_id(
    state: web::Data<AppState>,
    Id(id): Id<UserId>,
) -> Result<HttpResponse, ApiError> {
    found(state.people.directory.by_id(id).await?)
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HandleQuery {
    /// The handle, without `@` (any case).
    handle: String,
}

/// The user with a handle.
#[utoipa::path(
    tag = "users",
    params(HandleQuery),
    responses((status = 200, description = "The user", body = Envelope<PublicUser>)),
    security(("public" = [])),
)]
#[get("/user")]
pub async fn by_handle(
    state: web::Data<AppState>,
    query: web::Query<HandleQuery>,
) -> Result<HttpResponse, ApiError> {
    // A text that is no handle names nobody: no query needed.
    if crate::domain::Handle::parse(&query.handle).is_err() {
        return found(None);
    }
    found(state.people.directory.by_handle(&query.handle).await?)
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// Text within the name or handle (any case), at most 128 characters.
    search: Option<String>,
    /// Only bots (true) or only people (false).
    is_bot: Option<bool>,
    /// Page size, 1–100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    take: Option<i64>,
    /// The `endCursor` of the previous page.
    after: Option<String>,
}

/// Users in id order, optionally filtered.
#[utoipa::path(
    tag = "users",
    params(SearchQuery),
    responses((status = 200, description = "A page of users", body = Envelope<Relay<PublicUser>>)),
    security(("public" = [])),
)]
#[get("/users")]
pub async fn search(
    state: web::Data<AppState>,
    query: web::Query<SearchQuery>,
) -> Result<HttpResponse, ApiError> {
    let (take, after) = paging::params(query.take, query.after.as_deref())?;
    let text = query
        .search
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty());
    if let Some(text) = text {
        // Control characters never get this far: the edge refuses them (422 ControlCharacter).
        if text.chars().count() > MAX_SEARCH_CHARS {
            return Err(ApiError::of(
                Code::InvalidQuery,
                "search is at most 128 characters",
            ));
        }
    }
    let rows = state
        .people
        .directory
        .search(
            &Search {
                text,
                is_bot: query.is_bot,
            },
            take,
            after,
        )
        .await?;
    Ok(ok(paging::relay(rows, take, |user| user.id.to_string())))
}
