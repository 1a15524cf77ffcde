//! Stopping a node: [`ShutdownHandle::shutdown`] (a signal or a test) drains, tells WebSocket
//! clients to reconnect elsewhere, and stops the server; [`Application::run`] then waits for
//! running jobs, hands back run leases and the worker id, gives back the connections
//! `db::warm` keeps and closes the pool.

use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::ServerHandle;

use super::Application;
use super::signals::wait_for_signal;
use crate::health::HealthService;
use crate::jobs::{JobRuntime, StopJobs};

/// Stops a running [`Application`] gracefully, as SIGTERM would.
#[derive(Clone)]
pub struct ShutdownHandle {
    server: ServerHandle,
    jobs: Option<StopJobs>,
    hub: vrooli_actors::Hub,
    health: Arc<HealthService>,
    /// How long WebSocket clients get to close after being told to reconnect.
    ws_grace: Duration,
    /// How long the node answers 503 on /healthcheck, still serving, before it stops.
    drain: Duration,
}

impl ShutdownHandle {
    /// Answers 503 on /healthcheck for `server.drain_secs` while still serving (the balancer
    /// stops sending work); then tells WebSocket clients to reconnect elsewhere (close 1012) and
    /// waits for them within the grace; stops accepting and claiming; waits for in-flight
    /// requests (up to the configured deadline); returns. Running jobs drain in parallel (see
    /// `run`); run leases are handed back there too.
    pub async fn shutdown(&self) {
        self.health.start_draining();
        if !self.drain.is_zero() {
            tracing::info!(
                drain_secs = self.drain.as_secs_f64(),
                "draining: /healthcheck answers 503 while this node still serves"
            );
            // The drain is a duration by design: nothing tells a node that every balancer has
            // seen its 503; `server.drain_secs` covers their check interval × failures.
            tokio::time::sleep(self.drain).await;
        }
        if let Some(jobs) = &self.jobs {
            jobs.stop();
        }
        self.hub.shutdown(self.ws_grace).await;
        self.server.stop(true).await;
    }
}

impl Application {
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            server: self.server.handle(),
            jobs: self.jobs.as_ref().map(JobRuntime::stopper),
            hub: self.state.infra.hub.clone(),
            health: self.state.infra.health.clone(),
            ws_grace: self.ws_grace,
            drain: self.drain,
        }
    }

    /// Serves until SIGTERM/SIGINT or a [`ShutdownHandle`], then drains and closes.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run(true).await
    }

    /// As [`Self::run_until_stopped`]; with `signals = false` only a [`ShutdownHandle`] stops it
    /// (tests run many servers in one process and must not take over its Ctrl-C).
    pub async fn run(self, signals: bool) -> std::io::Result<()> {
        let handle = self.shutdown_handle();
        let watcher = signals.then(|| {
            tokio::spawn(async move {
                let signal = wait_for_signal().await;
                tracing::info!(
                    signal,
                    "shutdown requested: no new connections or jobs, draining in-flight work"
                );
                handle.shutdown().await;
            })
        });
        let result = self.server.await;
        if let Some(watcher) = watcher {
            watcher.abort();
        }
        if let Some(jobs) = self.jobs {
            // Already told to stop with the server; this waits for running jobs to drain.
            jobs.shutdown().await;
        }
        // The run actors stopped with the hub: hand their leases back for another node.
        match crate::runs::store::release_node_leases(&self.pool, i32::from(self.worker_id)).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(runs = n, "run leases handed back"),
            Err(error) => {
                tracing::warn!(%error, "could not hand back run leases; they expire by themselves")
            }
        }
        self.lease.release().await;
        // Connections kept warm are out of the pool, and `close` waits for every one.
        self.state.chat.chats.warm.close();
        self.pool.close().await;
        tracing::info!("server stopped; worker id released; database pool closed");
        result
    }
}
