//! The SQL of runs: the lease (claim, renew, release), fenced writes, steps and the timeline.
//!
//! ```text
//! claim ─▶ UPDATE … lease_epoch = lease_epoch + 1 WHERE nobody holds a live lease ─▶ Lease
//! every write of the owner ─▶ BEGIN; fence (row locked, epoch and owner still ours?) ─▶ … ─▶ COMMIT
//!                                     └─ no row: the lease was lost ─▶ Fenced, nothing written
//! event_in ─▶ next seq of the run (same transaction) ─▶ run_events + outbox (room run:<id>)
//! ```
//!
//! The fence locks the run's row, so a claim by another node waits for the owner's transaction
//! and then bumps the epoch; the old owner's next fence matches nothing. That is the whole of
//! "a stale owner that wakes up is fenced out": it cannot write after a claim.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};
use sqlx::{PgConnection, PgPool};
use vrooli_actors::{NewEvent, RoomKey};

use crate::outbox::Outbox;

/// This node's hold on a run: the epoch every write must still match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub run: i64,
    pub epoch: i64,
    pub node: i32,
}

/// The lease was lost: another node owns the run (or it ended).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the run's lease is no longer this node's")]
pub struct Fenced;

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(transparent)]
    Fenced(#[from] Fenced),
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
}

/// A step as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StepRow {
    pub node_id: String,
    pub step_key: String,
    pub status: String,
    pub attempt: i32,
    pub inputs: Option<Value>,
    pub outputs: Option<Value>,
}

/// Claims a run nobody holds a live lease on (Scheduled, expired, or a wait that is due).
/// Returns the lease, or `None` when it is not free (running elsewhere, waiting, ended).
pub async fn claim(
    pool: &PgPool,
    run: i64,
    node: i32,
    ttl: Duration,
) -> Result<Option<Lease>, sqlx::Error> {
    let epoch: Option<i64> = sqlx::query_scalar(
        "UPDATE runs SET lease_owner = $2, lease_epoch = lease_epoch + 1,
                lease_expires_at = now() + $3 * interval '1 millisecond',
                status = 'InProgress', started_at = COALESCE(started_at, now()),
                waiting_for = NULL, wake_at = NULL
          WHERE id = $1 AND status IN ('Scheduled', 'InProgress')
            AND desired_status IS DISTINCT FROM 'Cancelled'
            AND (lease_owner IS NULL OR lease_expires_at < now())
            AND (waiting_for IS NULL OR wake_at <= now())
         RETURNING lease_epoch",
    )
    .bind(run)
    .bind(node)
    .bind(ttl.as_millis() as i64)
    .fetch_optional(pool)
    .await?;
    Ok(epoch.map(|epoch| Lease { run, epoch, node }))
}

/// Runs another node should take over, or whose wait is due: the sweeper's list.
pub async fn claimable(pool: &PgPool, limit: i64) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM runs
          WHERE status = 'InProgress' AND desired_status IS DISTINCT FROM 'Cancelled'
            AND ((lease_owner IS NOT NULL AND lease_expires_at < now())
              OR (lease_owner IS NULL AND (waiting_for IS NULL OR wake_at <= now())))
          ORDER BY COALESCE(wake_at, lease_expires_at) LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Hands back every run lease `node` holds (it is stopping and its run actors have stopped):
/// they read as expired, so the next sweep of any node takes the runs over at once instead of
/// after the TTL. A write of ours still in flight stays fenced by the epoch the taker bumps.
pub async fn release_node_leases(pool: &PgPool, node: i32) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE runs SET lease_expires_at = now()
          WHERE lease_owner = $1 AND status = 'InProgress' AND lease_expires_at > now()",
    )
    .bind(node)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// Extends the lease; false when it is no longer ours.
pub async fn renew(pool: &PgPool, lease: Lease, ttl: Duration) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE runs SET lease_expires_at = now() + $4 * interval '1 millisecond'
          WHERE id = $1 AND lease_epoch = $2 AND lease_owner = $3 AND status = 'InProgress'",
    )
    .bind(lease.run)
    .bind(lease.epoch)
    .bind(lease.node)
    .bind(ttl.as_millis() as i64)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Locks the run's row if the lease is still ours; returns what a person asked for meanwhile
/// (`desired_status`: Paused or Cancelled).
pub async fn fence(conn: &mut PgConnection, lease: Lease) -> Result<Option<String>, WriteError> {
    let row: Option<(Option<String>,)> = sqlx::query_as(
        "SELECT desired_status FROM runs
          WHERE id = $1 AND lease_epoch = $2 AND lease_owner = $3 AND status = 'InProgress'
          FOR UPDATE",
    )
    .bind(lease.run)
    .bind(lease.epoch)
    .bind(lease.node)
    .fetch_optional(&mut *conn)
    .await?;
    match row {
        Some((desired,)) => Ok(desired),
        None => Err(Fenced.into()),
    }
}

/// Appends an event to the run's timeline and the outbox of its room, in the caller's
/// transaction (which holds the run's row). Returns its `seq`.
pub async fn event_in(
    conn: &mut PgConnection,
    run: i64,
    event_type: &str,
    mut data: Value,
) -> Result<i64, sqlx::Error> {
    let seq: i64 = sqlx::query_scalar(
        "UPDATE runs SET next_seq = next_seq + 1 WHERE id = $1 RETURNING next_seq - 1",
    )
    .bind(run)
    .fetch_one(&mut *conn)
    .await?;
    // When it happened, in the payload as every event's time is (PROTOCOL.md).
    let now = chrono::Utc::now();
    if let Value::Object(map) = &mut data {
        map.insert("runId".into(), json!(run.to_string()));
        map.insert("seq".into(), json!(seq));
        map.insert("createdAt".into(), json!(now));
    }
    sqlx::query("INSERT INTO run_events (run_id, seq, event_type, data) VALUES ($1, $2, $3, $4)")
        .bind(run)
        .bind(seq)
        .bind(event_type)
        .bind(&data)
        .execute(&mut *conn)
        .await?;
    if let Some(room) = RoomKey::run(&run.to_string()) {
        let event = NewEvent {
            id: format!("run-{run}-{seq}"),
            event_type: event_type.to_owned(),
            timestamp_ms: now.timestamp_millis(),
            room,
            data,
        };
        Outbox::add_in(conn, &event).await?;
    }
    Ok(seq)
}

/// What a run's tree has used so far (the run a request started and every run its steps
/// started, which share the root's limits): credits, steps taken, and milliseconds spent inside
/// steps that do work (http, llm, decision; not waits, approvals or the steps that call
/// subroutines).
pub async fn usage(pool: &PgPool, run: i64) -> Result<(i64, i64, i64), sqlx::Error> {
    sqlx::query_as(
        "WITH tree AS (
             SELECT t.id, t.credits_used FROM runs t, runs r
              WHERE r.id = $1 AND COALESCE(r.root_run_id, r.id) IN (t.id, t.root_run_id))
         SELECT (SELECT COALESCE(sum(credits_used), 0)::BIGINT FROM tree),
                (SELECT count(*) FROM run_steps s WHERE s.run_id IN (SELECT id FROM tree)),
                (SELECT COALESCE(sum(EXTRACT(EPOCH FROM COALESCE(s.completed_at, now()) - s.started_at)
                                     * 1000), 0)::BIGINT
                   FROM run_steps s WHERE s.run_id IN (SELECT id FROM tree)
                    AND s.inputs->>'kind' IN ('http', 'llm', 'decision'))",
    )
    .bind(run)
    .fetch_one(pool)
    .await
}

pub async fn steps(pool: &PgPool, run: i64) -> Result<HashMap<String, StepRow>, sqlx::Error> {
    let rows: Vec<StepRow> = sqlx::query_as(
        "SELECT node_id, step_key, status, attempt, inputs, outputs FROM run_steps WHERE run_id = $1",
    )
    .bind(run)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| (r.step_key.clone(), r)).collect())
}

/// Marks a step in progress (a new attempt when it was started before); its attempt number.
pub async fn start_step_in(
    conn: &mut PgConnection,
    id: i64,
    run: i64,
    node: &str,
    key: &str,
    inputs: &Value,
) -> Result<i32, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO run_steps (id, run_id, node_id, step_key, status, inputs)
         VALUES ($1, $2, $3, $4, 'InProgress', $5)
         ON CONFLICT (step_key) DO UPDATE
            SET status = 'InProgress', attempt = run_steps.attempt + 1, started_at = now(),
                inputs = EXCLUDED.inputs, error = NULL
         RETURNING attempt",
    )
    .bind(id)
    .bind(run)
    .bind(node)
    .bind(key)
    .bind(inputs)
    .fetch_one(conn)
    .await
}

pub async fn finish_step_in(
    conn: &mut PgConnection,
    key: &str,
    status: &str,
    outputs: Option<&Value>,
    error: Option<&str>,
    credits: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE run_steps SET status = $2, outputs = $3, error = $4, credits = credits + $5,
                completed_at = now()
          WHERE step_key = $1",
    )
    .bind(key)
    .bind(status)
    .bind(outputs)
    .bind(error)
    .bind(credits)
    .execute(&mut *conn)
    .await?;
    if credits > 0 {
        sqlx::query(
            "UPDATE runs SET credits_used = credits_used + $2
              WHERE id = (SELECT run_id FROM run_steps WHERE step_key = $1)",
        )
        .bind(key)
        .bind(credits)
        .execute(conn)
        .await?;
    }
    Ok(())
}

/// Ends the run (Completed, Failed, Cancelled) and drops its lease.
pub async fn end_in(
    conn: &mut PgConnection,
    run: i64,
    status: &str,
    reason: Option<&str>,
    outputs: Option<&Value>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE runs SET status = $2, status_reason = $3, outputs = COALESCE($4, outputs),
                completed_at = now(), desired_status = NULL, lease_owner = NULL,
                lease_expires_at = NULL, waiting_for = NULL, wake_at = NULL
          WHERE id = $1",
    )
    .bind(run)
    .bind(status)
    .bind(reason)
    .bind(outputs)
    .execute(conn)
    .await
    .map(drop)
}

/// Pauses the run with a reason and drops its lease: it holds no actor until resumed.
pub async fn pause_in(conn: &mut PgConnection, run: i64, reason: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE runs SET status = 'Paused', status_reason = $2, desired_status = NULL,
                lease_owner = NULL, lease_expires_at = NULL, waiting_for = NULL, wake_at = NULL
          WHERE id = $1",
    )
    .bind(run)
    .bind(reason)
    .execute(conn)
    .await
    .map(drop)
}

/// Drops the lease while the run waits: for a timer (`wake_at`) or a decision (`None`).
pub async fn wait_in(
    conn: &mut PgConnection,
    run: i64,
    waiting_for: &str,
    wake_at: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE runs SET lease_owner = NULL, lease_expires_at = NULL, waiting_for = $2,
                wake_at = $3
          WHERE id = $1",
    )
    .bind(run)
    .bind(waiting_for)
    .bind(wake_at)
    .execute(conn)
    .await
    .map(drop)
}
