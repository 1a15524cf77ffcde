//! `GET /healthcheck`: the health report in the original's shape; 503 when Down so a load
//! balancer takes the node out, 200 for Operational and Degraded.

use actix_web::http::StatusCode;
use actix_web::http::header::{CacheControl, CacheDirective};
use actix_web::{HttpResponse, web};

use crate::state::AppState;

pub async fn healthcheck(state: web::Data<AppState>) -> HttpResponse {
    let report = state.health.report().await;
    // 503 only when this node cannot serve; a Down shared queue is reported, not acted on.
    let status = if report.serving {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    HttpResponse::build(status)
        .insert_header(CacheControl(vec![CacheDirective::NoStore]))
        .json(report)
}
