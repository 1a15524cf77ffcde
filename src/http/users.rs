//! Finding people (public fields only, for anyone, signed in or not):
//! - `GET /user/{id}` · `GET /user?handle=` — one user, 404 `UserNotFound` otherwise;
//! - `GET /users?search=&isBot=&take&after` — a Relay page in id order.

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::path::Id;
use super::{ApiError, Code, ok, paging};
use crate::ids::UserId;
use crate::people::{PublicUser, Search};
use crate::state::AppState;

/// The longest search text (a name is at most 128 characters).
const MAX_SEARCH_CHARS: usize = 128;

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/user").route(web::get().to(by_handle)))
        .service(web::resource("/user/{id}").route(web::get().to(by_id)))
        .service(web::resource("/users").route(web::get().to(search)));
}

fn found(user: Option<PublicUser>) -> Result<HttpResponse, ApiError> {
    user.map(ok)
        .ok_or_else(|| ApiError::of(Code::UserNotFound, "No such user"))
}

pub async fn by_id(
    state: web::Data<AppState>,
    Id(id): Id<UserId>,
) -> Result<HttpResponse, ApiError> {
    found(state.people.by_id(id).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandleQuery {
    handle: String,
}

pub async fn by_handle(
    state: web::Data<AppState>,
    query: web::Query<HandleQuery>,
) -> Result<HttpResponse, ApiError> {
    // A text that is no handle names nobody: no query needed.
    if crate::domain::Handle::parse(&query.handle).is_err() {
        return found(None);
    }
    found(state.people.by_handle(&query.handle).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SearchQuery {
    search: Option<String>,
    is_bot: Option<bool>,
    take: Option<i64>,
    after: Option<String>,
}

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
