//! `/api/v2/notification*`: the caller's notifications — `GET /notifications?take&after`
//! (newest first, Relay page), `PUT /notification/{id}/markAsRead`,
//! `PUT /notifications/markAllAsRead`.

use actix_web::{HttpResponse, get, put, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::session::{ReadPrivate, Require, WritePrivate};
use super::error::ApiError;
use super::paging::Relay;
use super::path::Id;
use super::reply::{Envelope, ok};
use crate::ids::NotificationId;
use crate::notifications::Notification;
use crate::state::AppState;

pub fn config(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(list).service(mark_one).service(mark_all);
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Page size, 1–100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    take: Option<i64>,
    /// The `endCursor` of the previous page.
    after: Option<String>,
}

/// How many notifications a mark changed.
#[derive(Serialize, ToSchema)]
pub struct Updated {
    /// The notifications that were unread and now are read (0 when none was).
    updated: u64,
}

/// The caller's notifications, newest first.
#[utoipa::path(
    tag = "notifications",
    params(ListQuery),
    responses((status = 200, description = "A page of notifications", body = Envelope<Relay<Notification>>)),
)]
#[get("/notifications")]
pub async fn list(
    caller: Require<ReadPrivate>,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let (take, after) = super::paging::params(query.take, query.after.as_deref())?;
    let rows = state
        .people
        .notifications
        .list(caller.user, take, after)
        .await?;
    Ok(ok(super::paging::relay(rows, take, |n| n.id.to_string())))
}

/// Marks one of the caller's notifications read.
///
/// An id that is not the caller's, or a notification already read, changes nothing
/// (`updated: 0`).
#[utoipa::path(
    tag = "notifications",
    params(("id" = NotificationId, Path, description = "The notification's id")),
    responses((status = 200, description = "How many changed (0 or 1)", body = Envelope<Updated>)),
)]
#[put("/notification/{id}/markAsRead")]
pub async fn mark_one(
    caller: Require<WritePrivate>,
    state: web::Data<AppState>,
    Id(id): Id<NotificationId>,
) -> Result<HttpResponse, ApiError> {
    let changed = state
        .people
        .notifications
        .mark_read(caller.user, Some(id))
        .await?;
    Ok(ok(Updated { updated: changed }))
}

/// Marks all of the caller's notifications read.
#[utoipa::path(
    tag = "notifications",
    responses((status = 200, description = "How many changed", body = Envelope<Updated>)),
)]
#[put("/notifications/markAllAsRead")]
pub async fn mark_all(
    caller: Require<WritePrivate>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let changed = state
        .people
        .notifications
        .mark_read(caller.user, None)
        .await?;
    Ok(ok(Updated { updated: changed }))
}
