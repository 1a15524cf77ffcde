//! The jobs side of a node: one worker pool per queue that has handlers, the NOTIFY listener
//! that wakes them, the sweep that rescues jobs of dead workers, and the scheduler.
//! `JobRuntime::shutdown` stops them all, letting running jobs finish until the deadline.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use super::queue::Queue;
use super::scheduler::Scheduler;
use super::store::WAKE_CHANNEL;
use super::worker::{Executor, run_pool};

pub struct JobRuntime {
    shutdown: StopJobs,
    tasks: Vec<JoinHandle<()>>,
}

/// Tells a [`JobRuntime`] to stop claiming and drain (cheap to clone; for signal handlers).
#[derive(Clone)]
pub struct StopJobs(Arc<watch::Sender<bool>>);

impl StopJobs {
    pub fn stop(&self) {
        let _ = self.0.send(true);
    }
}

impl JobRuntime {
    /// Starts pools for every queue the executor's registry handles, plus wake-ups, rescue and
    /// (when given) the scheduler. `drain_deadline` is how long shutdown waits for running jobs.
    pub fn start(
        executor: Arc<Executor>,
        scheduler: Option<Scheduler>,
        drain_deadline: Duration,
    ) -> Self {
        let (shutdown, stop) = watch::channel(false);
        let queues = executor.registry().queues();
        let wakes: HashMap<Queue, Arc<Notify>> = queues
            .iter()
            .map(|q| (*q, Arc::new(Notify::new())))
            .collect();
        let mut tasks = Vec::new();
        for queue in queues {
            tasks.push(tokio::spawn(run_pool(
                Arc::clone(&executor),
                queue,
                Arc::clone(&wakes[&queue]),
                stop.clone(),
                drain_deadline,
            )));
        }
        tasks.push(tokio::spawn(listen_for_wakes(
            executor.store().pool().clone(),
            wakes,
            stop.clone(),
        )));
        tasks.push(tokio::spawn(rescue_loop(
            Arc::clone(&executor),
            stop.clone(),
        )));
        if let Some(scheduler) = scheduler {
            tasks.push(tokio::spawn(scheduler.run(stop)));
        }
        Self {
            shutdown: StopJobs(Arc::new(shutdown)),
            tasks,
        }
    }

    pub fn stopper(&self) -> StopJobs {
        self.shutdown.clone()
    }

    /// Stops claiming, waits for running jobs (up to the deadline given at start), hands back
    /// the rest, and returns when every task has ended.
    pub async fn shutdown(self) {
        self.shutdown.stop();
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Wakes a queue's pool when a job is enqueued on any node (NOTIFY at commit). Pools also poll,
/// so a lost notification only delays a job by the poll interval.
async fn listen_for_wakes(
    pool: sqlx::PgPool,
    wakes: HashMap<Queue, Arc<Notify>>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(%error, "job wake-up listener could not connect; workers poll meanwhile");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(5)) => continue,
                    _ = stop.changed() => return,
                }
            }
        };
        if let Err(error) = listener.listen(WAKE_CHANNEL).await {
            tracing::warn!(%error, "LISTEN failed; retrying");
            continue;
        }
        loop {
            tokio::select! {
                received = listener.recv() => match received {
                    Ok(notification) => {
                        if let Some(wake) = Queue::parse(notification.payload()).and_then(|q| wakes.get(&q)) {
                            wake.notify_one();
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, "job wake-up listener lost its connection; reconnecting");
                        break;
                    }
                },
                _ = stop.changed() => return,
            }
        }
    }
}

async fn rescue_loop(executor: Arc<Executor>, mut stop: watch::Receiver<bool>) {
    let every = Duration::from_secs(executor.settings().rescue_interval_secs);
    loop {
        match executor.store().rescue_expired().await {
            Ok(0) => {}
            Ok(n) => {
                tracing::warn!(rescued = n, "retrying jobs whose worker stopped");
                if let Some(m) = executor.store().metrics() {
                    m.jobs.rescued.inc_by(n);
                }
            }
            Err(error) => tracing::warn!(%error, "rescue sweep failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
    }
}
