//! Job queue load: no-op jobs enqueued in bulk then drained by 1 and 2 worker pools (jobs/s end
//! to end), and enqueue-to-start latency with idle pools (p50/p99).
//!
//! Needs PostgreSQL (the database.url of config.toml / VROOLI__DATABASE__URL); it creates and
//! drops a database of its own. Run: `cargo bench --bench jobs` (JOBS=N to change the count,
//! CONCURRENCY=N for the pool size, VROOLI__JOBS__FETCH_BATCH=N for the claim size,
//! VROOLI__DATABASE__MAX_CONNECTIONS=N for the database pool's).

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, ConnectOptions, PgPool};
use vrooli::config::{Settings, Sources};
use vrooli::ids::Snowflake;
use vrooli::jobs::{
    Executor, JobContext, JobError, JobHandler, JobRuntime, JobStore, Queue, Registry, SystemClock,
};

#[derive(Serialize, Deserialize)]
struct Noop {}

struct NoopHandler;

impl JobHandler for NoopHandler {
    const KIND: &'static str = "bench.noop";
    const QUEUE: Queue = Queue::NotificationCreate;
    type Payload = Noop;

    async fn handle(&self, _: Noop, _: JobContext) -> Result<(), JobError> {
        Ok(())
    }
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing useful. Only measure
    // when asked to benchmark.
    if !std::env::args().any(|a| a == "--bench") {
        println!("jobs bench: skipped (run with cargo bench --bench jobs)");
        return;
    }
    let jobs: usize = std::env::var("JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000);
    let mut settings = Settings::load(&Sources::default()).expect("settings");
    settings.jobs.queues.notification_create.concurrency = std::env::var("CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let base =
        PgConnectOptions::from_str(settings.database.url.expose_secret()).expect("database.url");
    let admin = base.clone().database("postgres");
    let name = format!("vrooli_bench_jobs_{}", std::process::id());
    let mut conn = admin.connect().await.expect("connect");
    sqlx::query(AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut conn)
    .await
    .unwrap();
    sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap();
    // The pool a node would have (`database.max_connections`, 0: from the CPUs).
    let pool_size = settings.database.pool_size();
    println!("database pool: {pool_size} connections");
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(pool_size)
        .connect_with(base.clone().database(&name))
        .await
        .expect("bench database");
    vrooli::db::migrate(&pool).await.unwrap();
    let settings = Arc::new(settings.jobs);

    for pools in [1, 2] {
        let enqueue_start = Instant::now();
        enqueue_bulk(&pool, jobs).await;
        let enqueue = enqueue_start.elapsed();
        let start = Instant::now();
        let runtimes = start_pools(&pool, &settings, pools);
        wait_for_completed(&pool, jobs as i64).await;
        let drained = start.elapsed();
        for runtime in runtimes {
            runtime.shutdown().await;
        }
        println!(
            "{pools} pool(s): enqueued {jobs} in {:.2} s ({:.0}/s); drained in {:.2} s = {:.0} jobs/s",
            enqueue.as_secs_f64(),
            jobs as f64 / enqueue.as_secs_f64(),
            drained.as_secs_f64(),
            jobs as f64 / drained.as_secs_f64()
        );
        sqlx::query("TRUNCATE jobs").execute(&pool).await.unwrap();
    }

    // Latency: pools idle, jobs enqueued one at a time (each its own transaction).
    let runtimes = start_pools(&pool, &settings, 1);
    tokio::time::sleep(Duration::from_millis(500)).await; // let the listener and pool go idle
    let store = store(&pool, "producer", 9);
    let samples = 2_000;
    for _ in 0..samples {
        store
            .enqueue(NoopHandler::job(&Noop {}).unwrap())
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await; // a steady trickle, not a burst
    }
    wait_for_completed(&pool, samples).await;
    for runtime in runtimes {
        runtime.shutdown().await;
    }
    let (p50, p99): (f64, f64) = sqlx::query_as(
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms), percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)
           FROM (SELECT extract(epoch FROM started_at - created_at) * 1000 AS ms FROM jobs) t",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    println!("enqueue-to-start latency over {samples} jobs: p50 {p50:.2} ms, p99 {p99:.2} ms");

    pool.close().await;
    sqlx::query(AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut conn)
    .await
    .unwrap();
}

fn store(pool: &PgPool, node: &str, worker: u16) -> JobStore {
    JobStore::new(
        pool.clone(),
        Arc::new(Snowflake::new(worker).unwrap()),
        Arc::new(SystemClock),
        node,
        5,
    )
}

fn start_pools(
    pool: &PgPool,
    settings: &Arc<vrooli::config::JobsSettings>,
    n: u16,
) -> Vec<JobRuntime> {
    (0..n)
        .map(|i| {
            let exec = Executor::new(
                store(pool, &format!("pool-{i}"), i + 1),
                Registry::new().register(NoopHandler),
                Arc::clone(settings),
            );
            JobRuntime::start(Arc::new(exec), None, Duration::from_secs(10))
        })
        .collect()
}

async fn enqueue_bulk(pool: &PgPool, jobs: usize) {
    let store = store(pool, "producer", 9);
    let mut conn = pool.acquire().await.unwrap();
    let mut left = jobs;
    while left > 0 {
        let n = left.min(5_000);
        let batch = (0..n)
            .map(|_| NoopHandler::job(&Noop {}).unwrap())
            .collect();
        store.enqueue_many_in(&mut conn, batch).await.unwrap();
        left -= n;
    }
}

async fn wait_for_completed(pool: &PgPool, expected: i64) {
    loop {
        let done: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE state = 'completed'")
            .fetch_one(pool)
            .await
            .unwrap();
        if done >= expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
