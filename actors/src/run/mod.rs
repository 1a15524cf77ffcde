//! Runs: one `RunActor` per run whose lease this node holds, in the node's `RunRegistry`.
//!
//! ```text
//! server (job, sweeper) ─claims the lease─▶ Hub::start_run(run, driver) ─▶ RunRegistry ─▶ RunActor
//!   RunActor ─spawns─▶ driver.run(control)   (the server's step loop: SQL, HTTP, models)
//!            ─every renew_every─▶ driver.renew() ─ lost? ─▶ control: Fenced (stop, no writes)
//! any node: Hub::command_run(owner, run, Pause|Cancel|Wake) ─▶ owner's mailbox ─▶ RunActor
//!            ─▶ control (pause at the next boundary; cancel aborts the step in flight)
//! ```
//!
//! The actor crate knows nothing of steps: the server's [`RunDriver`] does the work and reads
//! [`RunControl`] between steps (and hands its cancellation token to the step in flight). The
//! actors live on one arbiter of their own (`registry.rs`), so runs start the same way from a
//! job, a sweeper or a request handler, with or without an actix system around the caller.

mod actor;
pub mod registry;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub use registry::RunRegistry;

use crate::fut::BoxFut;

/// What a person asks of a run in progress, through any node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RunCommand {
    /// Stop at the next step boundary (the row already says Paused is wanted).
    Pause,
    /// Stop now, aborting the step in flight.
    Cancel,
    /// Something the run may be waiting on changed (a decision arrived): look again.
    Wake,
}

/// The owner's answer to a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CommandOutcome {
    /// The run's actor got it.
    Delivered,
    /// No actor for this run on that node (it ended, or moved).
    NotRunning,
}

/// Why a run's actor was told to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    Cancelled,
    /// The lease was lost: another node owns the run now. Write nothing more.
    Fenced,
    /// This node is shutting down: leave the run for another node (the lease expires).
    Shutdown,
}

/// What the driver reads between steps, and the token it hands to the step in flight.
#[derive(Clone)]
pub struct RunControl {
    inner: Arc<ControlState>,
}

struct ControlState {
    /// Aborts the step in flight (cancel, fenced, shutdown).
    stop: CancellationToken,
    reason: AtomicU8,
    pause: AtomicBool,
    wake: Notify,
}

impl Default for RunControl {
    fn default() -> Self {
        Self {
            inner: Arc::new(ControlState {
                stop: CancellationToken::new(),
                reason: AtomicU8::new(0),
                pause: AtomicBool::new(false),
                wake: Notify::new(),
            }),
        }
    }
}

impl RunControl {
    /// Cancelled when the run must stop now; hand it to the step in flight.
    pub fn token(&self) -> &CancellationToken {
        &self.inner.stop
    }

    /// Set when the run must stop; the first reason wins.
    pub fn stopped(&self) -> Option<StopReason> {
        match self.inner.reason.load(Ordering::Acquire) {
            1 => Some(StopReason::Cancelled),
            2 => Some(StopReason::Fenced),
            3 => Some(StopReason::Shutdown),
            _ => None,
        }
    }

    pub fn pause_requested(&self) -> bool {
        self.inner.pause.load(Ordering::Acquire)
    }

    /// Waits until woken ([`RunCommand::Wake`]) or stopped.
    pub async fn woken(&self) {
        tokio::select! {
            _ = self.inner.wake.notified() => {}
            _ = self.inner.stop.cancelled() => {}
        }
    }

    pub fn stop(&self, reason: StopReason) {
        let code = match reason {
            StopReason::Cancelled => 1,
            StopReason::Fenced => 2,
            StopReason::Shutdown => 3,
        };
        let _ = self
            .inner
            .reason
            .compare_exchange(0, code, Ordering::AcqRel, Ordering::Acquire);
        self.inner.stop.cancel();
    }

    pub(crate) fn apply(&self, command: RunCommand) {
        match command {
            RunCommand::Pause => self.inner.pause.store(true, Ordering::Release),
            RunCommand::Cancel => self.stop(StopReason::Cancelled),
            RunCommand::Wake => self.inner.wake.notify_one(),
        }
    }
}

/// The server's side of a run: the step loop and the lease renewal.
pub trait RunDriver: Send + Sync + 'static {
    /// Executes the run until it ends, pauses, waits (releasing the lease) or is stopped. The
    /// actor stops when this returns.
    fn run(self: Arc<Self>, control: RunControl) -> BoxFut<'static, ()>;
    /// Extends the lease; `Ok(false)` when it is no longer this node's (fenced).
    fn renew(self: Arc<Self>) -> BoxFut<'static, Result<bool, String>>;
}
