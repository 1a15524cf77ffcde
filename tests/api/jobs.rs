//! The job queue against the real PostgreSQL: transactional enqueue, priority, backoff driven by
//! a manual clock, dead letters, rescue of a dead worker's job, two pools never running one job
//! twice, the scheduler across three nodes, graceful hand-back, the admin API and health.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use vrooli::config::JobsSettings;
use vrooli::ids::Snowflake;
use vrooli::jobs::maintenance;
use vrooli::jobs::scheduler::Scheduler;
use vrooli::jobs::{
    Clock, Executor, JobContext, JobError, JobHandler, JobRuntime, JobStore, ManualClock, NewJob,
    Outcome, Queue, Registry, SystemClock,
};

use crate::helpers::{TestDb, spawn_app_with, test_settings, wait_until};

struct Harness {
    db: TestDb,
    settings: Arc<JobsSettings>,
    clock: Arc<ManualClock>,
}

impl Harness {
    async fn new() -> Self {
        let settings = test_settings();
        let db = TestDb::new(&settings).await;
        Self {
            db,
            settings: Arc::new(settings.jobs.clone()),
            clock: Arc::new(ManualClock::new(Utc::now())),
        }
    }

    fn store_with(&self, node: &str, worker: u16, clock: Arc<dyn Clock>) -> JobStore {
        JobStore::new(
            self.db.pool.clone(),
            Arc::new(Snowflake::new(worker).unwrap()),
            clock,
            node,
            self.settings.max_attempts,
        )
    }

    fn store(&self, node: &str, worker: u16) -> JobStore {
        self.store_with(node, worker, self.clock.clone())
    }

    fn executor(&self, store: JobStore, registry: Registry) -> Executor {
        Executor::new(store, registry, Arc::clone(&self.settings))
    }

    async fn state_of(&self, id: vrooli::jobs::JobId) -> (String, i32, Option<String>) {
        sqlx::query_as("SELECT state, attempt, last_error FROM jobs WHERE id = $1")
            .bind(id)
            .fetch_one(&self.db.pool)
            .await
            .unwrap()
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Numbered {
    n: u64,
}

/// Records the payload number of every run.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<u64>>>);

impl JobHandler for Recorder {
    const KIND: &'static str = "test.record";
    const QUEUE: Queue = Queue::NotificationCreate;
    type Payload = Numbered;

    async fn handle(&self, payload: Numbered, _: JobContext) -> Result<(), JobError> {
        self.0.lock().unwrap().push(payload.n);
        Ok(())
    }
}

impl Recorder {
    fn runs(&self) -> Vec<u64> {
        self.0.lock().unwrap().clone()
    }
}

/// Fails every attempt, retryably.
struct Flaky;

impl JobHandler for Flaky {
    const KIND: &'static str = "test.flaky";
    const QUEUE: Queue = Queue::NotificationCreate;
    type Payload = Numbered;

    async fn handle(&self, _: Numbered, ctx: JobContext) -> Result<(), JobError> {
        Err(JobError::retryable(format!(
            "provider unavailable (attempt {})",
            ctx.attempt
        )))
    }
}

fn numbered(n: u64) -> NewJob {
    Recorder::job(&Numbered { n }).unwrap()
}

#[tokio::test]
async fn enqueue_is_transactional() {
    let h = Harness::new().await;
    let store = h.store("a", 1);
    let mut tx = h.db.pool.begin().await.unwrap();
    store
        .enqueue_in(&mut tx, numbered(1))
        .await
        .unwrap()
        .expect("inserted");
    tx.rollback().await.unwrap();
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs")
        .fetch_one(&h.db.pool)
        .await
        .unwrap();
    assert_eq!(count, 0, "a rolled-back transaction leaves no job");

    let mut tx = h.db.pool.begin().await.unwrap();
    store
        .enqueue_in(&mut tx, numbered(2))
        .await
        .unwrap()
        .expect("inserted");
    tx.commit().await.unwrap();
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs")
        .fetch_one(&h.db.pool)
        .await
        .unwrap();
    assert_eq!(count, 1);
}

#[tokio::test]
async fn unique_keys_deduplicate_and_cancel_stops_a_pending_job() {
    let h = Harness::new().await;
    let store = h.store("a", 1);
    let first = store
        .enqueue(numbered(1).unique_key("welcome:42"))
        .await
        .unwrap();
    let second = store
        .enqueue(numbered(2).unique_key("welcome:42"))
        .await
        .unwrap();
    assert!(first.is_some());
    assert_eq!(second, None);

    let id = store.enqueue(numbered(3)).await.unwrap().unwrap();
    assert!(store.cancel(id).await.unwrap());
    assert!(!store.cancel(id).await.unwrap(), "already cancelled");
    let recorder = Recorder::default();
    let exec = h.executor(store, Registry::new().register(recorder.clone()));
    while exec
        .try_execute_one(Queue::NotificationCreate)
        .await
        .unwrap()
        .is_some()
    {}
    assert_eq!(recorder.runs(), vec![1], "the cancelled job never ran");
}

#[tokio::test]
async fn lower_priority_runs_first_then_oldest() {
    let h = Harness::new().await;
    let store = h.store("a", 1);
    let now = h.clock.now();
    let jobs = vec![
        numbered(1).priority(300),
        numbered(2)
            .priority(100)
            .run_at(now - chrono::Duration::seconds(1)),
        numbered(3)
            .priority(100)
            .run_at(now - chrono::Duration::seconds(5)),
        numbered(4).priority(86),
        numbered(5)
            .priority(100)
            .run_at(now + chrono::Duration::seconds(60)), // delayed
    ];
    let mut conn = h.db.pool.acquire().await.unwrap();
    store.enqueue_many_in(&mut conn, jobs).await.unwrap();
    let recorder = Recorder::default();
    let exec = h.executor(store, Registry::new().register(recorder.clone()));
    while exec
        .try_execute_one(Queue::NotificationCreate)
        .await
        .unwrap()
        .is_some()
    {}
    assert_eq!(
        recorder.runs(),
        vec![4, 3, 2, 1],
        "the delayed job is not due yet"
    );
    h.clock.advance(chrono::Duration::seconds(61));
    assert!(
        exec.try_execute_one(Queue::NotificationCreate)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(recorder.runs(), vec![4, 3, 2, 1, 5]);
}

#[tokio::test]
async fn retries_back_off_exponentially_then_the_job_is_dead() {
    let h = Harness::new().await;
    let store = h.store("a", 1);
    let id = store
        .enqueue(Flaky::job(&Numbered { n: 1 }).unwrap().max_attempts(3))
        .await
        .unwrap()
        .unwrap();
    let exec = h.executor(store, Registry::new().register(Flaky));
    let run_at = || async {
        sqlx::query_scalar::<_, chrono::DateTime<Utc>>("SELECT run_at FROM jobs WHERE id = $1")
            .bind(id)
            .fetch_one(&h.db.pool)
            .await
            .unwrap()
    };

    // Attempt 1 fails: retry in 5-10 s (base 10 s, equal jitter).
    assert_eq!(
        exec.try_execute_one(Queue::NotificationCreate)
            .await
            .unwrap(),
        Some(Outcome::Retrying(id))
    );
    let delay = (run_at().await - h.clock.now()).num_milliseconds();
    assert!((5_000..=10_000).contains(&delay), "first delay {delay} ms");
    assert_eq!(
        exec.try_execute_one(Queue::NotificationCreate)
            .await
            .unwrap(),
        None,
        "not due yet"
    );

    // Attempt 2 fails: retry in 10-20 s.
    h.clock.advance(chrono::Duration::seconds(10));
    assert_eq!(
        exec.try_execute_one(Queue::NotificationCreate)
            .await
            .unwrap(),
        Some(Outcome::Retrying(id))
    );
    let delay = (run_at().await - h.clock.now()).num_milliseconds();
    assert!(
        (10_000..=20_000).contains(&delay),
        "second delay {delay} ms"
    );

    // Attempt 3 is the last: dead, with the reason kept.
    h.clock.advance(chrono::Duration::seconds(20));
    assert_eq!(
        exec.try_execute_one(Queue::NotificationCreate)
            .await
            .unwrap(),
        Some(Outcome::Dead(id))
    );
    let (state, attempt, error) = h.state_of(id).await;
    assert_eq!((state.as_str(), attempt), ("dead", 3));
    assert_eq!(error.as_deref(), Some("provider unavailable (attempt 3)"));
    h.clock.advance(chrono::Duration::hours(2));
    assert_eq!(
        exec.try_execute_one(Queue::NotificationCreate)
            .await
            .unwrap(),
        None,
        "dead jobs stay dead"
    );
}

#[tokio::test]
async fn unknown_kinds_and_bad_payloads_are_dead_at_once() {
    let h = Harness::new().await;
    let store = h.store("a", 1);
    let unknown = store
        .enqueue(NewJob::new(
            Queue::NotificationCreate,
            "test.nobody",
            serde_json::json!({}),
        ))
        .await
        .unwrap()
        .unwrap();
    let bad = store
        .enqueue(
            NewJob::new(
                Queue::NotificationCreate,
                Recorder::KIND,
                serde_json::json!({"n": "not a number"}),
            )
            .priority(1),
        )
        .await
        .unwrap()
        .unwrap();
    let exec = h.executor(store, Registry::new().register(Recorder::default()));
    assert_eq!(
        exec.try_execute_one(Queue::NotificationCreate)
            .await
            .unwrap(),
        Some(Outcome::Dead(bad))
    );
    assert_eq!(
        exec.try_execute_one(Queue::NotificationCreate)
            .await
            .unwrap(),
        Some(Outcome::Dead(unknown))
    );
    let (state, attempt, error) = h.state_of(bad).await;
    assert_eq!((state.as_str(), attempt), ("dead", 1));
    assert!(error.unwrap().contains("does not decode"));
    assert!(
        h.state_of(unknown)
            .await
            .2
            .unwrap()
            .contains("no handler for job kind test.nobody")
    );
}

#[tokio::test]
async fn a_job_whose_worker_died_is_rescued_and_completes_exactly_once_more() {
    let h = Harness::new().await;
    let node_a = h.store("node-a", 1);
    let node_b = h.store("node-b", 2);
    let id = node_a.enqueue(numbered(7)).await.unwrap().unwrap();

    // Node A claims the job, then dies mid-job: it never completes, never heartbeats.
    let claimed = node_a
        .claim(Queue::NotificationCreate, 10, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let recorder = Recorder::default();
    let exec_b = h.executor(node_b.clone(), Registry::new().register(recorder.clone()));
    assert_eq!(
        exec_b
            .try_execute_one(Queue::NotificationCreate)
            .await
            .unwrap(),
        None,
        "locked by A"
    );
    assert_eq!(
        node_b.rescue_expired().await.unwrap(),
        0,
        "A's lock is still valid"
    );

    // A's lock expires; any node's sweep puts the job back; B runs it.
    h.clock.advance(chrono::Duration::seconds(61));
    assert_eq!(node_b.rescue_expired().await.unwrap(), 1);
    assert_eq!(
        exec_b
            .try_execute_one(Queue::NotificationCreate)
            .await
            .unwrap(),
        Some(Outcome::Completed(id))
    );
    assert_eq!(recorder.runs(), vec![7]);

    // If A was only stalled and now reports success, it is ignored: the job completed once.
    assert_eq!(
        node_a.complete(&[(id, claimed[0].attempt)]).await.unwrap(),
        0
    );
    let (state, attempt, _) = h.state_of(id).await;
    assert_eq!((state.as_str(), attempt), ("completed", 2));
}

/// Counts runs per payload number, across pools.
#[derive(Clone, Default)]
struct Counter(Arc<Mutex<HashMap<u64, u32>>>);

impl JobHandler for Counter {
    const KIND: &'static str = "test.count";
    const QUEUE: Queue = Queue::RunStart;
    type Payload = Numbered;

    async fn handle(&self, payload: Numbered, _: JobContext) -> Result<(), JobError> {
        *self.0.lock().unwrap().entry(payload.n).or_default() += 1;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_worker_pools_never_run_one_job_twice() {
    const JOBS: u64 = 10_000;
    let h = Harness::new().await;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let counter = Counter::default();
    let runtimes: Vec<JobRuntime> = [("pool-a", 1), ("pool-b", 2)]
        .into_iter()
        .map(|(node, worker)| {
            let exec = h.executor(
                h.store_with(node, worker, clock.clone()),
                Registry::new().register(counter.clone()),
            );
            JobRuntime::start(Arc::new(exec), None, Duration::from_secs(5))
        })
        .collect();

    let store = h.store_with("producer", 3, clock.clone());
    let mut conn = h.db.pool.acquire().await.unwrap();
    for chunk in (0..JOBS).collect::<Vec<_>>().chunks(1000) {
        let jobs = chunk
            .iter()
            .map(|n| Counter::job(&Numbered { n: *n }).unwrap())
            .collect();
        store.enqueue_many_in(&mut conn, jobs).await.unwrap();
    }
    drop(conn);

    wait_until(Duration::from_secs(120), "all jobs completed", || async {
        let done: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE state = 'completed'")
            .fetch_one(&h.db.pool)
            .await
            .unwrap();
        done == JOBS as i64
    })
    .await;
    for runtime in runtimes {
        runtime.shutdown().await;
    }

    let counts = counter.0.lock().unwrap().clone();
    assert_eq!(counts.len() as u64, JOBS, "every job ran");
    assert!(counts.values().all(|&c| c == 1), "no job ran twice");
}

#[tokio::test]
async fn a_scheduled_tick_runs_once_with_three_schedulers_up() {
    let h = Harness::new().await;
    let schedulers: Vec<Scheduler> = (1..=3)
        .map(|n| Scheduler::new(h.store(&format!("node-{n}"), n), maintenance::schedules()))
        .collect();
    let schedules = maintenance::schedules().len();
    let mut inserted = 0;
    for scheduler in &schedulers {
        inserted += scheduler.tick().await.unwrap();
    }
    assert_eq!(inserted, schedules, "one job per schedule for this tick");
    for scheduler in &schedulers {
        assert_eq!(
            scheduler.tick().await.unwrap(),
            0,
            "ticking again in the same hour adds nothing"
        );
    }
    h.clock.advance(chrono::Duration::hours(1));
    let mut inserted = 0;
    for scheduler in schedulers.iter().rev() {
        inserted += scheduler.tick().await.unwrap();
    }
    assert_eq!(inserted, schedules, "the next tick runs once too");
    let per_kind: Vec<(String, i64)> =
        sqlx::query_as("SELECT kind, count(*) FROM jobs GROUP BY kind ORDER BY kind")
            .fetch_all(&h.db.pool)
            .await
            .unwrap();
    assert_eq!(
        per_kind,
        vec![
            ("maintenance.cleanup-sessions".to_string(), 2),
            ("maintenance.prune-jobs".to_string(), 2)
        ]
    );
}

#[tokio::test]
async fn maintenance_jobs_prune_old_jobs_and_dead_sessions() {
    let h = Harness::new().await;
    let store = h.store("a", 1);
    let old = store.enqueue(numbered(1)).await.unwrap().unwrap();
    let recorder = Recorder::default();
    let exec = h.executor(
        store.clone(),
        Registry::new()
            .register(recorder.clone())
            .register(maintenance::PruneJobs {
                store: store.clone(),
                retention: Duration::from_secs(24 * 3600),
            })
            .register(maintenance::CleanupSessions {
                store: store.clone(),
            }),
    );
    exec.try_execute_one(Queue::NotificationCreate)
        .await
        .unwrap();

    // A day and an hour later: the job above is past retention.
    h.clock.advance(chrono::Duration::hours(25));
    let now = h.clock.now();
    let user = 1i64;
    sqlx::query("INSERT INTO users (id, public_id, name) VALUES ($1, 'abcdefghijkl', 'Sam')")
        .bind(user)
        .execute(&h.db.pool)
        .await
        .unwrap();
    for (id, expires, revoked) in [
        (1i64, now + chrono::Duration::days(1), None), // live
        (2, now - chrono::Duration::minutes(1), None), // expired
        (
            3,
            now + chrono::Duration::days(1),
            Some(now - chrono::Duration::days(2)),
        ), // revoked long ago
        (
            4,
            now + chrono::Duration::days(1),
            Some(now - chrono::Duration::hours(1)),
        ), // revoked lately
    ] {
        sqlx::query(
            "INSERT INTO sessions (id, user_id, expires_at, revoked_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(id)
        .bind(user)
        .bind(expires)
        .bind(revoked)
        .execute(&h.db.pool)
        .await
        .unwrap();
    }
    let mut conn = h.db.pool.acquire().await.unwrap();
    for schedule in maintenance::schedules() {
        store
            .enqueue_in(&mut conn, (schedule.make)())
            .await
            .unwrap();
    }
    drop(conn);
    while exec
        .try_execute_one(Queue::Maintenance)
        .await
        .unwrap()
        .is_some()
    {}

    let old_left: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE id = $1")
        .bind(old)
        .fetch_one(&h.db.pool)
        .await
        .unwrap();
    assert_eq!(old_left, 0, "completed more than 24 h ago: pruned");
    let maintenance_done: i64 =
        sqlx::query_scalar("SELECT count(*) FROM jobs WHERE state = 'completed'")
            .fetch_one(&h.db.pool)
            .await
            .unwrap();
    assert_eq!(maintenance_done, 2, "recent jobs are kept");
    let sessions: Vec<i64> = sqlx::query_scalar("SELECT id FROM sessions ORDER BY id")
        .fetch_all(&h.db.pool)
        .await
        .unwrap();
    assert_eq!(sessions, vec![1, 4]);
}

/// Runs until released.
#[derive(Clone)]
struct Blocking {
    started: Arc<Notify>,
    release: Arc<Notify>,
}

impl JobHandler for Blocking {
    const KIND: &'static str = "test.block";
    const QUEUE: Queue = Queue::ExportUserData;
    type Payload = Numbered;

    async fn handle(&self, _: Numbered, _: JobContext) -> Result<(), JobError> {
        self.started.notify_one();
        self.release.notified().await;
        Ok(())
    }
}

#[tokio::test]
async fn shutdown_hands_unfinished_jobs_back_at_the_deadline() {
    let h = Harness::new().await;
    let store = h.store_with("node-a", 1, Arc::new(SystemClock));
    let handler = Blocking {
        started: Arc::new(Notify::new()),
        release: Arc::new(Notify::new()),
    };
    let id = store
        .enqueue(Blocking::job(&Numbered { n: 1 }).unwrap())
        .await
        .unwrap()
        .unwrap();
    let exec = h.executor(store, Registry::new().register(handler.clone()));
    let runtime = JobRuntime::start(Arc::new(exec), None, Duration::from_millis(300));
    tokio::time::timeout(Duration::from_secs(10), handler.started.notified())
        .await
        .expect("job started");

    runtime.shutdown().await;
    let (state, attempt, _) = h.state_of(id).await;
    assert_eq!(
        (state.as_str(), attempt),
        ("available", 0),
        "handed back as if never started"
    );
}

#[tokio::test]
async fn shutdown_lets_jobs_that_finish_in_time_complete() {
    let h = Harness::new().await;
    let store = h.store_with("node-a", 1, Arc::new(SystemClock));
    let handler = Blocking {
        started: Arc::new(Notify::new()),
        release: Arc::new(Notify::new()),
    };
    let id = store
        .enqueue(Blocking::job(&Numbered { n: 1 }).unwrap())
        .await
        .unwrap()
        .unwrap();
    let exec = h.executor(store, Registry::new().register(handler.clone()));
    let runtime = JobRuntime::start(Arc::new(exec), None, Duration::from_secs(10));
    tokio::time::timeout(Duration::from_secs(10), handler.started.notified())
        .await
        .expect("job started");
    let stopping = tokio::spawn(runtime.shutdown());
    handler.release.notify_one();
    tokio::time::timeout(Duration::from_secs(10), stopping)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(h.state_of(id).await.0, "completed");
}

#[tokio::test]
async fn notify_wakes_an_idle_pool_without_waiting_for_the_poll() {
    let mut h = Harness::new().await;
    let mut settings = (*h.settings).clone();
    settings.poll_interval_ms = 600_000; // only NOTIFY can wake the pool in time
    h.settings = Arc::new(settings);
    let recorder = Recorder::default();
    let exec = h.executor(
        h.store_with("node-a", 1, Arc::new(SystemClock)),
        Registry::new().register(recorder.clone()),
    );
    let runtime = JobRuntime::start(Arc::new(exec), None, Duration::from_secs(5));
    // Let the pool reach its idle wait (its first claim finds nothing), then enqueue elsewhere.
    let store = h.store_with("producer", 2, Arc::new(SystemClock));
    wait_until(Duration::from_secs(10), "the listener to be up", || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'LISTEN%' AND datname = current_database()")
            .fetch_one(&h.db.pool)
            .await
            .unwrap()
            > 0
    })
    .await;
    store.enqueue(numbered(9)).await.unwrap();
    wait_until(Duration::from_secs(10), "the job to run", || async {
        recorder.runs() == vec![9]
    })
    .await;
    runtime.shutdown().await;
}

#[tokio::test]
async fn admin_routes_list_retry_and_discard_dead_jobs() {
    let app = spawn_app_with(
        |s| s.admin.system_key = "s3cret-system-key".to_string().into(),
        None,
    )
    .await;
    let key = "s3cret-system-key";
    let jobs = JobStore::new(
        app.db.pool.clone(),
        Arc::new(Snowflake::new(99).unwrap()),
        Arc::new(SystemClock),
        "admin-test",
        5,
    );
    // A job nobody handles dies on its first attempt.
    let id = jobs
        .enqueue(NewJob::new(
            Queue::ImportUserData,
            "test.nobody",
            serde_json::json!({}),
        ))
        .await
        .unwrap()
        .unwrap();
    let exec = Executor::new(
        jobs.clone(),
        Registry::new(),
        Arc::new(app.settings.jobs.clone()),
    );
    assert_eq!(
        exec.try_execute_one(Queue::ImportUserData).await.unwrap(),
        Some(Outcome::Dead(id))
    );

    let get = |path: &str| {
        app.client
            .get(app.url(path))
            .header("x-api-key", key)
            .send()
    };
    let body: serde_json::Value = get("/api/v2/admin/queues")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let email = body["data"]["queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["queue"] == "import-user-data")
        .unwrap();
    assert_eq!(email["counts"]["dead"], 1, "{body}");

    let page: serde_json::Value = get("/api/v2/admin/jobs/dead?queue=import-user-data&take=10")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let edges = page["data"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 1, "{page}");
    assert_eq!(edges[0]["node"]["id"], id.to_string());
    assert!(
        edges[0]["node"]["lastError"]
            .as_str()
            .unwrap()
            .contains("no handler")
    );
    assert_eq!(page["data"]["pageInfo"]["hasNextPage"], false);

    // Health reports the dead job, but the node keeps serving.
    let (status, health) = app.healthcheck().await;
    assert_eq!(status, 200);
    assert_eq!(
        health["services"]["queues"]["status"], "Degraded",
        "{health}"
    );

    let retry = |id: String| {
        app.client
            .post(app.url(&format!("/api/v2/admin/jobs/{id}/retry")))
            .bearer_auth(key)
            .send()
    };
    assert_eq!(retry(id.to_string()).await.unwrap().status(), 200);
    assert_eq!(
        retry(id.to_string()).await.unwrap().status(),
        404,
        "no longer dead"
    );
    let (state, attempt): (String, i32) =
        sqlx::query_as("SELECT state, attempt FROM jobs WHERE id = $1")
            .bind(id)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!((state.as_str(), attempt), ("available", 0));

    exec.try_execute_one(Queue::ImportUserData).await.unwrap();
    let discard = app
        .client
        .delete(app.url(&format!("/api/v2/admin/jobs/{id}")))
        .header("x-api-key", key)
        .send()
        .await
        .unwrap();
    assert_eq!(discard.status(), 200);
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(left, 0);

    // Bad input and missing or wrong keys.
    assert_eq!(
        get("/api/v2/admin/jobs/dead?take=101")
            .await
            .unwrap()
            .status(),
        400
    );
    assert_eq!(
        get("/api/v2/admin/jobs/dead?queue=nope")
            .await
            .unwrap()
            .status(),
        400
    );
    assert_eq!(retry("abc".into()).await.unwrap().status(), 400);
    assert_eq!(app.get("/api/v2/admin/queues").await.status(), 401);
    let wrong = app
        .client
        .get(app.url("/api/v2/admin/queues"))
        .header("x-api-key", "guess")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
}

#[tokio::test]
async fn admin_routes_are_closed_without_a_system_key() {
    let app = spawn_app_with(|_| {}, None).await;
    let response = app
        .client
        .get(app.url("/api/v2/admin/queues"))
        .header("x-api-key", "")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "AdminDisabled");
}

/// Panics on every attempt.
struct Panicky;

impl JobHandler for Panicky {
    const KIND: &'static str = "test.panic";
    const QUEUE: Queue = Queue::NotificationCreate;
    type Payload = Numbered;

    async fn handle(&self, payload: Numbered, _: JobContext) -> Result<(), JobError> {
        panic!("bug in handler for {}", payload.n);
    }
}

#[tokio::test]
async fn a_panicking_handler_fails_the_attempt_instead_of_sticking() {
    let h = Harness::new().await;
    let store = h.store("a", 1);
    let id = store
        .enqueue(Panicky::job(&Numbered { n: 5 }).unwrap())
        .await
        .unwrap()
        .unwrap();
    let exec = h.executor(store, Registry::new().register(Panicky));
    assert_eq!(
        exec.try_execute_one(Queue::NotificationCreate)
            .await
            .unwrap(),
        Some(Outcome::Retrying(id))
    );
    let (state, _, error) = h.state_of(id).await;
    assert_eq!(state, "retrying");
    assert_eq!(
        error.as_deref(),
        Some("handler panicked: bug in handler for 5")
    );
}
