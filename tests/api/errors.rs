//! Every bad input gets the one error envelope with a stable code, the right status, and the
//! request id as `trace`.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::Value;
use vrooli::http::ApiError;

use crate::helpers::SendReply;
use crate::helpers::{Reply, TestApp, routes, spawn_app_with};

#[derive(Deserialize)]
struct Named {
    #[allow(dead_code)]
    name: String,
}

/// Probe routes: a JSON endpoint and one that fails internally. The error handling under test
/// (extractor config, edge middleware, ApiError) is the server's own.
async fn app() -> TestApp {
    spawn_app_with(
        |s| s.server.json_body_limit_bytes = 1024,
        routes(|cfg| {
            cfg.route(
                "/probe/json",
                web::post().to(|body: web::Json<Named>| async move {
                    let _ = body;
                    HttpResponse::Ok().json(serde_json::json!({"data": "ok", "version": "v2"}))
                }),
            )
            .route(
                "/probe/internal",
                web::get().to(|| async {
                    Err::<HttpResponse, _>(ApiError::internal(anyhow::anyhow!(
                        "secret detail: hunter2"
                    )))
                }),
            )
            .route(
                "/probe/unavailable",
                web::get().to(|| async {
                    Err::<HttpResponse, _>(ApiError::from(sqlx::Error::PoolTimedOut))
                }),
            );
        }),
    )
    .await
}

/// Checks an error envelope; takes a sent response or a [`Reply`].
async fn assert_envelope(response: impl Into<Answer>, status: u16, code: &str) -> Value {
    let reply = match response.into() {
        Answer::Response(response) => Reply::read(response).await,
        Answer::Reply(reply) => reply,
    };
    assert_eq!(reply.status, status);
    assert_eq!(reply.headers["content-type"], "application/json");
    let request_id = reply.headers["x-request-id"].to_str().unwrap().to_string();
    let body = reply.body;
    assert!(!body.is_null(), "error body is JSON: {}", reply.text);
    assert_eq!(body["version"], "v2", "{body}");
    let error = &body["errors"][0];
    assert_eq!(error["code"], code, "{body}");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert_eq!(error["trace"], request_id.as_str(), "{body}");
    body
}

enum Answer {
    Response(reqwest::Response),
    Reply(Reply),
}

impl From<reqwest::Response> for Answer {
    fn from(response: reqwest::Response) -> Self {
        Answer::Response(response)
    }
}

impl From<Reply> for Answer {
    fn from(reply: Reply) -> Self {
        Answer::Reply(reply)
    }
}

#[tokio::test]
async fn unknown_route_is_404() {
    let app = app().await;
    assert_envelope(app.get("/nope").await, 404, "RouteNotFound").await;
    assert_envelope(app.get("/api/v2/nope").await, 404, "RouteNotFound").await;
}

#[tokio::test]
async fn wrong_method_is_405() {
    let app = app().await;
    let response = app.client.post(app.url("/healthcheck")).reply().await;
    assert_envelope(response, 405, "MethodNotAllowed").await;
}

#[tokio::test]
async fn malformed_json_is_400() {
    let app = app().await;
    let response = app
        .client
        .post(app.url("/probe/json"))
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .reply()
        .await;
    assert_envelope(response, 400, "InvalidJson").await;
}

#[tokio::test]
async fn json_of_the_wrong_shape_is_422() {
    let app = app().await;
    let response = app
        .client
        .post(app.url("/probe/json"))
        .json(&serde_json::json!({"nom": 1}))
        .reply()
        .await;
    assert_envelope(response, 422, "InvalidBody").await;
}

#[tokio::test]
async fn wrong_content_type_is_415() {
    let app = app().await;
    let response = app
        .client
        .post(app.url("/probe/json"))
        .header("content-type", "text/plain")
        .body("{\"name\":\"x\"}")
        .reply()
        .await;
    assert_envelope(response, 415, "UnsupportedContentType").await;
}

#[tokio::test]
async fn oversized_body_is_413() {
    let app = app().await;
    let big = serde_json::json!({ "name": "x".repeat(2048) });
    let response = app
        .client
        .post(app.url("/probe/json"))
        .json(&big)
        .reply()
        .await;
    assert_envelope(response, 413, "BodyTooLarge").await;

    // Without a Content-Length (chunked), the limit is enforced while reading.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = vec![
        Ok(b"{\"name\":\"".to_vec()),
        Ok(vec![b'x'; 4096]),
        Ok(b"\"}".to_vec()),
    ];
    let response = app
        .client
        .post(app.url("/probe/json"))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .reply()
        .await;
    assert_envelope(response, 413, "BodyTooLarge").await;
}

#[tokio::test]
async fn a_valid_request_passes() {
    let app = app().await;
    let response = app
        .client
        .post(app.url("/probe/json"))
        .json(&serde_json::json!({"name": "x"}))
        .reply()
        .await;
    assert_eq!(response.status, 200);
    assert!(response.headers.contains_key("x-request-id"));
}

#[tokio::test]
async fn internal_errors_are_500_without_their_cause() {
    let app = app().await;
    let body = assert_envelope(app.get("/probe/internal").await, 500, "InternalError").await;
    assert!(!body.to_string().contains("hunter2"), "{body}");
}

#[tokio::test]
async fn an_exhausted_pool_is_503() {
    let app = app().await;
    assert_envelope(
        app.get("/probe/unavailable").await,
        503,
        "ServiceUnavailable",
    )
    .await;
}

#[tokio::test]
async fn cors_preflight_allows_configured_origins_only() {
    let app = app().await;
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/healthcheck"))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .reply()
    };
    let allowed = preflight("http://localhost:3000").await;
    assert_eq!(allowed.status, 200);
    assert_eq!(
        allowed.headers["access-control-allow-origin"],
        "http://localhost:3000"
    );
    assert_eq!(allowed.headers["access-control-allow-credentials"], "true");
    let refused = preflight("http://evil.example").await;
    assert!(refused.headers.get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn browser_requests_from_unsafe_origins_are_refused() {
    let app = crate::helpers::spawn_app_with(|_| {}, None).await;
    let from = |origin: Option<String>| {
        let mut request = app.client.post(app.url("/api/v2/auth/validateSession"));
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request.reply()
    };
    for safe in [
        Some("http://localhost:3000".to_string()), // configured
        Some("http://localhost:5173".to_string()), // localhost in development
        Some(format!("http://127.0.0.1:{}", app.port)), // the server's own origin
        None,                                      // not a browser
    ] {
        assert_eq!(from(safe.clone()).await.status, 200, "{safe:?}");
    }
    assert_envelope(
        from(Some("https://evil.example".into())).await,
        403,
        "UnsafeOrigin",
    )
    .await;

    let strict =
        crate::helpers::spawn_app_with(|s| s.auth.allow_localhost_origins = false, None).await;
    let response = strict
        .client
        .post(strict.url("/api/v2/auth/validateSession"))
        .header("origin", "http://localhost:5173")
        .reply()
        .await;
    assert_envelope(response, 403, "UnsafeOrigin").await;
}

#[tokio::test]
async fn production_defaults_send_secure_cookies_and_refuse_localhost_origins() {
    // Not in development and bound to every interface: what a deployment runs.
    let app = spawn_app_with(
        |s| {
            s.server.development = false;
            s.server.host = "0.0.0.0".into();
        },
        None,
    )
    .await;
    let email = format!("{}@example.org", crate::helpers::random_suffix());
    let signup = app
        .client
        .post(app.url("/api/v2/auth/email/signup"))
        .json(&serde_json::json!({"name": "Sam", "email": email, "password": "correct horse battery"}))
        .reply()
        .await;
    assert_eq!(signup.status, 200);
    let cookie = signup.headers["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("Secure"), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    let response = app
        .client
        .post(app.url("/api/v2/auth/validateSession"))
        .header("origin", "http://localhost:5173")
        .reply()
        .await;
    assert_envelope(response, 403, "UnsafeOrigin").await;

    // Bound to loopback, a development machine's node keeps plain-HTTP cookies working.
    let local = spawn_app_with(|s| s.server.development = false, None).await;
    let email = format!("{}@example.org", crate::helpers::random_suffix());
    let signup = local
        .client
        .post(local.url("/api/v2/auth/email/signup"))
        .json(&serde_json::json!({"name": "Sam", "email": email, "password": "correct horse battery"}))
        .reply()
        .await;
    let cookie = signup.headers["set-cookie"].to_str().unwrap().to_owned();
    assert!(!cookie.contains("Secure"), "{cookie}");
}

#[tokio::test]
async fn small_bodies_by_default_and_larger_only_for_messages() {
    let app = crate::helpers::spawn_app().await;
    // Sign-up with a 100 KB body: over the 64 KiB default.
    let big = serde_json::json!({"name": "x".repeat(100_000), "email": "a@b.org", "password": "p"});
    let response = app
        .client
        .post(app.url("/api/v2/auth/email/signup"))
        .json(&big)
        .reply()
        .await;
    assert_envelope(response, 413, "BodyTooLarge").await;
    // The same size reaches the message route's handler (which then asks for a session).
    let response = app
        .client
        .post(app.url("/api/v2/chatMessage"))
        .json(&serde_json::json!({"chatId": "1", "text": "x".repeat(100_000)}))
        .reply()
        .await;
    assert_eq!(response.status, 401);
}

#[tokio::test]
async fn control_characters_are_refused_with_422_before_any_handler() {
    let app = crate::helpers::spawn_app().await;
    for body in [
        r#"{"name":"Nul\u0000Byte","email":"nul@example.org","password":"correct horse battery"}"#,
        r#"{"name":"Bell\u0007","email":"bell@example.org","password":"correct horse battery"}"#,
    ] {
        let response = app
            .client
            .post(app.url("/api/v2/auth/email/signup"))
            .header("content-type", "application/json")
            .body(body)
            .reply()
            .await;
        assert_envelope(response, 422, "ControlCharacter").await;
    }
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM emails WHERE email_address IN ('nul@example.org', 'bell@example.org')")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(count, 0, "nothing written");
    let response = app.get("/api/v2/chatMessages?chatId=1%00").await;
    assert_envelope(response, 422, "ControlCharacter").await;
    // Line breaks and tabs are text.
    let response = app
        .client
        .post(app.url("/api/v2/auth/email/signup"))
        .header("content-type", "application/json")
        .body(r#"{"name":"Two\nLines\tand \\u0000 written out","email":"ok@example.org","password":"correct horse battery"}"#)
        .reply()
        .await;
    assert_eq!(response.status, 200);
}

/// A body sent as text rather than JSON meets the same guards (issue 34, A7): the route's
/// limit (not the 20 MiB of other bodies) and the refusal of escaped control characters.
#[tokio::test]
async fn a_body_not_declared_json_meets_the_json_guards() {
    let app = crate::helpers::spawn_app().await;
    let sam = crate::ws::user(&app, "Sam").await;
    let send = |path: &'static str, body: String| {
        app.client
            .post(app.url(path))
            .header("cookie", format!("{}={}", crate::auth::COOKIE, sam.token))
            .header("content-type", "text/plain")
            .body(body)
            .reply()
    };
    // Over the 64 KiB of a run's start, far under the 20 MiB of a non-JSON body.
    let big = format!(
        r#"{{"resourceVersionId":"1","formValues":{{"a":"{}"}}}}"#,
        "x".repeat(200_000)
    );
    assert_envelope(
        send("/api/v2/task/start/run", big).await,
        413,
        "BodyTooLarge",
    )
    .await;
    let nul = r#"{"resourceVersionId":"1","formValues":{"a":"x\u0000y"}}"#.to_owned();
    assert_envelope(
        send("/api/v2/task/start/run", nul).await,
        422,
        "ControlCharacter",
    )
    .await;
    // The same with no Content-Type at all, and on a data import.
    let bare = app
        .client
        .post(app.url("/api/v2/task/start/run"))
        .header("cookie", format!("{}={}", crate::auth::COOKIE, sam.token))
        .body(r#"{"resourceVersionId":"1","formValues":{"a":"\u0007"}}"#)
        .reply()
        .await;
    assert_envelope(bare, 422, "ControlCharacter").await;
    let archive = r#"{"format":"vrooli-user-export","version":1,"chats":[{"id":"5","name":"a"}],
        "messages":[{"id":"7","chatId":"5","text":"a\u0000b"}]}"#
        .to_owned();
    assert_envelope(
        send("/api/v2/user/importData", archive).await,
        422,
        "ControlCharacter",
    )
    .await;
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM user_imports")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(rows, 0, "nothing queued");
}
