//! Runs load: starts NODES (default 2) release `vrooli` binaries sharing PostgreSQL and Redis,
//! creates a routine of STEPS (default 10) no-op steps (`wait` of 0 ms), starts RUNS (default
//! 200) runs in bulk spread over the nodes (START_CONCURRENCY requests at once, default 16),
//! and reports:
//! - steps/s end to end (first start request sent → last run Completed, as the database says);
//! - start-to-first-step latency p50/p99 (the run row's creation → its first `step/started`);
//! - failover: a run of FAILOVER_STEPS (default 400, within runs.max_graph_nodes) no-op steps, kill -9 of its owner, and the
//!   time from the kill to the first step on its successor (lease TTL + a sweep, by design).
//!
//! Run: `cargo bench --bench runs` (RUNS, STEPS, NODES, START_CONCURRENCY, FAILOVER_STEPS).
//! Needs PostgreSQL and Redis (config.toml / VROOLI__* as for the server); it creates and drops
//! a database of its own and uses a Redis key prefix of its own. Load and servers share the
//! machine's cores.

use std::str::FromStr;
use std::time::{Duration, Instant};

use secrecy::ExposeSecret;
use serde_json::{Value, json};
use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, ConnectOptions};
use vrooli::config::{Settings, Sources};

mod common;

use common::{start_node, url_without_db};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn waits(steps: usize) -> Value {
    let nodes: Vec<Value> = (0..steps)
        .map(|i| json!({"id": format!("s{i}"), "kind": "wait", "durationMs": 0}))
        .collect();
    let edges: Vec<Value> = (1..steps)
        .map(|i| json!({"from": format!("s{}", i - 1), "to": format!("s{i}")}))
        .collect();
    json!({"graph": {"__type": "Graph-1.0", "schema": {"nodes": nodes, "edges": edges}}})
}

async fn routine(client: &reqwest::Client, base: &str, cookie: &str, steps: usize) -> String {
    let body: Value = client
        .post(format!("{base}/api/v2/resource"))
        .header("cookie", format!("session-v2={cookie}"))
        .json(&json!({"resourceType": "Routine", "name": "bench", "config": waits(steps)}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["data"]["versionId"]
        .as_str()
        .expect("a routine")
        .to_owned()
}

async fn start_run(client: &reqwest::Client, base: &str, cookie: &str, version: &str) -> String {
    let body: Value = client
        .post(format!("{base}/api/v2/task/start/run"))
        .header("cookie", format!("session-v2={cookie}"))
        .json(&json!({"resourceVersionId": version, "isNewRun": true, "formValues": {}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["data"]["runId"].as_str().expect("a run").to_owned()
}

#[tokio::main]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("runs bench: skipped (run with cargo bench --bench runs)");
        return;
    }
    let runs = env_or("RUNS", 200);
    let steps = env_or("STEPS", 10);
    let nodes_wanted = env_or("NODES", 2).max(2);
    let concurrency = env_or("START_CONCURRENCY", 16);
    let failover_steps = env_or("FAILOVER_STEPS", 400);
    let settings = Settings::load(&Sources::default()).expect("settings");

    let base = PgConnectOptions::from_str(settings.database.url.expose_secret()).unwrap();
    let name = format!("vrooli_bench_runs_{}", std::process::id());
    let mut admin = base.clone().database("postgres").connect().await.unwrap();
    sqlx::query(AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await
    .unwrap();
    sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .unwrap();
    let db_url = format!(
        "{}{name}",
        url_without_db(settings.database.url.expose_secret())
    );
    let prefix = format!("bench-runs:{}:", std::process::id());
    let dir = std::env::temp_dir().join(format!("vrooli-bench-runs-{}", std::process::id()));
    let mut nodes = Vec::new();
    for i in 0..nodes_wanted {
        nodes.push(start_node(&settings, &db_url, &prefix, 110 + i as u16, &dir, &[]).await);
    }
    let client = reqwest::Client::new();
    let response = client
        .post(format!("{}/api/v2/auth/email/signup", nodes[0].base))
        .json(&json!({"name": "Bench", "email": "bench-runs@example.org", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    let cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .find_map(|v| {
            v.to_str()
                .ok()?
                .strip_prefix("session-v2=")
                .map(|v| v.split(';').next().unwrap().to_owned())
        })
        .expect("session cookie");
    let pool = sqlx::PgPool::connect(&db_url).await.unwrap();
    let version = routine(&client, &nodes[0].base, &cookie, steps).await;
    println!("nodes={nodes_wanted} runs={runs} steps={steps} start_concurrency={concurrency}");

    // Bulk: start every run, spread over the nodes, then wait for all to complete.
    let began = Instant::now();
    let semaphore = std::sync::Arc::new(tokio::sync::Semaphore::new(concurrency));
    let mut starts = Vec::new();
    for i in 0..runs {
        let permit = semaphore.clone().acquire_owned().await.unwrap();
        let (client, base, cookie, version) = (
            client.clone(),
            nodes[i % nodes.len()].base.clone(),
            cookie.clone(),
            version.clone(),
        );
        starts.push(tokio::spawn(async move {
            let run = start_run(&client, &base, &cookie, &version).await;
            drop(permit);
            run
        }));
    }
    for start in starts {
        start.await.unwrap();
    }
    let started = began.elapsed();
    loop {
        let done: i64 =
            sqlx::query_scalar("SELECT count(*) FROM runs WHERE status IN ('Completed', 'Failed')")
                .fetch_one(&pool)
                .await
                .unwrap();
        if done as usize >= runs {
            break;
        }
        if began.elapsed() > Duration::from_secs(600) {
            panic!("only {done} of {runs} runs finished in 10 min");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = began.elapsed();
    let failed: i64 = sqlx::query_scalar("SELECT count(*) FROM runs WHERE status = 'Failed'")
        .fetch_one(&pool)
        .await
        .unwrap();
    let total_steps: i64 =
        sqlx::query_scalar("SELECT count(*) FROM run_steps WHERE status = 'Completed'")
            .fetch_one(&pool)
            .await
            .unwrap();
    let mut latencies: Vec<f64> = sqlx::query_scalar(
        "SELECT (EXTRACT(EPOCH FROM min(e.created_at) - r.created_at) * 1000)::float8
           FROM runs r JOIN run_events e ON e.run_id = r.id AND e.event_type = 'step/started'
          GROUP BY r.id, r.created_at",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    latencies.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "{runs} runs × {steps} steps: {total_steps} steps in {:.2} s = {:.0} steps/s ({failed} failed; starts sent in {:.2} s)",
        elapsed.as_secs_f64(),
        total_steps as f64 / elapsed.as_secs_f64(),
        started.as_secs_f64()
    );
    println!(
        "start → first step: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(f64::NAN)
    );

    // Failover: a long run, kill -9 of its owner, the successor's first step.
    let version = routine(&client, &nodes[0].base, &cookie, failover_steps).await;
    let run = start_run(&client, &nodes[0].base, &cookie, &version).await;
    let run_id: i64 = run.parse().unwrap();
    let owner = loop {
        let owner: Option<i32> = sqlx::query_scalar(
            "SELECT lease_owner FROM runs WHERE id = $1 AND (SELECT count(*) FROM run_steps WHERE run_id = $1) > 20",
        )
        .bind(run_id)
        .fetch_optional(&pool)
        .await
        .unwrap()
        .flatten();
        if let Some(owner) = owner {
            break owner;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let victim = nodes
        .iter_mut()
        .find(|n| i32::from(n.id) == owner)
        .expect("the owner");
    let kill_at: chrono::DateTime<chrono::Utc> = sqlx::query_scalar("SELECT now()")
        .fetch_one(&pool)
        .await
        .unwrap();
    victim.process.start_kill().unwrap();
    let _ = victim.process.wait().await;
    let first_after = loop {
        let at: Option<chrono::DateTime<chrono::Utc>> = sqlx::query_scalar(
            "SELECT min(created_at) FROM run_events
              WHERE run_id = $1 AND event_type = 'step/started' AND created_at > $2",
        )
        .bind(run_id)
        .bind(kill_at + chrono::Duration::milliseconds(50))
        .fetch_one(&pool)
        .await
        .unwrap();
        if let Some(at) = at {
            break at;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    println!(
        "kill -9 of the owner → first step on its successor: {:.2} s (lease_ttl_ms = {}, sweep_interval_ms = {})",
        (first_after - kill_at).num_milliseconds() as f64 / 1000.0,
        settings.runs.lease_ttl_ms,
        settings.runs.sweep_interval_ms
    );

    drop(nodes);
    pool.close().await;
    sqlx::query(AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await
    .unwrap();
}
