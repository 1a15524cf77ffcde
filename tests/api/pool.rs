//! The database pool when PostgreSQL closes its connections (`db::connect`). sqlx pings a
//! connection on its way back to the pool; the node pings it again before handing it out only
//! when it sat idle for `database.ping_after_idle_ms` or longer, not on every hand-out.
//!
//! What this shows: connections PostgreSQL terminated while idle are not handed to a request.
//! It passes with the hand-out ping switched off too (tried; sqlx notices the terminated
//! connections by itself, how was not traced), so it guards the pool's behaviour, not the ping;
//! the ping is for a connection that broke some other way while it sat idle.
//!
//! `mod warm` covers `db::warm`, which hands a connection from one hot read to the next without
//! sqlx's release ping.

use crate::helpers::spawn_app_with;

#[tokio::test]
async fn connections_postgres_closed_while_idle_are_replaced_before_use() {
    let app = spawn_app_with(
        |s| {
            s.health.cache_ttl_ms = 0;
            // Every connection idle for a millisecond is pinged before it is handed out: all of
            // the node's have been idle at least as long as the terminating query below took.
            s.database.ping_after_idle_ms = 1;
        },
        None,
    )
    .await;
    assert_eq!(app.healthcheck().await.status, 200);

    // What a PostgreSQL restart or an idle-session timeout does to the node's pooled connections.
    let closed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE datname = $1 AND application_name = 'vrooli'",
    )
    .bind(&app.db.name)
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert!(!closed.is_empty(), "the node had no connection open");

    for _ in 0..3 {
        let reply = app.healthcheck().await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(
            reply.body["services"]["database"]["status"], "Operational",
            "{}",
            reply.body
        );
    }
}

/// `db::warm`: connections handed from one read to the next without sqlx's release ping. A
/// pool of its own on the test database, so the counts are only this test's.
mod warm {
    use std::sync::Arc;
    use std::time::Duration;

    use sqlx::postgres::PgPoolOptions;
    use vrooli::db::warm::Warm;

    use crate::helpers::{TestDb, test_settings};

    async fn pool(db: &TestDb, size: u32) -> sqlx::PgPool {
        PgPoolOptions::new()
            .max_connections(size)
            .connect(&db.url)
            .await
            .unwrap()
    }

    async fn backend(conn: &mut sqlx::PgConnection) -> i32 {
        sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(conn)
            .await
            .unwrap()
    }

    /// Keeps up to `capacity` connections, for longer than any of these tests lasts.
    fn kept_for_a_minute(pool: &sqlx::PgPool, capacity: usize) -> Arc<Warm> {
        Warm::start(
            pool.clone(),
            capacity,
            Duration::from_secs(60),
            Duration::from_secs(5),
        )
    }

    /// One read that succeeds and keeps its connection; the backend's pid.
    async fn read_and_keep(warm: &Warm) -> i32 {
        let mut conn = warm.acquire().await.unwrap();
        let pid = backend(&mut conn).await;
        conn.keep();
        pid
    }

    async fn finish(db: TestDb, pool: sqlx::PgPool, warm: &Warm) {
        warm.close();
        pool.close().await;
        db.drop_now().await;
    }

    #[tokio::test]
    async fn a_kept_connection_serves_the_next_read_and_is_out_of_the_pool_meanwhile() {
        let db = TestDb::new(&test_settings()).await;
        let pool = pool(&db, 4).await;
        let warm = kept_for_a_minute(&pool, 2);

        let pid = read_and_keep(&warm).await;
        assert_eq!(warm.kept(), 1);
        // Kept, not idle in the pool: no ping on its way back, because it never went back.
        assert_eq!(
            pool.num_idle(),
            0,
            "the kept connection went back to the pool"
        );

        let mut second = warm.acquire().await.unwrap();
        assert_eq!(warm.kept(), 0);
        assert_eq!(
            backend(&mut second).await,
            pid,
            "the next read got another connection"
        );
        second.keep();

        // Turns: with both permits held, a third read waits for one of them rather than taking
        // a third connection from the pool, then gets the connection kept first.
        let mut a = warm.acquire().await.unwrap();
        let mut b = warm.acquire().await.unwrap();
        let a_pid = backend(&mut a).await;
        backend(&mut b).await;
        let third = warm.acquire();
        tokio::pin!(third);
        assert!(
            tokio::time::timeout(Duration::from_millis(200), &mut third)
                .await
                .is_err(),
            "a third read went past the two turns"
        );
        a.keep();
        let mut c = third.await.unwrap();
        assert_eq!(
            backend(&mut c).await,
            a_pid,
            "the waiting read did not get the kept one"
        );
        assert_eq!(
            pool.size(),
            2,
            "the hot reads opened more than their two connections"
        );
        b.keep();
        c.keep();
        assert_eq!(warm.kept(), 2);

        // At shutdown every kept connection goes back, so closing the pool does not wait on them.
        warm.close();
        assert_eq!(warm.kept(), 0);
        tokio::time::timeout(Duration::from_secs(5), pool.close())
            .await
            .expect("the pool closed with connections still held out of it");
        db.drop_now().await;
    }

    #[tokio::test]
    async fn a_connection_whose_statement_was_cancelled_is_never_kept_and_the_pool_recovers_it() {
        let db = TestDb::new(&test_settings()).await;
        // One connection: the read after the cancelled one can only use the same connection.
        let pool = pool(&db, 1).await;
        let warm = kept_for_a_minute(&pool, 1);

        let mut conn = warm.acquire().await.unwrap();
        let pid = backend(&mut conn).await;
        // A statement whose future is dropped before its answer: the request gone mid-query.
        let cancelled = tokio::time::timeout(
            Duration::from_millis(100),
            sqlx::query("SELECT pg_sleep(0.5)").execute(&mut *conn),
        )
        .await;
        assert!(cancelled.is_err(), "the statement was meant to be cut off");
        drop(conn); // not kept: sqlx's way back, which waits for the statement's answer
        assert_eq!(warm.kept(), 0);

        // The next read gets the same connection from the pool, and its own answer, not the
        // cancelled statement's.
        let mut next = warm.acquire().await.unwrap();
        let answer: i32 = sqlx::query_scalar("SELECT 42")
            .fetch_one(&mut *next)
            .await
            .unwrap();
        assert_eq!(answer, 42);
        assert_eq!(backend(&mut next).await, pid);
        next.keep();
        finish(db, pool, &warm).await;
    }

    #[tokio::test]
    async fn a_connection_kept_past_the_idle_limit_goes_back_to_the_pool() {
        let db = TestDb::new(&test_settings()).await;
        let pool = pool(&db, 2).await;
        let idle = Duration::from_millis(100);
        let warm = Warm::start(pool.clone(), 1, idle, Duration::from_secs(5));

        read_and_keep(&warm).await;
        assert_eq!(warm.kept(), 1);
        // Nothing reads meanwhile: the sweeper gives it back to the pool by itself.
        crate::helpers::wait_until(
            Duration::from_secs(5),
            "the sweeper gave it back",
            || async { warm.kept() == 0 && pool.num_idle() == 1 },
        )
        .await;

        // And the pool hands it out again (pinged first, as any connection idle that long).
        read_and_keep(&warm).await;
        finish(db, pool, &warm).await;
    }

    #[tokio::test]
    async fn a_connection_handed_on_past_the_pools_max_lifetime_goes_back_to_be_closed() {
        let db = TestDb::new(&test_settings()).await;
        let lifetime = Duration::from_millis(300);
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .max_lifetime(lifetime)
            .connect(&db.url)
            .await
            .unwrap();
        let warm = kept_for_a_minute(&pool, 1);

        let pid = read_and_keep(&warm).await;
        let mut conn = warm.acquire().await.unwrap();
        assert_eq!(backend(&mut conn).await, pid);
        tokio::time::sleep(lifetime).await; // the connection's age, the condition under test
        conn.keep();
        assert_eq!(warm.kept(), 0, "a connection past its lifetime was kept");
        // Back in the pool, sqlx closes it for its age; the next read gets a new one.
        crate::helpers::wait_until(
            Duration::from_secs(5),
            "the old connection closed",
            || async { pool.size() == 0 },
        )
        .await;
        let mut next = warm.acquire().await.unwrap();
        assert_ne!(backend(&mut next).await, pid);
        next.keep();
        finish(db, pool, &warm).await;
    }
}
