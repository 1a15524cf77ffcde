//! The OpenAPI document (`GET /api/v2/openapi.json`) and the docs page (`GET /docs`):
//! - every route of the source is in the document, with its method: the route attributes
//!   (`#[get("…")]`, …) under `src/` are read and looked up, and no route is registered any
//!   other way (`web::resource`, `.route(`, `cfg.map(`), which would bypass the document;
//! - every operation of the document is served (its path and method reach a handler);
//! - the document is OpenAPI 3.1 with the error envelope, every error code and the three
//!   security schemes; the docs page loads nothing from outside the server;
//! - its examples are real: the routine a `POST /resource` example holds is accepted as it is,
//!   and every declared error answer shows a code that its status answers.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use crate::helpers::{SendReply, spawn_app};

const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

/// `(method, path)` of every route attribute in the Rust files under `dir`.
fn route_attributes(dir: &Path, found: &mut Vec<(String, String, String)>) {
    for entry in std::fs::read_dir(dir).expect("source dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            route_attributes(&path, found);
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("source file");
        for line in text.lines() {
            let line = line.trim();
            let Some(attr) = line
                .strip_prefix("#[actix_web::")
                .or_else(|| line.strip_prefix("#["))
            else {
                continue;
            };
            for method in METHODS {
                if let Some(rest) = attr.strip_prefix(&format!("{method}(\"")) {
                    let route = rest.split('"').next().unwrap_or_default();
                    // `{id:\\d+}` is `{id}` in the document (the pattern is actix's alone).
                    let route = vrooli::http::openapi::without_patterns(route);
                    found.push((method.into(), route, path.display().to_string()));
                }
            }
        }
    }
}

/// Files that register routes must do so through utoipa-actix-web's `service`, which documents
/// each handler; these calls would register a route the document never sees.
fn bypasses(dir: &Path, found: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).expect("source dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            bypasses(&path, found);
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("source file");
        for (n, line) in text.lines().enumerate() {
            // utoipa-actix-web's own scope documents what it holds.
            let code = line
                .split("//")
                .next()
                .unwrap_or_default()
                .replace("utoipa_actix_web::scope(", "");
            for pattern in ["web::resource(", "web::scope(", ".route(", "cfg.map("] {
                if code.contains(pattern) {
                    found.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
                }
            }
        }
    }
}

async fn document() -> (crate::helpers::TestApp, Value) {
    let app = spawn_app().await;
    let reply = app.get("/api/v2/openapi.json").await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert!(
        reply.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    (app, reply.body)
}

#[tokio::test]
async fn every_route_in_the_source_is_in_the_document() {
    let (_app, doc) = document().await;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut routes = Vec::new();
    route_attributes(&root, &mut routes);
    assert!(routes.len() > 60, "found only {} routes", routes.len());
    let paths = doc["paths"].as_object().expect("paths");
    let mut missing = Vec::new();
    for (method, route, file) in &routes {
        let documented = [route.clone(), format!("/api/v2{route}")]
            .iter()
            .any(|p| paths.get(p).is_some_and(|item| item.get(method).is_some()));
        if !documented {
            missing.push(format!("{} {route} ({file})", method.to_uppercase()));
        }
    }
    assert!(
        missing.is_empty(),
        "routes missing from the document: {missing:#?}"
    );

    let mut registered_elsewhere = Vec::new();
    bypasses(&root.join("http"), &mut registered_elsewhere);
    assert!(
        registered_elsewhere.is_empty(),
        "routes registered around the document: {registered_elsewhere:#?}"
    );
}

#[tokio::test]
async fn every_operation_in_the_document_is_served() {
    let (app, doc) = document().await;
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if item.get(method).is_none() {
                continue;
            }
            operations += 1;
            let concrete = path
                .split('/')
                .map(|segment| {
                    if segment.starts_with('{') {
                        "1"
                    } else {
                        segment
                    }
                })
                .collect::<Vec<_>>()
                .join("/");
            let reply = app
                .client
                .request(method.to_uppercase().parse().unwrap(), app.url(&concrete))
                .reply()
                .await;
            let code = reply.body["errors"][0]["code"].as_str().unwrap_or_default();
            assert!(
                code != "RouteNotFound" && code != "MethodNotAllowed",
                "{method} {path} is documented but not served: {} {}",
                reply.status,
                reply.text
            );
        }
    }
    assert!(operations > 60, "only {operations} operations");
}

#[tokio::test]
async fn the_document_is_openapi_3_1_with_errors_and_security() {
    let (_app, doc) = document().await;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    for scheme in ["cookie", "bearer", "apiKey"] {
        assert!(schemes.contains_key(scheme), "no security scheme {scheme}");
    }
    // Every code the server can answer is in the error envelope's enum.
    let codes: BTreeSet<&str> = doc["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    for code in vrooli::http::Code::ALL {
        assert!(
            codes.contains(code.as_str()),
            "{} is not documented",
            code.as_str()
        );
    }
    // Every operation has a summary, a tag and the envelope as its default answer; every
    // operation that needs a caller says how to authenticate.
    let mut problems = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            let Some(operation) = item.get(method) else {
                continue;
            };
            let what = format!("{method} {path}");
            if operation["tags"].as_array().is_none_or(|t| t.is_empty()) {
                problems.push(format!("{what}: no tag"));
            }
            if !operation["summary"].is_string() {
                problems.push(format!("{what}: no summary"));
            }
            if operation["responses"]["default"]["content"]["application/json"]["schema"]["$ref"]
                != "#/components/schemas/ErrorEnvelope"
            {
                problems.push(format!(
                    "{what}: the error envelope is not its default answer"
                ));
            }
            let success = operation["responses"]
                .as_object()
                .unwrap()
                .keys()
                .any(|status| {
                    status.starts_with('2') || status.starts_with('3') || status == "101"
                });
            if !success {
                problems.push(format!("{what}: no success answer described"));
            }
            for requirement in operation["security"].as_array().into_iter().flatten() {
                for name in requirement.as_object().unwrap().keys() {
                    if !schemes.contains_key(name) {
                        problems.push(format!("{what}: unknown scheme {name}"));
                    }
                }
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

#[tokio::test]
async fn a_wrong_method_is_405_with_allow() {
    let app = spawn_app().await;
    let reply = app.client.delete(app.url("/api/v2/users")).reply().await;
    assert_eq!(reply.status, 405, "{}", reply.text);
    assert_eq!(reply.body["errors"][0]["code"], "MethodNotAllowed");
    assert_eq!(reply.headers["allow"], "GET");
    let reply = app.client.patch(app.url("/api/v2/chat/1")).reply().await;
    assert_eq!(reply.status, 405, "{}", reply.text);
    assert_eq!(reply.headers["allow"], "GET, PUT, DELETE");
    // `/run/io` is its own route, not a run id: a PUT there is a wrong method, not a bad id.
    let reply = app.client.put(app.url("/api/v2/run/io")).reply().await;
    assert_eq!(reply.status, 405, "{}", reply.text);
    assert_eq!(reply.headers["allow"], "GET");
    // A route whose pattern carries a regex (`/run/{id:\d+}`) still finds its methods.
    let reply = app
        .client
        .request("TRACE".parse().unwrap(), app.url("/api/v2/run/12"))
        .reply()
        .await;
    assert_eq!(reply.status, 405, "{}", reply.text);
    assert_eq!(reply.headers["allow"], "GET, PUT");
    let reply = app.client.get(app.url("/mcp")).reply().await;
    assert_eq!(reply.status, 405, "{}", reply.text);
    assert_eq!(reply.headers["allow"], "POST");
}

#[tokio::test]
async fn the_docs_page_works_offline() {
    let app = spawn_app().await;
    // `/docs` sends the browser to `/docs/`, where the page's relative links resolve.
    let redirect = app.get("/docs").await;
    assert_eq!(redirect.status, 308, "{}", redirect.text);
    assert_eq!(redirect.headers["location"], "/docs/");
    let page = app.get("/docs/").await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(
        page.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    // Everything the page loads comes from this server.
    for marker in [
        "src=\"http",
        "href=\"http",
        "//cdn",
        "unpkg.com",
        "jsdelivr",
    ] {
        assert!(!page.text.contains(marker), "the page loads {marker}…");
    }
    let mut loaded = 0;
    for attr in ["src=\"", "href=\""] {
        for part in page.text.split(attr).skip(1) {
            let file = part.split('"').next().unwrap().trim_start_matches("./");
            let reply = app.get(&format!("/docs/{file}")).await;
            assert_eq!(reply.status, 200, "/docs/{file}");
            loaded += 1;
        }
    }
    assert!(loaded >= 3, "the page names only {loaded} files");
    let init = app.get("/docs/swagger-initializer.js").await;
    assert_eq!(init.status, 200);
    assert!(init.text.contains("/api/v2/openapi.json"), "{}", init.text);
    let missing = app.get("/docs/nope.js").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body["errors"][0]["code"], "DocsFileNotFound");
}

/// The operation at `route` (with or without the `/api/v2` prefix) and `method`.
fn operation<'a>(doc: &'a Value, route: &str, method: &str) -> &'a Value {
    let paths = &doc["paths"];
    let item = paths
        .get(format!("/api/v2{route}"))
        .or_else(|| paths.get(route))
        .unwrap_or_else(|| panic!("{route} is not in the document"));
    &item[method]
}

#[tokio::test]
async fn the_routine_example_is_accepted_as_it_is() {
    let (app, doc) = document().await;
    let example = operation(&doc, "/resource", "post")["requestBody"]["content"]
        ["application/json"]["example"]
        .clone();
    assert!(example.is_object(), "POST /resource has no example body");
    let sam = crate::ws::user(&app, "Sam").await;
    let reply = app
        .call(
            reqwest::Method::POST,
            "/resource",
            crate::helpers::Auth::Cookie(&sam.token),
            Some(&example),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["data"]["config"], example["config"]);
    // And it runs: the version it made is a routine, not only a stored document.
    let version = reply.body["data"]["versionId"].as_str().unwrap().to_owned();
    let run = crate::runs::start(
        &app,
        &sam,
        &version,
        serde_json::json!({"name": "Kim"}),
        None,
    )
    .await;
    assert_eq!(run.status, 200, "{}", run.body);
    let run = run.body["data"]["runId"].as_str().unwrap().to_owned();
    let done = crate::runs::until_status(&app, &sam, &run, "Completed").await;
    assert!(done["outputs"]["greeting"].is_string(), "{done}");
}

#[tokio::test]
async fn every_error_answers_example_shows_a_code_of_its_status() {
    let (_app, doc) = document().await;
    let status_of = |name: &str| {
        vrooli::http::Code::ALL
            .iter()
            .find(|code| code.as_str() == name)
            .map(|code| code.kind().status())
    };
    let mut checked = 0;
    let mut problems = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            let Some(operation) = item.get(method) else {
                continue;
            };
            for (status, response) in operation["responses"].as_object().unwrap() {
                let Ok(status) = status.parse::<u16>() else {
                    continue; // `default`: any status
                };
                let content = &response["content"]["application/json"];
                if status < 400 || content["schema"]["$ref"] != "#/components/schemas/ErrorEnvelope"
                {
                    continue;
                }
                let what = format!("{method} {path} {status}");
                let Some(code) = content["example"]["errors"][0]["code"].as_str() else {
                    problems.push(format!("{what}: no example with a code"));
                    continue;
                };
                checked += 1;
                if status_of(code) != Some(status) {
                    problems.push(format!(
                        "{what}: the example's {code} answers {:?}",
                        status_of(code)
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(checked >= 9, "only {checked} error answers declared");
}
