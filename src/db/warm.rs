//! Connections handed from one hot read to the next without sqlx's release ping (issue 13).
//!
//! sqlx pings every connection on its way back to the pool (a Sync and its ReadyForQuery): a
//! round trip to PostgreSQL, and a wake-up of its backend, after every query. It does so because
//! a future dropped in the middle of a statement may have left answers unread. A connection
//! whose statement ran to completion has none: it is in the state the ping would confirm.
//!
//! Flow: [`Warm::acquire`] takes the connection most recently kept here, if it was kept less
//! than `database.ping_after_idle_ms` ago, or else one from the pool. The caller runs its
//! statement and calls [`WarmConnection::keep`] once it succeeded. Anything else (an error, a
//! cancelled future, a caller that forgets) drops the connection, and sqlx's own way back, with
//! its ping, takes over. At most `database.warm_connections` are kept; the rest go back to the
//! pool. A connection kept longer than `ping_after_idle_ms` goes back to the pool too (a sweeper
//! looks every `ping_after_idle_ms`, every 50 ms at most often), where it is pinged before its
//! next use like any connection idle that long, so an idle node holds none out of the pool.
//! [`Warm::close`] gives them all back before the pool is closed at shutdown.
//!
//! Kept connections count against the pool's size, so at most half the pool is kept
//! (`DatabaseSettings::warm_size`). Use it only for single statements outside transactions.

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::{PgPool, Postgres};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A connection is never handed out stale (`acquire` checks); the sweep only decides how soon
/// an idle node's kept connections are back in the pool.
const MIN_SWEEP_PERIOD: Duration = Duration::from_millis(50);

pub struct Warm {
    pool: PgPool,
    /// Newest last: the next read takes the one most recently proven alive.
    kept: Mutex<Vec<Kept>>,
    /// One per connection the hot reads may hold at once, handed out in turn (see `acquire`).
    permits: Arc<Semaphore>,
    capacity: usize,
    max_idle: Duration,
    acquire_timeout: Duration,
    /// The pool's `max_lifetime`: a connection handed on and on would never go back to the
    /// pool, where sqlx closes connections of that age, so it goes back once it has been out
    /// of the pool that long.
    max_lifetime: Option<Duration>,
}

struct Kept {
    at: Instant,
    /// When the pool last handed it out: given back once this is `max_lifetime` ago, it reaches
    /// sqlx's own check of its age at least that often.
    since: Instant,
    conn: PoolConnection<Postgres>,
}

/// A connection for one statement; [`WarmConnection::keep`] it after the statement succeeded.
pub struct WarmConnection<'a> {
    conn: PoolConnection<Postgres>,
    since: Instant,
    warm: &'a Warm,
    /// Released after the connection is kept (fields drop after `keep`'s body).
    _permit: Option<OwnedSemaphorePermit>,
}

impl Warm {
    /// Keeps up to `capacity` connections (0: none, every read goes through the pool), each for
    /// less than `max_idle`; a read waits at most `acquire_timeout` for its turn. Starts the
    /// sweeper that gives back the older ones.
    pub fn start(
        pool: PgPool,
        capacity: usize,
        max_idle: Duration,
        acquire_timeout: Duration,
    ) -> Arc<Self> {
        // `ping_after_idle_ms = 0` asks for a ping before every use: nothing may skip it.
        let capacity = if max_idle.is_zero() { 0 } else { capacity };
        let max_lifetime = pool.options().get_max_lifetime();
        let warm = Arc::new(Self {
            pool,
            kept: Mutex::new(Vec::with_capacity(capacity)),
            permits: Arc::new(Semaphore::new(capacity)),
            capacity,
            max_idle,
            acquire_timeout,
            max_lifetime,
        });
        if capacity > 0 {
            tokio::spawn(sweep(Arc::downgrade(&warm)));
        }
        warm
    }

    /// The most recently kept connection still fresh, or one from the pool.
    ///
    /// The hot reads take turns (a FIFO semaphore of `capacity` permits) before they look for a
    /// kept connection. Without turns, a read that found none waited in the pool's queue while
    /// the others' connections, kept here instead of going back to the pool, went to newer
    /// reads: under `page.sh` that made a p90 of 50–80 ms beside a p50 of 6 ms. With them, a
    /// read that holds a permit always finds a kept connection once `capacity` are open.
    pub async fn acquire(&self) -> Result<WarmConnection<'_>, sqlx::Error> {
        if self.capacity == 0 {
            let conn = self.pool.acquire().await?;
            return Ok(WarmConnection {
                conn,
                since: Instant::now(),
                warm: self,
                _permit: None,
            });
        }
        let permit = tokio::time::timeout(
            self.acquire_timeout,
            Arc::clone(&self.permits).acquire_owned(),
        )
        .await
        .map_err(|_| sqlx::Error::PoolTimedOut)?
        .map_err(|_| sqlx::Error::PoolClosed)?;
        let fresh = {
            let mut kept = self.lock();
            // Kept connections are in the order they were kept: if the newest is stale, all are.
            match kept.pop() {
                Some(fresh) if fresh.at.elapsed() < self.max_idle => Some(fresh),
                Some(stale) => {
                    kept.push(stale);
                    None
                }
                None => None,
            }
        };
        let (conn, since) = match fresh {
            Some(Kept { conn, since, .. }) => (conn, since),
            None => {
                self.give_back_stale();
                // Boxed: sqlx's acquire holds a whole connection attempt's state, which would
                // otherwise size every page read's future (see `AuthService::authenticate`).
                (Box::pin(self.pool.acquire()).await?, Instant::now())
            }
        };
        Ok(WarmConnection {
            conn,
            since,
            warm: self,
            _permit: Some(permit),
        })
    }

    /// How many connections are kept here now.
    pub fn kept(&self) -> usize {
        self.lock().len()
    }

    /// Gives every kept connection back to the pool (at shutdown, before the pool closes: a
    /// connection held out of it would keep `PgPool::close` waiting).
    pub fn close(&self) {
        self.permits.close();
        let all = std::mem::take(&mut *self.lock());
        drop(all);
    }

    /// Gives back the connections kept for `max_idle` or longer (outside the lock: dropping one
    /// starts sqlx's way back).
    fn give_back_stale(&self) {
        let stale: Vec<_> = {
            let mut kept = self.lock();
            let fresh_from = kept
                .iter()
                .position(|kept| kept.at.elapsed() < self.max_idle)
                .unwrap_or(kept.len());
            kept.drain(..fresh_from).collect()
        };
        drop(stale);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Kept>> {
        self.kept.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl WarmConnection<'_> {
    /// Keeps the connection for the next read: call only after its statement succeeded.
    pub fn keep(self) {
        let too_old = self
            .warm
            .max_lifetime
            .is_some_and(|max| self.since.elapsed() >= max);
        let mut kept = self.warm.lock();
        // Room for it unless the turns are off (capacity 0) or closed at shutdown.
        if kept.len() < self.warm.capacity && !self.warm.permits.is_closed() && !too_old {
            kept.push(Kept {
                at: Instant::now(),
                since: self.since,
                conn: self.conn,
            });
        }
        // Otherwise it is dropped after the lock is released, back to the pool; the permit
        // after that, so the next read finds it kept.
    }
}

impl std::ops::Deref for WarmConnection<'_> {
    type Target = sqlx::PgConnection;
    fn deref(&self) -> &Self::Target {
        &self.conn
    }
}

impl std::ops::DerefMut for WarmConnection<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.conn
    }
}

/// Every `max_idle` (every [`MIN_SWEEP_PERIOD`] at most often), gives back what was kept that
/// long; ends with the [`Warm`].
async fn sweep(warm: Weak<Warm>) {
    let Some(period) = warm.upgrade().map(|w| w.max_idle.max(MIN_SWEEP_PERIOD)) else {
        return;
    };
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(warm) = warm.upgrade() else { return };
        warm.give_back_stale();
    }
}
