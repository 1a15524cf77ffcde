//! `code` steps: JavaScript run by QuickJS in a child process (`vrooli sandbox`, the real
//! binary). A script computes from the run's context; an endless loop is stopped at its deadline;
//! a 100 MB allocation fails cleanly; a result too large is refused; `require`, `fetch` and
//! `process` do not exist; a child that crashes, or never answers, fails the step, not the node.
//! Each script is a job of the `sandbox-execution` queue, whose concurrency bounds a node's
//! children; a script inside parallel branches works too (the lease is held while it runs).

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
    node_with_fake_sandbox_and(body, |_| {}).await
}

async fn node_with_fake_sandbox_and(
    body: &str,
    customize: impl FnOnce(&mut vrooli::config::Settings),
) -> (TestApp, User) {
    let program = fake_sandbox(body);
    let app = spawn_app_with(
        move |s| {
            run_settings(s);
            s.sandbox.program = program;
            s.sandbox.kill_grace_ms = 200;
            customize(s);
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

#[tokio::test]
async fn a_script_is_a_sandbox_execution_job_with_its_outcome_stored_for_the_step() {
    let app = run_app().await;
    let sam = user(&app, "Sam").await;
    let done = run_code(&app, &sam, "return input.a * 2;", json!({"a": 21})).await;
    assert_eq!(done["status"], "Completed", "{done}");
    assert_eq!(done["outputs"]["result"], 42);
    let run: i64 = done["id"].as_str().unwrap().parse().unwrap();
    let key = format!("sandbox:{run}:js#1");
    let (state, kind): (String, String) =
        sqlx::query_as("SELECT state, kind FROM jobs WHERE unique_key = $1")
            .bind(&key)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(
        (state.as_str(), kind.as_str()),
        ("completed", "sandbox-execution")
    );
    let outcome: Value = sqlx::query_scalar(
        "SELECT outcome FROM run_code_results WHERE run_id = $1 AND step_key = $2 AND attempt = 1",
    )
    .bind(run)
    .bind(format!("{run}:js"))
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(outcome, json!({"Ok": 42}));
    // A person cannot answer for the script: decisions are another table.
    let answered: i64 = sqlx::query_scalar("SELECT count(*) FROM run_decisions WHERE run_id = $1")
        .bind(run)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(answered, 0);
}

#[tokio::test]
async fn the_queue_bounds_the_scripts_of_a_node_and_branches_may_run_scripts() {
    // Each child takes a lock directory for 300 ms; one that finds it taken says so.
    let lock = std::env::temp_dir().join(format!(
        "vrooli-sandbox-lock-{}",
        crate::helpers::random_suffix()
    ));
    let overlaps = lock.with_extension("overlaps");
    let body = format!(
        "mkdir {lock} 2>/dev/null || echo overlap >> {overlaps}\nsleep 0.3\nrmdir {lock} 2>/dev/null\n\
         printf '{{\"outcome\":\"ok\",\"result\":7}}'",
        lock = lock.display(),
        overlaps = overlaps.display()
    );
    let (app, sam) = node_with_fake_sandbox_and(&body, |s| {
        s.jobs.queues.sandbox_execution.concurrency = 1;
        s.sandbox.timeout_ms = 2000;
    })
    .await;
    let branch = |id: &str| code_node(id, "return 7;", json!({}));
    let config = json!({"graph": {"__type": "Graph-1.0", "schema": {
        "start": "p",
        "nodes": [{"id": "p", "kind": "parallel", "branches": ["b1", "b2", "b3"], "join": "j"},
                  branch("b1"), branch("b2"), branch("b3"), {"id": "j", "kind": "join"}],
        "edges": [{"from": "b1", "to": "j"}, {"from": "b2", "to": "j"}, {"from": "b3", "to": "j"}],
        "outputs": {"sum": "nodes.b1.result"}}}});
    let started = Instant::now();
    let run = run_of(&app, &sam, config, json!({})).await;
    let done = until_status(&app, &sam, &run, "Completed").await;
    assert_eq!(done["outputs"]["sum"], 7, "{done}");
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "three 300 ms scripts one at a time: {:?}",
        started.elapsed()
    );
    assert!(
        !overlaps.exists(),
        "two children at once: {:?}",
        std::fs::read_to_string(&overlaps)
    );
}
