//! Worker pools, the scheduler and shutdown, running as they do in a node.

use super::*;

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
            ("maintenance.prune-jobs".to_string(), 2),
            ("maintenance.purge-deleted-accounts".to_string(), 2)
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

/// A pool running one `Blocking` job, started; shutdown waits `drain` for it.
async fn start_blocking_job(
    drain: Duration,
) -> (Harness, Blocking, vrooli::jobs::JobId, JobRuntime) {
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
    let runtime = JobRuntime::start(Arc::new(exec), None, drain);
    tokio::time::timeout(Duration::from_secs(10), handler.started.notified())
        .await
        .expect("job started");
    (h, handler, id, runtime)
}

#[tokio::test]
async fn shutdown_hands_unfinished_jobs_back_at_the_deadline() {
    let (h, _handler, id, runtime) = start_blocking_job(Duration::from_millis(300)).await;

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
    let (h, handler, id, runtime) = start_blocking_job(Duration::from_secs(10)).await;
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
async fn a_node_whose_clock_runs_ahead_does_not_rescue_jobs_still_running() {
    let (h, handler, id, runtime) = start_blocking_job(Duration::from_secs(5)).await;
    // Node B's own clock is an hour ahead; read on the database's clock it agrees with node A.
    let ahead = Arc::new(|| chrono::Utc::now() + chrono::Duration::hours(1));
    let clock =
        vrooli::jobs::DatabaseClock::start_with(h.db.pool.clone(), Duration::from_secs(30), ahead)
            .await
            .unwrap();
    let skew = (clock.now() - chrono::Utc::now()).num_milliseconds().abs();
    assert!(
        skew < 1000,
        "the database's time, not the local one: {skew} ms off"
    );
    let node_b = h.store_with("node-b", 2, clock);
    assert_eq!(node_b.rescue_expired().await.unwrap(), 0);
    assert_eq!(h.state_of(id).await.0, "running");

    // The same node reading its own clock would have taken the job from node A.
    let naive = h.store_with(
        "node-b",
        2,
        Arc::new(vrooli::jobs::ManualClock::new(
            chrono::Utc::now() + chrono::Duration::hours(1),
        )),
    );
    assert_eq!(
        naive.rescue_expired().await.unwrap(),
        1,
        "the defect this guards against"
    );
    handler.release.notify_one();
    runtime.shutdown().await;
}
