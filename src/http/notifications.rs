//! `/api/v2/notification*`: the caller's notifications — `GET /notifications?take&after`
//! (newest first, Relay page), `PUT /notification/{id}/markAsRead`,
//! `PUT /notifications/markAllAsRead`.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::auth::session::{ReadPrivate, Require, WritePrivate};
use super::path::Id;
use super::{ApiError, ok};
use crate::ids::NotificationId;
use crate::state::AppState;

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/notifications").route(web::get().to(list)))
        .service(web::resource("/notification/{id}/markAsRead").route(web::put().to(mark_one)))
        .service(web::resource("/notifications/markAllAsRead").route(web::put().to(mark_all)));
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    take: Option<i64>,
    after: Option<String>,
}

pub async fn list(
    caller: Require<ReadPrivate>,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let (take, after) = super::paging::params(query.take, query.after.as_deref())?;
    let rows = state.notifications.list(caller.user, take, after).await?;
    Ok(ok(super::paging::relay(rows, take, |n| n.id.to_string())))
}

pub async fn mark_one(
    caller: Require<WritePrivate>,
    state: web::Data<AppState>,
    Id(id): Id<NotificationId>,
) -> Result<HttpResponse, ApiError> {
    let changed = state.notifications.mark_read(caller.user, Some(id)).await?;
    Ok(ok(json!({"updated": changed})))
}

pub async fn mark_all(
    caller: Require<WritePrivate>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let changed = state.notifications.mark_read(caller.user, None).await?;
    Ok(ok(json!({"updated": changed})))
}
