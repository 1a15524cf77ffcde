//! `GET /metrics`: OpenMetrics text for Prometheus, with the system key only (`admin.system_key`
//! as `Authorization: Bearer`, which Prometheus's `authorization` block sends): the counters
//! describe traffic, users and internals no stranger should read. State gauges are read at
//! scrape time.

use actix_web::{HttpResponse, get, web};

use super::system_key::SystemCaller;
use crate::state::AppState;

/// Prometheus metrics (OpenMetrics text), with the system key.
#[utoipa::path(
    tag = "health",
    responses((status = 200, description = "OpenMetrics text", content_type = "application/openmetrics-text", body = String)),
    security(("apiKey" = []), ("bearer" = [])),
)]
#[get("/metrics")]
pub async fn metrics(state: web::Data<AppState>, _: SystemCaller) -> HttpResponse {
    let m = &state.infra.metrics;
    let pool = state.infra.health.pool_usage();
    m.db_pool_size.set(i64::from(pool.size));
    m.db_pool_idle.set(pool.idle as i64);
    m.db_pool_max.set(i64::from(pool.max));
    if let Some(memory) = state.infra.host.memory().await {
        m.process_resident_memory_bytes
            .set(memory.process_rss_bytes as i64);
    }
    m.ws.update(&state.infra.hub);
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(m.render())
}
