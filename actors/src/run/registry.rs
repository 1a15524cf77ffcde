//! `RunRegistry`: this node's run actors, by run, on an arbiter (thread) of their own, so a run
//! can be started from any task — a job worker, the lease sweeper, a request handler.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use dashmap::DashMap;

use super::actor::{Command, RunActor, Runs, Stop};
use super::{CommandOutcome, RunCommand, RunControl, RunDriver, StopReason};
use crate::ids::RunId;

pub struct RunRegistry {
    runs: Arc<Runs>,
    arbiter: ArbiterHandle,
}

impl RunRegistry {
    /// Starts the runs' arbiter: a thread with an actix system of its own. Called once, at the
    /// hub's start; if the OS refuses the thread, or it dies before reporting in, the node
    /// cannot run anything, so it panics there (at start-up, not under load) with the reason.
    pub(crate) fn new() -> Self {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("vrooli-runs".into())
            .spawn(move || {
                let system = actix::System::new();
                system.block_on(async move {
                    let _ = tx.send(Arbiter::current());
                    // Runs until the process ends: the arbiter hosts every run actor.
                    std::future::pending::<()>().await;
                });
            })
            .expect("the runs thread starts");
        let arbiter = rx.recv().expect("the runs arbiter reports in");
        Self {
            runs: Arc::new(DashMap::new()),
            arbiter,
        }
    }

    /// Starts a run's actor, unless one is already running here. False when one was.
    pub(crate) fn start(
        &self,
        run: RunId,
        driver: Arc<dyn RunDriver>,
        renew_every: Duration,
    ) -> bool {
        use dashmap::mapref::entry::Entry;
        let Entry::Vacant(slot) = self.runs.entry(run) else {
            return false;
        };
        let runs = Arc::downgrade(&self.runs);
        let actor = RunActor {
            run,
            driver,
            control: RunControl::default(),
            renew_every,
            runs,
        };
        let addr = RunActor::start_in_arbiter(&self.arbiter, move |_| actor);
        slot.insert(addr);
        true
    }

    pub(crate) fn command(&self, run: RunId, command: RunCommand) -> CommandOutcome {
        match self.runs.get(&run) {
            Some(addr) => {
                addr.do_send(Command(command));
                CommandOutcome::Delivered
            }
            None => CommandOutcome::NotRunning,
        }
    }

    /// Stops every run here without writes (shutdown): their leases expire and other nodes
    /// take them over.
    pub(crate) fn stop_all(&self) {
        for entry in self.runs.iter() {
            entry.value().do_send(Stop(StopReason::Shutdown));
        }
    }

    pub fn len(&self) -> usize {
        self.runs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    pub fn is_running(&self, run: RunId) -> bool {
        self.runs.contains_key(&run)
    }
}
