//! The transactional outbox: a write's events are rows in the write's own transaction, and a
//! relay publishes them to the rooms afterwards — in order, each once, even when Redis stalls or
//! the node dies between the commit and the publish.
//!
//! ```text
//! write ─▶ tx: rows … + add_in(outbox_events row per event) ─▶ commit ─▶ kick(room)
//! kick ─▶ this node's relay for the room (one task per room and node; kicks while it runs
//!         only ask it to look again)
//!   relay ─▶ tx: pg_advisory_xact_lock(room) (one relay per room across the cluster)
//!          ─▶ DELETE the oldest rows of the room … RETURNING ─▶ hub.publish_all in order
//!             (one Redis round trip for the batch; idempotent by event id: a publish retried
//!             after a timeout, or repeated after a crash or a rollback, is dropped by the
//!             broker) ─▶ commit
//!          ─▶ broker failing: roll back (the rows return), retry with backoff; an event older
//!             than the history window is given up as a gap (its offset consumed: members get
//!             room/gap)
//! sweeper (every node, every ws.outbox_sweep_interval_ms) ─▶ rooms with rows older than that
//!          ─▶ kick (a dead node's events are published by the living)
//! ```
//!
//! Volatile events (streamed chunks, typing) do not come here: losing one is allowed. A sender
//! whose volatile events must follow its last outboxed one (a bot's chunks after the message
//! they answer) uses `publish_then_wait`, or `wait_relayed` (a run's llm step after its
//! `step/started`): they return once those rows have been relayed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use dashmap::DashMap;
use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use vrooli_actors::{BrokerError, Hub, NewEvent, RoomKey};

/// What the relay needs from `[ws]`.
#[derive(Debug, Clone, Copy)]
pub struct OutboxSettings {
    /// Rows published per relay transaction.
    pub batch: i64,
    /// How often each node looks for rows nobody relayed (a dead node's, a failed relay's).
    pub sweep_interval: Duration,
    /// Events older than this are no longer in any member's reach through the history: they
    /// are given up as gaps.
    pub history_max_age: Duration,
    /// Relays running at once on this node.
    pub relays: usize,
    /// How long [`Outbox::publish_then_wait`] waits for its event to be relayed.
    pub order_wait: Duration,
}

#[derive(Clone)]
pub struct Outbox {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    hub: Hub,
    settings: OutboxSettings,
    /// Rooms this node is relaying, and whether it was kicked again meanwhile.
    running: DashMap<String, bool>,
    /// Relays holding a database transaction at once (each holds one while it waits on the
    /// broker, so a stalled Redis must not take the whole pool).
    permits: tokio::sync::Semaphore,
    /// Serialises the sweeper's startup (one sweeper task per outbox).
    sweeper: Mutex<bool>,
}

/// A row of `outbox_events`.
#[derive(sqlx::FromRow)]
struct Row {
    seq: i64,
    event_id: String,
    event_type: String,
    data: sqlx::types::Json<Value>,
    timestamp_ms: i64,
    created_ms: i64,
}

impl Outbox {
    pub fn new(pool: PgPool, hub: Hub, settings: OutboxSettings) -> Self {
        Self {
            inner: Arc::new(Inner {
                pool,
                hub,
                settings,
                running: DashMap::new(),
                permits: tokio::sync::Semaphore::new(settings.relays.max(1)),
                sweeper: Mutex::new(false),
            }),
        }
    }

    /// Adds `event` to the caller's transaction: it is published once the transaction commits
    /// (and the caller, or the sweeper, kicks its room) — or never, if it rolls back.
    pub async fn add_in(conn: &mut PgConnection, event: &NewEvent) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO outbox_events (room, event_id, event_type, data, timestamp_ms)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(event.room.to_string())
        .bind(&event.id)
        .bind(&event.event_type)
        .bind(sqlx::types::Json(&event.data))
        .bind(event.timestamp_ms)
        .execute(conn)
        .await
        .map(drop)
    }

    /// An event not tied to a write of its own: stored, then relayed. If even storing fails
    /// (the database is down), it is published directly, as before the outbox.
    pub async fn publish(&self, event: NewEvent) {
        let stored = match self.inner.pool.acquire().await {
            Ok(mut conn) => Self::add_in(&mut conn, &event).await,
            Err(error) => Err(error),
        };
        match stored {
            Ok(()) => self.kick(&event.room),
            Err(error) => {
                tracing::warn!(%error, room = %event.room, "outbox unavailable; publishing directly");
                if let Err(error) = self.inner.hub.publish(&event).await {
                    tracing::error!(%error, room = %event.room, event_id = %event.id, "event lost: neither stored nor published");
                }
            }
        }
    }

    /// [`Outbox::publish`], then waits (at most `ws.outbox_order_wait_ms`) until the event has
    /// been relayed to the broker. Rows of a room are relayed in commit order, so every event
    /// committed before it has gone too: what the caller sends next without the outbox (a bot's
    /// streamed chunks) follows them instead of overtaking them. Past the wait, or when the
    /// database cannot tell, it returns anyway: the wait orders, it guarantees nothing more.
    pub async fn publish_then_wait(&self, event: NewEvent) {
        let room = event.room.clone();
        self.publish(event).await;
        self.wait_relayed(&room).await;
    }

    /// Waits (at most `ws.outbox_order_wait_ms`) until every row `room` has in the outbox now
    /// has been relayed: for a sender of volatile events that must not overtake events already
    /// committed (a run's llm step streams after its `step/started`).
    pub async fn wait_relayed(&self, room: &RoomKey) {
        let room = room.to_string();
        let pool = &self.inner.pool;
        let last: Result<Option<i64>, _> =
            sqlx::query_scalar("SELECT max(seq) FROM outbox_events WHERE room = $1")
                .bind(&room)
                .fetch_one(pool)
                .await;
        let Ok(Some(last)) = last else {
            return;
        };
        let deadline = tokio::time::Instant::now() + self.inner.settings.order_wait;
        loop {
            // The relay deletes rows and commits only after the broker has their events.
            let waiting: Result<bool, _> = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM outbox_events WHERE room = $1 AND seq <= $2)",
            )
            .bind(&room)
            .bind(last)
            .fetch_one(pool)
            .await;
            if !matches!(waiting, Ok(true)) || tokio::time::Instant::now() >= deadline {
                return;
            }
            // A relay on this node takes a millisecond or two; a poll costs one small query.
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Publishes what `room` has waiting, on a task of its own.
    pub fn kick(&self, room: &RoomKey) {
        use dashmap::mapref::entry::Entry;
        let room = room.to_string();
        match self.inner.running.entry(room.clone()) {
            // Already relaying it here: ask that relay to look once more before it stops.
            Entry::Occupied(mut running) => {
                *running.get_mut() = true;
                return;
            }
            Entry::Vacant(vacant) => {
                vacant.insert(false);
            }
        }
        let inner = Arc::clone(&self.inner);
        let span = tracing::info_span!("outbox_relay", room = %room);
        tokio::spawn(tracing::Instrument::instrument(
            async move { inner.relay_until_empty(room).await },
            span,
        ));
    }

    /// Starts this node's sweeper (once); it ends when the pool closes.
    pub fn start_sweeper(&self) {
        let mut started = self.inner.sweeper.lock().unwrap_or_else(|p| p.into_inner());
        if *started {
            return;
        }
        *started = true;
        let outbox = Arc::downgrade(&self.inner);
        let interval = self.inner.settings.sweep_interval;
        tokio::spawn(async move {
            loop {
                // Periodic by design: a dead node's rows announce nothing; only a look finds them.
                tokio::time::sleep(interval).await;
                let Some(inner) = outbox.upgrade().filter(|i| !i.pool.is_closed()) else {
                    return;
                };
                let outbox = Outbox { inner };
                if let Err(error) = outbox.sweep().await {
                    tracing::debug!(%error, "outbox sweep failed");
                }
            }
        });
    }

    /// Kicks every room with rows older than one sweep interval (nobody is relaying them).
    pub async fn sweep(&self) -> Result<usize, sqlx::Error> {
        let rooms: Vec<String> = sqlx::query_scalar(
            "SELECT room FROM outbox_events
              WHERE created_at < now() - make_interval(secs => $1)
              GROUP BY room LIMIT 1000",
        )
        .bind(self.inner.settings.sweep_interval.as_secs_f64())
        .fetch_all(&self.inner.pool)
        .await?;
        for room in &rooms {
            if let Some(key) = RoomKey::parse(room) {
                self.kick(&key);
            }
        }
        Ok(rooms.len())
    }

    /// Rows not yet published (for tests and the health report).
    pub async fn pending(&self) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar("SELECT count(*) FROM outbox_events")
            .fetch_one(&self.inner.pool)
            .await
    }
}

enum Pass {
    /// Nothing left (or another node holds the room).
    Done,
    /// Published a full batch: there may be more.
    More,
    /// The broker failed: try again later.
    Failed,
}

impl Inner {
    async fn relay_until_empty(self: Arc<Self>, room: String) {
        let mut delay = Duration::from_millis(50);
        loop {
            match self.relay_once(&room).await {
                Ok(Pass::More) => continue,
                Ok(Pass::Done) => {
                    // Stop unless kicked meanwhile; the check and the removal are one step so
                    // a kick either sees us running or starts a new relay.
                    let stop = self.running.remove_if(&room, |_, again| !*again).is_some();
                    if stop {
                        return;
                    }
                    if let Some(mut again) = self.running.get_mut(&room) {
                        *again = false;
                    }
                }
                Ok(Pass::Failed) | Err(_) => {
                    // Backoff: the broker or the database is failing; nothing signals its return.
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                    if self.pool.is_closed() {
                        self.running.remove(&room);
                        return;
                    }
                }
            }
        }
    }

    /// Publishes `rows` (oldest first) in order: the runs of rows still within the history
    /// window in one broker call each (one Redis round trip for the batch, not one per event),
    /// a row older than that as a skipped offset where it stands.
    async fn publish_rows(
        &self,
        key: &RoomKey,
        rows: Vec<Row>,
        oldest_kept: i64,
    ) -> Result<(), BrokerError> {
        let mut events = Vec::with_capacity(rows.len());
        for row in rows {
            if row.created_ms < oldest_kept {
                // Too late for the history: members learn of it as a gap, never as silence.
                self.hub.publish_all(&events).await?;
                events.clear();
                tracing::warn!(room = %key, event_id = %row.event_id, "event given up after the history window; sending a gap");
                self.hub.skip(key).await?;
            } else {
                events.push(NewEvent {
                    id: row.event_id,
                    event_type: row.event_type,
                    timestamp_ms: row.timestamp_ms,
                    room: key.clone(),
                    data: row.data.0,
                });
            }
        }
        self.hub.publish_all(&events).await.map(drop)
    }

    /// One transaction: lock the room, publish a batch in order, delete what was published.
    async fn relay_once(&self, room: &str) -> Result<Pass, sqlx::Error> {
        let Some(key) = RoomKey::parse(room) else {
            sqlx::query("DELETE FROM outbox_events WHERE room = $1")
                .bind(room)
                .execute(&self.pool)
                .await?;
            return Ok(Pass::Done);
        };
        let _permit = self.permits.acquire().await.ok();
        let mut tx = self.pool.begin().await?;
        // One statement: take the room's lock (one relay per room in the cluster; another
        // node's relay of it is waited for, not left to the sweeper — it may have read the room
        // before our rows committed; a relay holds it for one batch, at most a broker timeout
        // when Redis stalls), then take the oldest rows out. Rows the other relay published
        // meanwhile are skipped (deleted under us); rows committed after this statement's
        // snapshot are the next pass's. Published ones go at the commit; if publishing fails the
        // rollback puts every row back, and those already published are dropped as repeats by
        // the broker when they are published again.
        let mut rows: Vec<Row> = sqlx::query_as(
            "WITH room_lock AS (SELECT pg_advisory_xact_lock(hashtextextended($1, 7107)))
             DELETE FROM outbox_events WHERE seq IN (
                 SELECT seq FROM outbox_events, room_lock WHERE room = $1 ORDER BY seq LIMIT $2)
             RETURNING seq, event_id, event_type, data, timestamp_ms,
                       (extract(epoch FROM created_at) * 1000)::BIGINT AS created_ms",
        )
        .bind(room)
        .bind(self.settings.batch)
        .fetch_all(&mut *tx)
        .await?;
        rows.sort_by_key(|r| r.seq);
        let full = rows.len() as i64 == self.settings.batch;
        let oldest_kept = chrono::Utc::now().timestamp_millis()
            - self.settings.history_max_age.as_millis() as i64;
        if let Err(error) = self.publish_rows(&key, rows, oldest_kept).await {
            tracing::debug!(%error, room, "outbox relay: broker unavailable; will retry");
            // Later events wait (order is kept); every row of the batch comes back.
            tx.rollback().await?;
            return Ok(Pass::Failed);
        }
        tx.commit().await?;
        Ok(if full { Pass::More } else { Pass::Done })
    }
}
