//! `code` steps: JavaScript run by QuickJS in a child process (`vrooli sandbox`, the real
//! binary). A script computes from the run's context; an endless loop is stopped at its deadline;
//! a 100 MB allocation fails cleanly; a result too large is refused; `require`, `fetch` and
//! `process` do not exist; a child that crashes, or never answers, fails the step, not the node.

use std::time::Instant;

use super::*;

fn code_node(id: &str, code: &str, input: Value) -> Value {
    json!({"id": id, "kind": "code", "code": code, "input": input})
}

/// A run of one code node; the run once finished (Completed or Failed).
async fn run_code(app: &TestApp, who: &User, code: &str, input: Value) -> Value {
    let config = json!({"graph": {"__type": "Graph-1.0", "schema": {
        "start": "js",
        "nodes": [code_node("js", code, input)],
        "edges": [],
        "outputs": {"result": "nodes.js.result"}}}});
    let run = run_of(app, who, config, json!({"a": 2, "b": 40, "name": "Sam"})).await;
    wait_until(Duration::from_secs(20), "the run finishes", || async {
        let status = get_run(app, who, &run).await["status"].clone();
        status == "Completed" || status == "Failed"
    })
    .await;
    get_run(app, who, &run).await
}

fn failure(run: &Value) -> (String, String) {
    (
        run["status"].as_str().unwrap_or_default().to_owned(),
        run["statusReason"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test]
async fn a_script_computes_from_the_context_without_any_host_function() {
    let app = run_app().await;
    let sam = user(&app, "Sam").await;
    let done = run_code(
        &app,
        &sam,
        "const globals = ['require', 'fetch', 'process', 'console', 'setTimeout', 'std', 'os']
             .filter(name => typeof globalThis[name] !== 'undefined');
         return {sum: input.a + input.b, hello: 'hi ' + input.who, globals};",
        json!({"a": "{{input.a}}", "b": "{{input.b}}", "who": "{{input.name}}"}),
    )
    .await;
    assert_eq!(done["status"], "Completed", "{done}");
    assert_eq!(
        done["outputs"]["result"],
        json!({"sum": 42, "hello": "hi Sam", "globals": []})
    );

    // Reaching for the host is an error of the script, and the run says which.
    let done = run_code(
        &app,
        &sam,
        "return require('fs').readFileSync('/etc/passwd');",
        json!({}),
    )
    .await;
    assert_eq!(
        failure(&done),
        ("Failed".into(), "ScriptError".into()),
        "{done}"
    );
    let done = run_code(&app, &sam, "return fetch('http://example.org');", json!({})).await;
    assert_eq!(failure(&done).1, "ScriptError", "{done}");
}

#[tokio::test]
async fn an_endless_loop_stops_at_its_deadline_and_a_huge_allocation_fails_cleanly() {
    let app = run_app().await;
    let sam = user(&app, "Sam").await;
    let started = Instant::now();
    let done = run_code(&app, &sam, "while (true) {}", json!({})).await;
    assert_eq!(
        failure(&done),
        ("Failed".into(), "ScriptTimeout".into()),
        "{done}"
    );
    // sandbox.timeout_ms is 500: stopped by the engine, long before the wall-clock kill.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    let done = run_code(
        &app,
        &sam,
        "const big = 'x'.repeat(100 * 1024 * 1024); return big.length;",
        json!({}),
    )
    .await;
    assert_eq!(
        failure(&done),
        ("Failed".into(), "ScriptOutOfMemory".into()),
        "{done}"
    );
    let done = run_code(
        &app,
        &sam,
        "const a = []; while (true) a.push(new Array(1e5).fill(1));",
        json!({}),
    )
    .await;
    assert_eq!(failure(&done).1, "ScriptOutOfMemory", "{done}");
    // A result over sandbox.max_output_bytes (1 MiB) is refused, not stored.
    let done = run_code(&app, &sam, "return 'y'.repeat(2 * 1024 * 1024);", json!({})).await;
    assert_eq!(failure(&done).1, "ScriptOutputTooLarge", "{done}");
    // Deep recursion meets the stack limit as an error, not a crash.
    let done = run_code(
        &app,
        &sam,
        "function f(n) { return f(n + 1) + 1; } return f(0);",
        json!({}),
    )
    .await;
    assert_eq!(failure(&done).1, "ScriptError", "{done}");
}

/// A stand-in for the sandbox binary: a shell script doing `body`.
fn fake_sandbox(body: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::temp_dir().join(format!(
        "vrooli-fake-sandbox-{}.sh",
        crate::helpers::random_suffix()
    ));
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.to_string_lossy().into_owned()
}

/// A node whose sandbox is a shell script doing `body`; its user Sam.
async fn node_with_fake_sandbox(body: &str) -> (TestApp, User) {
    let program = fake_sandbox(body);
    let app = spawn_app_with(
        move |s| {
            run_settings(s);
            s.sandbox.program = program;
            s.sandbox.kill_grace_ms = 200;
        },
        None,
    )
    .await;
    let sam = user(&app, "Sam").await;
    (app, sam)
}

#[tokio::test]
async fn a_child_that_crashes_or_hangs_fails_the_step_not_the_node() {
    let (app, sam) = node_with_fake_sandbox("kill -SEGV $$").await;
    let done = run_code(&app, &sam, "return 1;", json!({})).await;
    assert_eq!(
        failure(&done),
        ("Failed".into(), "SandboxCrashed".into()),
        "{done}"
    );
    assert_eq!(app.healthcheck().await.status, 200, "the node serves on");

    // One that never answers is killed at the deadline plus the grace.
    let (app, sam) = node_with_fake_sandbox("exec sleep 30").await;
    let started = Instant::now();
    let done = run_code(&app, &sam, "return 1;", json!({})).await;
    assert_eq!(
        failure(&done),
        ("Failed".into(), "ScriptTimeout".into()),
        "{done}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}
