//! `RunActor`: holds one run's [`RunControl`] while its driver runs, renews its lease, and takes
//! commands. It stops when the driver returns and takes itself out of [`Runs`], the map the
//! registry keeps (defined here, so the actor needs nothing of the registry).

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use dashmap::DashMap;

use super::{RunCommand, RunControl, RunDriver, StopReason};
use crate::ids::RunId;

/// The node's run actors, by run: owned by the registry, left by each actor as it stops.
pub(crate) type Runs = DashMap<RunId, Addr<RunActor>>;

#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Command(pub RunCommand);

/// Tells the actor to stop its run without writing (the node is shutting down).
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Stop(pub StopReason);

pub(crate) struct RunActor {
    pub(crate) run: RunId,
    pub(crate) driver: Arc<dyn RunDriver>,
    pub(crate) control: RunControl,
    pub(crate) renew_every: Duration,
    pub(crate) runs: std::sync::Weak<Runs>,
}

impl Actor for RunActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let span = tracing::info_span!("run", run = %self.run);
        let work = self.driver.clone().run(self.control.clone());
        ctx.spawn(
            tracing::Instrument::instrument(work, span)
                .into_actor(self)
                .map(|(), _, ctx| ctx.stop()),
        );
        ctx.run_interval(self.renew_every, |act, ctx| {
            let renew = act.driver.clone().renew();
            ctx.spawn(renew.into_actor(act).map(|result, act, _| match result {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(run = %act.run, "lease lost; stopping without writing");
                    act.control.stop(StopReason::Fenced);
                }
                // The database is unreachable: the next renewal tries again; if the lease
                // expires meanwhile, the fenced writes refuse this node and it stops then.
                Err(error) => tracing::warn!(run = %act.run, %error, "lease not renewed"),
            }));
        });
    }

    fn stopped(&mut self, ctx: &mut Self::Context) {
        if let Some(runs) = self.runs.upgrade() {
            let me = ctx.address();
            runs.remove_if(&self.run, |_, addr| *addr == me);
        }
    }
}

impl Handler<Command> for RunActor {
    type Result = ();
    fn handle(&mut self, Command(command): Command, _: &mut Self::Context) {
        self.control.apply(command);
    }
}

impl Handler<Stop> for RunActor {
    type Result = ();
    fn handle(&mut self, Stop(reason): Stop, _: &mut Self::Context) {
        self.control.stop(reason);
    }
}
