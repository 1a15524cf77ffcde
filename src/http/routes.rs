//! The route table: every handler module's routes, registered in one place, and the answer to
//! a request no route takes ([`not_found`]).
//!
//! ```text
//! startup::http ─▶ register ─▶ each capability's `config` (handlers) ─▶ helpers (reply, error,
//!                                                                       extract, paging, path…)
//!               └▶ openapi::Document::build(register) ─▶ the same table, on a throwaway app
//! ```
//!
//! Routes: `GET /healthcheck`, `GET /metrics`, `GET /ws`, `/mcp`, `GET /docs`, and under
//! `/api/v2` everything else; each capability is `src/http/<capability>` exposing `fn config`.
//! Registration goes through utoipa-actix-web, which collects each handler's
//! `#[utoipa::path]` while it registers: this table is also the list of the document's paths.
//! Nothing under `http/` imports this file.

use actix_web::{HttpRequest, HttpResponse, web};

use super::error::ApiError;
use super::openapi::Document;
use super::{
    admin, api_keys, auth, billing, chat, credits, docs, exports, files, health, imports, mcp,
    metrics, notifications, people, profile, push, routines, runs, teams, ws,
};
use crate::errors::Code;

/// Registers every route, documenting each as it goes.
pub fn register(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(health::healthcheck)
        .service(metrics::metrics)
        .service(ws::connect)
        .configure(docs::config)
        .configure(mcp::config)
        .service(billing::stripe_webhook)
        .service(
            // actix tries a scope's routes one by one, in the order they are registered, until
            // one matches: the chat routes, the most requested (a page of messages), go first.
            // Nothing else starts with `/chat`, so the order changes no route's meaning.
            utoipa_actix_web::scope("/api/v2")
                .configure(chat::config)
                .configure(credits::config)
                .service(docs::openapi_json)
                .configure(admin::config)
                .configure(auth::config)
                .configure(api_keys::config)
                .configure(billing::config)
                .configure(files::config)
                .configure(notifications::config)
                .configure(profile::config)
                .configure(exports::config)
                .configure(imports::config)
                .configure(push::config)
                .configure(routines::config)
                .configure(runs::config)
                .configure(teams::config)
                .configure(people::config),
        );
}

/// Answers requests that match no route: 405 when the path is a route's but the method is not
/// (each method of a path is its own resource, guarded by method, so actix falls through to
/// here; the route's pattern is found again to name its methods in `Allow`), 404 otherwise.
pub async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let Some(pattern) = req.resource_map().match_pattern(req.path()) else {
        return Err(ApiError::of(
            Code::RouteNotFound,
            format!("No route for {} {}", req.method(), req.path()),
        ));
    };
    let error = ApiError::of(
        Code::MethodNotAllowed,
        format!("{} does not accept {}", req.path(), req.method()),
    );
    let mut response = actix_web::ResponseError::error_response(&error);
    let allow = req
        .app_data::<web::Data<Document>>()
        .and_then(|doc| doc.allowed(&pattern))
        .and_then(|methods| methods.parse().ok());
    if let Some(allow) = allow {
        response
            .headers_mut()
            .insert(actix_web::http::header::ALLOW, allow);
    }
    Ok(response)
}
