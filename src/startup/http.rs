//! Start-up: the HTTP stack — the listener (bound with the configured backlog), middleware in
//! order, routes, CORS, and the upgrade service that takes WebSockets out of actix-http's
//! connections (`http/upgrade.rs`).

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;
use utoipa_actix_web::AppExt;

use actix_cors::Cors;
use actix_http::HttpService;
use actix_service::{IntoServiceFactory, ServiceFactoryExt, map_config};
use actix_web::dev::{AppConfig, Server};
use actix_web::middleware::from_fn;
use actix_web::{App, web};
use tracing_actix_web::TracingLogger;

use super::error::StartupError;
use crate::config::{CorsSettings, Settings};
use crate::http::origin::SafeOrigins;
use crate::http::rate_limit::RateLimits;
use crate::ratelimit::RateLimiter;
use crate::state::AppState;

/// Extra routes mounted beside the server's own (tests mount probes through it).
pub type RouteHook = Arc<dyn Fn(&mut web::ServiceConfig) + Send + Sync>;

/// Binds `addr` with an accept backlog of `backlog` (the OS caps it at `net.core.somaxconn`), so a
/// reconnect storm after a restart waits in the queue instead of falling into SYN retries.
pub(super) fn bind_listener(addr: &str, backlog: u32) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let addr: std::net::SocketAddr = std::net::ToSocketAddrs::to_socket_addrs(addr)?
        .next()
        .ok_or_else(|| std::io::Error::other("the address resolves to nothing"))?;
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // As std and actix do: a restarted node may bind while old connections sit in TIME_WAIT.
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
    Ok(socket.into())
}

pub(super) fn http_server(
    settings: &Settings,
    state: AppState,
    redis: Option<crate::redis_client::RedisClient>,
    extra_routes: Option<RouteHook>,
) -> Result<(Server, u16), StartupError> {
    let server_settings = &settings.server;
    let addr = format!("{}:{}", server_settings.host, server_settings.port);
    let listener =
        bind_listener(&addr, server_settings.backlog).map_err(|source| StartupError::Bind {
            addr: addr.clone(),
            source,
        })?;
    let port = listener
        .local_addr()
        .map_err(|source| StartupError::Bind {
            addr: addr.clone(),
            source,
        })?
        .port();

    let rate_limits = web::Data::new(RateLimits {
        limiter: RateLimiter::new(redis, settings.rate_limit.fail_open),
        settings: settings.rate_limit.clone(),
        behind_proxy: settings.server.behind_proxy,
    });
    let hub = state.infra.hub.clone();
    let data = web::Data::new(state);
    let safe_origins = web::Data::new(SafeOrigins {
        configured: settings.cors.allowed_origins.clone(),
        any: settings.cors.allowed_origins.iter().any(|o| o == "*"),
        localhost: settings.auth.allow_localhost_origins,
    });
    let cors_settings = settings.cors.clone();
    let body_limits = crate::http::input::BodyLimits {
        json: server_settings.json_body_limit_bytes,
        message_json: server_settings.message_json_body_limit_bytes,
        routine_json: server_settings.routine_json_body_limit_bytes,
        import_json: settings.exports.import_max_bytes,
    };
    let json_limit = body_limits.largest();
    let body_limits = web::Data::new(body_limits);
    let body_limit = server_settings.body_limit_bytes;
    // Built once: every worker's app registers the same routes, so one document describes all.
    let document = web::Data::new(crate::http::openapi::Document::build(
        crate::http::routes::register,
    ));
    let docs_ui = web::Data::new(crate::http::docs::UiConfig::new());
    let app = move || {
        let extra_routes = extra_routes.clone();
        // `wrap` order: the last one added runs first. TracingLogger opens the request span and
        // assigns the request id; edge renders errors and records metrics inside that span.
        App::new()
            .app_data(data.clone())
            .app_data(document.clone())
            .app_data(docs_ui.clone())
            .app_data(safe_origins.clone())
            .app_data(rate_limits.clone())
            .app_data(body_limits.clone())
            .app_data(crate::http::extract::json_config(json_limit))
            .app_data(web::PayloadConfig::new(body_limit))
            .app_data(crate::http::extract::query_config())
            .app_data(crate::http::extract::path_config())
            // Innermost: bodies are read and checked only for requests that got this far.
            .wrap(from_fn(crate::http::input::input_guard))
            .wrap(cors(&cors_settings))
            .wrap(from_fn(crate::http::rate_limit::rate_limit_layer))
            .wrap(from_fn(crate::http::origin::origin_guard))
            .wrap(from_fn(crate::http::auth::session::session_layer))
            .wrap(from_fn(crate::http::edge::edge))
            .wrap(TracingLogger::<crate::http::request_span::RequestSpan>::new())
            // Outermost: a token in /ws's query string is taken out before anything logs the URI.
            .wrap(from_fn(crate::http::ws::hide_query_token))
            .into_utoipa_app()
            .configure(crate::http::routes::register)
            .into_app()
            .configure(move |cfg| {
                if let Some(hook) = &extra_routes {
                    hook(cfg);
                }
            })
            .default_service(web::to(crate::http::routes::not_found))
    };

    // actix-web's `HttpServer` has no hook for upgrades, so the server is assembled as it does
    // (actix-server + actix-http's HttpService), plus the upgrade service.
    let local_addr = listener.local_addr().map_err(|source| StartupError::Bind {
        addr: addr.clone(),
        source,
    })?;
    let keep_alive = Duration::from_secs(server_settings.keep_alive_secs);
    let request_timeout = Duration::from_secs(server_settings.client_request_timeout_secs);
    let server = actix_server::Server::build()
        .shutdown_timeout(server_settings.shutdown_timeout_secs)
        .max_concurrent_connections(server_settings.max_connections_per_worker)
        .backlog(server_settings.backlog)
        // We install our own handlers: actix treats SIGINT as a forced stop, we drain on both.
        .disable_signals()
        .workers(server_settings.http_workers());
    let server = server
        .listen("vrooli-http", listener, move || {
            let requests = app()
                .into_factory()
                .map_err(|error: actix_web::Error| error.error_response());
            HttpService::build()
                .keep_alive(keep_alive)
                .client_request_timeout(request_timeout)
                .client_disconnect_timeout(Duration::from_secs(1))
                .local_addr(local_addr)
                .upgrade(crate::http::upgrade::factory(app.clone(), hub.clone()))
                .finish(map_config(requests, |_| AppConfig::default()))
                .tcp()
        })
        .map_err(|source| StartupError::Bind { addr, source })?
        .run();
    Ok((server, port))
}

pub(super) fn cors(settings: &CorsSettings) -> Cors {
    let mut cors = Cors::default()
        .allowed_methods(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
        .allow_any_header()
        .expose_headers([crate::http::edge::X_REQUEST_ID])
        .max_age(settings.max_age_secs);
    for origin in &settings.allowed_origins {
        cors = if origin == "*" {
            cors.allow_any_origin().send_wildcard()
        } else {
            cors.allowed_origin(origin)
        };
    }
    if settings.allow_credentials {
        cors = cors.supports_credentials();
    }
    cors
}
