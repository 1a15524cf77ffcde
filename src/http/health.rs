//! `GET /healthcheck`: the health report in the original's shape; 503 when Down, or draining
//! before a stop (`"draining": true`), so a load balancer takes the node out; 200 for
//! Operational and Degraded. Anyone sees each service's
//! status; only a caller with the system key sees their `details` (pool sizes, memory, provider
//! names, error texts), which describe internals.

use actix_web::http::StatusCode;
use actix_web::http::header::{CacheControl, CacheDirective};
use actix_web::{HttpRequest, HttpResponse, get, web};

use crate::state::AppState;

/// This node's health: each dependency's status (details with the system key only).
#[utoipa::path(
    tag = "health",
    responses(
        (status = 200, description = "Operational or Degraded", body = crate::health::HealthReport),
        (status = 503, description = "A service this node needs is Down, or the node is draining", body = crate::health::HealthReport),
    ),
    security(("public" = [])),
)]
#[get("/healthcheck")]
pub async fn healthcheck(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let mut report = state.infra.health.report().await;
    if !super::system_key::is_system(&req) {
        for service in report.services.values_mut() {
            service.details = None;
        }
    }
    // 503 only when this node cannot serve or is stopping; a Down shared queue is reported,
    // not acted on.
    let status = if report.serving && !report.draining {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    HttpResponse::build(status)
        .insert_header(CacheControl(vec![CacheDirective::NoStore]))
        .json(report)
}
