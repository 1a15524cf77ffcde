//! The queue itself, driven step by step with `try_execute_one` and a manual clock.

use super::*;

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
