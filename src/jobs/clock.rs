//! Time for the queue. Every timestamp the queue writes (run_at, locks, backoff) comes from a
//! `Clock`, never from SQL `now()`, so tests can move time forward instead of sleeping.
//!
//! Nodes run on [`DatabaseClock`]: the local clock corrected by its measured offset from
//! PostgreSQL's, so every node reads the same time. A node whose own clock runs ahead would
//! otherwise see other nodes' locks expire early and rescue jobs still running (emails sent
//! twice).

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that moves only when told to.
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        Self(Mutex::new(start))
    }

    pub fn advance(&self, by: Duration) {
        let mut now = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *now += by;
    }

    pub fn set(&self, to: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The database's time without a round trip per reading: the local clock plus the offset to
/// PostgreSQL's `now()`, measured at start and every `resync` (the reading is taken halfway
/// through the query, so the error is about half a round trip plus what the local clock drifts
/// between two measurements).
pub struct DatabaseClock {
    offset_micros: AtomicI64,
    local: Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>,
}

impl DatabaseClock {
    /// Measures the offset once (start-up fails if PostgreSQL does not answer) and keeps it
    /// fresh from a background task while the clock is in use and the pool open.
    pub async fn start(pool: sqlx::PgPool, resync: StdDuration) -> Result<Arc<Self>, sqlx::Error> {
        Self::start_with(pool, resync, Arc::new(Utc::now)).await
    }

    /// [`Self::start`] with another local clock (tests give one that runs ahead).
    pub async fn start_with(
        pool: sqlx::PgPool,
        resync: StdDuration,
        local: Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>,
    ) -> Result<Arc<Self>, sqlx::Error> {
        let clock = Arc::new(Self {
            offset_micros: AtomicI64::new(0),
            local,
        });
        clock.sync(&pool).await?;
        let weak = Arc::downgrade(&clock);
        tokio::spawn(async move {
            loop {
                // Periodic by design: the offset drifts slowly; nothing signals a change.
                tokio::time::sleep(resync).await;
                let Some(clock) = weak.upgrade().filter(|_| !pool.is_closed()) else {
                    return;
                };
                if let Err(error) = clock.sync(&pool).await {
                    tracing::warn!(%error, "could not read the database clock; keeping the last offset");
                }
            }
        });
        Ok(clock)
    }

    async fn sync(&self, pool: &sqlx::PgPool) -> Result<(), sqlx::Error> {
        let before = (self.local)();
        let db: DateTime<Utc> = sqlx::query_scalar("SELECT clock_timestamp()")
            .fetch_one(pool)
            .await?;
        let after = (self.local)();
        let midpoint = before + (after - before) / 2;
        let offset = (db - midpoint).num_microseconds().unwrap_or(0);
        let previous = self.offset_micros.swap(offset, Ordering::Relaxed);
        if (offset - previous).abs() > 1_000_000 {
            tracing::info!(
                offset_ms = offset / 1000,
                "this node's clock differs from the database's"
            );
        }
        Ok(())
    }
}

impl Clock for DatabaseClock {
    fn now(&self) -> DateTime<Utc> {
        (self.local)() + Duration::microseconds(self.offset_micros.load(Ordering::Relaxed))
    }
}
