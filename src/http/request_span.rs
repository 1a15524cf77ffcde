//! The request's span and route, each made once per request.
//!
//! [`RequestSpan`] is the root span `TracingLogger` opens around every request: every log line
//! inside the request carries its fields. tracing-actix-web's default span has 17 fields, looks
//! up the route and records the status at the end; with JSON logs each field is formatted into
//! the span, and parsed again for every line logged inside it. A profile of the page GET
//! (`benches/load/page.sh`, issue 13) had the default span's start and end at about 9% of the
//! server's samples. This one keeps what a log line needs to be traced back to its request and
//! its caller (`user_id`, empty until the session middleware has read the session or API key);
//! route, status and time are in the access log line (`http::edge`), which is logged inside it.
//!
//! [`route`] is the matched route pattern (`/api/v2/chat/{id}`), kept in the request's
//! extensions: actix walks its whole resource map for every `match_pattern`, and the rate
//! limiter, the body limits and the edge (metrics, access log) each need it.

use std::rc::Rc;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::{Error, HttpMessage, HttpRequest};
use tracing::Span;
use tracing_actix_web::{RequestId, RootSpanBuilder};

pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let request_id = request.extensions().get::<RequestId>().copied();
        let user_agent = request
            .headers()
            .get(actix_web::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let connection = request.connection_info();
        tracing::info_span!(
            "HTTP request",
            request_id = request_id.map(tracing::field::display),
            http.method = %request.method(),
            // `/ws`'s token has been taken out of the query by then (`http::ws::hide_query_token`).
            http.target = %request.uri().path_and_query().map_or("", |p| p.as_str()),
            http.client_ip = %connection.realip_remote_addr().unwrap_or(""),
            http.user_agent = %user_agent,
            // Recorded by `http::auth::session::session_layer` once it knows the caller.
            user_id = tracing::field::Empty,
        )
    }

    /// Nothing to add: the access log line has the status, and internal errors are logged
    /// where they are turned into responses (`http::error`).
    fn on_request_end<B: MessageBody>(_span: Span, _outcome: &Result<ServiceResponse<B>, Error>) {}
}

#[derive(Clone)]
struct Route(Option<Rc<str>>);

/// The request's route pattern, `None` when no route matches; found on the first call.
pub fn route(req: &HttpRequest) -> Option<Rc<str>> {
    if let Some(Route(pattern)) = req.extensions().get::<Route>() {
        return pattern.clone();
    }
    let pattern: Option<Rc<str>> = req.match_pattern().map(Into::into);
    req.extensions_mut().insert(Route(pattern.clone()));
    pattern
}
