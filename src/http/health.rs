//! `GET /healthcheck`: the health report in the original's shape; 503 when Down so a load
//! balancer takes the node out, 200 for Operational and Degraded.

use actix_web::http::StatusCode;
use actix_web::http::header::{CacheControl, CacheDirective};
use actix_web::{HttpResponse, web};

use crate::health::Status;
use crate::state::AppState;

pub async fn healthcheck(state: web::Data<AppState>) -> HttpResponse {
    let report = state.health.report().await;
    let status = match report.status {
        Status::Down => StatusCode::SERVICE_UNAVAILABLE,
        Status::Operational | Status::Degraded => StatusCode::OK,
    };
    HttpResponse::build(status)
        .insert_header(CacheControl(vec![CacheDirective::NoStore]))
        .json(report)
}
