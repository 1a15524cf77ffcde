//! The edge middleware: the last thing every response passes through before tracing logs it.
//!
//! For each request it (1) renders any error response into the one envelope, with the request id
//! as `trace` — whether the error came from an `ApiError`, an extractor, or actix itself (unknown
//! route, wrong method, oversized body); (2) returns the request id as `X-Request-Id`;
//! (3) records the request count and latency by method, route pattern and status, and writes the
//! access log line (`log.access_log`).
//!
//! Error responses that already carry a JSON body and no `ErrorInfo` (the health report's 503)
//! are left alone: their body is the answer.

use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, web};
use serde_json::json;
use tracing_actix_web::RequestId;

use super::error::{ErrorInfo, told_for_status};
use crate::metrics::HttpLabels;
use crate::state::AppState;

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub async fn edge(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let start = Instant::now();
    let request_id = req
        .extensions()
        .get::<RequestId>()
        .map(ToString::to_string)
        .unwrap_or_default();
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let method = req.method().to_string();

    // Routing and handlers turn every error into a response, so an `Err` here could only come
    // from a middleware inside this one; it still reaches the client through actix's renderer.
    // (The request cannot be cloned to render it ourselves: routing needs it unshared.)
    let response = next.call(req).await?.map_into_boxed_body();
    let mut response = render_error(response, &request_id);
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(X_REQUEST_ID, value);
    }

    if let Some(state) = state {
        let labels = HttpLabels {
            method,
            route: super::request_span::route(response.request())
                .as_deref()
                .unwrap_or("unmatched")
                .to_owned(),
            status: response.status().as_u16(),
        };
        let seconds = start.elapsed().as_secs_f64();
        if state.infra.access_log {
            // Inside the request span, so the line carries the request id and path. A load
            // balancer's or a scraper's poll that succeeds is at debug: every few seconds, it
            // would bury the lines people read.
            let polled =
                matches!(labels.route.as_str(), "/healthcheck" | "/metrics") && labels.status < 400;
            if polled {
                tracing::debug!(
                    method = %labels.method,
                    route = %labels.route,
                    status = labels.status,
                    elapsed_ms = seconds * 1000.0,
                    "request finished"
                );
            } else {
                tracing::info!(
                    method = %labels.method,
                    route = %labels.route,
                    status = labels.status,
                    elapsed_ms = seconds * 1000.0,
                    "request finished"
                );
            }
        }
        state.infra.metrics.observe_http(&labels, seconds);
    }
    Ok(response)
}

fn render_error(response: ServiceResponse<BoxBody>, trace: &str) -> ServiceResponse<BoxBody> {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let info = response.response().extensions().get::<ErrorInfo>().cloned();
    let has_json_body = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let info = match info {
        Some(info) => info,
        None if has_json_body => return response,
        None => {
            let (code, message) = told_for_status(status);
            let code = code.as_str();
            ErrorInfo {
                code: code.into(),
                message: message.into(),
            }
        }
    };
    let body = json!({
        "errors": [{ "code": info.code, "message": info.message, "trace": trace }],
        "version": "v2",
    });
    let (request, response) = response.into_parts();
    let mut response = response.set_body(BoxBody::new(body.to_string()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response.headers_mut().remove(header::CONTENT_LENGTH);
    ServiceResponse::new(request, response)
}
