//! Recurring jobs that run once per period across the whole cluster.
//!
//! Time is cut into ticks of each schedule's period, aligned to the Unix epoch (a one-hour
//! schedule ticks at every full hour). Every node's scheduler enqueues the current tick's job with
//! the unique key `schedule:<name>:<tick>`; the first insert wins and the others do nothing, so
//! the job runs once per tick however many nodes are up, and still runs if only one is. A node
//! that was down at a tick boundary catches up on the current tick only (no backlog of missed
//! ticks: housekeeping needs the latest run, not every run).

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use tokio::sync::watch;

use super::store::{JobStore, NewJob};

/// A recurring job: every `every`, enqueue `make()`.
pub struct Schedule {
    pub name: &'static str,
    pub every: Duration,
    pub make: fn() -> NewJob,
}

pub struct Scheduler {
    store: JobStore,
    schedules: Vec<Schedule>,
}

impl Scheduler {
    pub fn new(store: JobStore, schedules: Vec<Schedule>) -> Self {
        Self { store, schedules }
    }

    /// Enqueues the current tick of every schedule (no-op where another node already did).
    /// Returns how many jobs this call inserted.
    pub async fn tick(&self) -> Result<usize, sqlx::Error> {
        let now = self.store.now();
        let mut jobs = Vec::with_capacity(self.schedules.len());
        for schedule in &self.schedules {
            let (index, start) = current_tick(now, schedule.every);
            jobs.push(
                (schedule.make)()
                    .unique_key(format!("schedule:{}:{index}", schedule.name))
                    .run_at(start),
            );
        }
        let mut conn = self.store.pool().acquire().await?;
        let inserted = self.store.enqueue_many_in(&mut conn, jobs).await?;
        Ok(inserted.iter().filter(|id| id.is_some()).count())
    }

    /// Ticks at every boundary until shutdown.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        loop {
            if let Err(error) = self.tick().await {
                tracing::warn!(%error, "scheduler tick failed; retrying shortly");
            }
            let now = self.store.now();
            // Sleep to the nearest next boundary, at most a minute (the clock may be adjusted).
            let wait = self
                .schedules
                .iter()
                .map(|s| {
                    let (_, start) = current_tick(now, s.every);
                    let next = start
                        + chrono::Duration::from_std(s.every).unwrap_or(chrono::Duration::MAX);
                    (next - now).to_std().unwrap_or(Duration::ZERO)
                })
                .min()
                .unwrap_or(Duration::from_secs(60))
                .clamp(Duration::from_millis(100), Duration::from_secs(60));
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

/// The tick `now` falls in: its index and its start.
fn current_tick(now: DateTime<Utc>, every: Duration) -> (i64, DateTime<Utc>) {
    let period = i64::try_from(every.as_millis()).unwrap_or(i64::MAX).max(1);
    let index = now.timestamp_millis().div_euclid(period);
    let start = Utc
        .timestamp_millis_opt(index * period)
        .single()
        .unwrap_or(now);
    (index, start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_align_to_the_epoch() {
        let hour = Duration::from_secs(3600);
        let t = Utc.with_ymd_and_hms(2026, 11, 25, 18, 42, 7).unwrap();
        let (index, start) = current_tick(t, hour);
        assert_eq!(start, Utc.with_ymd_and_hms(2026, 11, 25, 18, 0, 0).unwrap());
        let (next, _) = current_tick(t + chrono::Duration::hours(1), hour);
        assert_eq!(next, index + 1);
    }
}
