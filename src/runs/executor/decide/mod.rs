//! The run's decisions, without I/O: given what is stored about a step (or the run) and what
//! just happened, what the walk must do next. The walk (`walk.rs`, `waits.rs`, `fanout.rs`,
//! `budget.rs`, `mod.rs`) reads the rows, the control flags and the clock, asks here, and
//! carries out the answer. Nothing here touches SQL, Redis, a task or the clock (`now` comes
//! in), so the unit tests in each file drive every branch: `actors/src/room/order.rs` does the
//! same for rooms, Restate's `invocation_state_machine.rs` for its invocations.
//!
//! ```text
//! stored step ─▶ Completed | Skipped ─▶ replay its outputs (a map item: Completed only)
//!             ─▶ none | InProgress | Failed ─▶ run it:
//! at_boundary ─▶ stopped ─▶ Cancelled | Fenced | Shutdown; pause asked ─▶ Paused Requested
//! limits      ─▶ new step, steps ≥ maxSteps ─▶ Failed MaxSteps
//!             ─▶ time in steps ≥ maxTimeMs ─▶ Failed MaxTime
//!             ─▶ credits + hold > maxCredits ─▶ Paused MaxCredits
//! enter       ─▶ skipCondition holds ─▶ Skip; join | wait | approval, input | subroutine
//!             ─▶ in flight: non-idempotent http, writing action ─▶ Paused UncertainStep
//!             ─▶ else Work (its retry policy; none: one attempt)
//! after_attempt ─▶ stopped meanwhile ─▶ that stop (a cancel releases the hold)
//!             ─▶ Ok ─▶ Complete; retryable, attempt < maxAttempts ─▶ Retry (backoff·2^(attempt−1))
//!             ─▶ else Fail (releases the hold)
//! after       ─▶ decision: its branch; parallel: its join; else its first edge
//!             ─▶ the branch's join ─▶ return; nothing ─▶ the graph's outputs
//! timer       ─▶ due later than now ─▶ sleep (lease dropped); else done
//! ending      ─▶ Cancelled | Failed | Paused, or left for another node
//! ```
//!
//! Everything is a function of plain data: the run's state lives in its rows (the attempt
//! number is the step row's), so there is nothing to keep between calls. Here: how a walk
//! stops and what that makes of the run; `limits.rs`: the run's limits before a step;
//! `step.rs`: how a step runs and what follows each attempt; `flow.rs`: where the walk goes
//! (the next node, timers, answers, map items).

mod flow;
pub(super) mod limits;
mod step;

use serde_json::{Value, json};
use vrooli_actors::StopReason;

pub(super) use flow::{After, Timer, after, answered, map_items, timer};
pub(super) use step::{AfterAttempt, Entry, after_attempt, attempt_timeout, enter, timed_out};

/// Why a walk stops before its graph's end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Halt {
    /// The lease is another node's now: write nothing more.
    Fenced,
    Cancelled,
    /// This node is stopping: the lease expires and another node goes on.
    Shutdown,
    /// Paused with this reason (`Requested`, `UncertainStep`, `MaxCredits`,
    /// `InsufficientCredits`) until a person resumes it.
    Paused(&'static str),
    /// A wait released the lease in the step's own transaction.
    Waiting,
    Failed {
        step: String,
        reason: &'static str,
        message: String,
    },
}

impl Halt {
    pub(super) fn failed(step: &str, reason: &'static str, message: impl Into<String>) -> Self {
        Halt::Failed {
            step: step.to_owned(),
            reason,
            message: message.into(),
        }
    }
}

/// A step's stored status, as the walk reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stored {
    /// No row: the step never began.
    New,
    /// InProgress: begun, and its owner died, or it waits.
    InFlight,
    Completed,
    Skipped,
    /// Failed (or any other status): runs again as a new attempt.
    Failed,
}

impl Stored {
    pub(super) fn of(status: Option<&str>) -> Self {
        match status {
            None => Stored::New,
            Some("InProgress") => Stored::InFlight,
            Some("Completed") => Stored::Completed,
            Some("Skipped") => Stored::Skipped,
            Some(_) => Stored::Failed,
        }
    }

    /// A step stored done is replayed from its outputs, never run again.
    pub(super) fn replays(self) -> bool {
        matches!(self, Stored::Completed | Stored::Skipped)
    }

    /// A map's item is replayed when Completed only: a Skipped one runs (and skips) again.
    pub(super) fn replays_item(self) -> bool {
        self == Stored::Completed
    }

    /// A step whose row is not InProgress yet is marked so (with `step/started`) first.
    pub(super) fn begins(self) -> bool {
        self != Stored::InFlight
    }
}

/// Before a step: a stop, else a pause asked for through the actor.
pub(super) fn at_boundary(stopped: Option<StopReason>, pause_requested: bool) -> Option<Halt> {
    halted(stopped).or(pause_requested.then_some(Halt::Paused("Requested")))
}

/// After a step's work: only a stop counts (a pause waits until its result is stored).
pub(super) fn halted(stopped: Option<StopReason>) -> Option<Halt> {
    stopped.map(|reason| match reason {
        StopReason::Cancelled => Halt::Cancelled,
        StopReason::Fenced => Halt::Fenced,
        StopReason::Shutdown => Halt::Shutdown,
    })
}

/// What a person asked for meanwhile (`desired_status`, read by every fenced write).
pub(super) fn desired(desired: Option<&str>) -> Option<Halt> {
    match desired {
        Some("Cancelled") => Some(Halt::Cancelled),
        Some("Paused") => Some(Halt::Paused("Requested")),
        _ => None,
    }
}

/// A run's first walk (first lease, nothing stored) announces `run/started`; a later one
/// announces `run/resumed` with the first step it begins.
pub(super) fn first_walk(epoch: i64, steps_stored: usize) -> bool {
    epoch == 1 && steps_stored == 0
}

/// How a run ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum End {
    Completed,
    Cancelled,
    Failed,
}

impl End {
    pub(super) fn status(self) -> &'static str {
        match self {
            End::Completed => "Completed",
            End::Cancelled => "Cancelled",
            End::Failed => "Failed",
        }
    }

    pub(super) fn event(self) -> &'static str {
        match self {
            End::Completed => "run/completed",
            End::Cancelled => "run/cancelled",
            End::Failed => "run/failed",
        }
    }
}

/// What the run's row becomes when its walk stops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Ending {
    /// Left as it is; the log line (if any) says why: the lease is another node's, or expires
    /// for another node to go on, or a wait already released it.
    Left(Option<&'static str>),
    /// Paused with this reason and `run/paused`; the lease is dropped.
    Paused(&'static str),
    /// Ended with a reason and its event's data.
    Ended {
        end: End,
        reason: &'static str,
        data: Value,
    },
}

pub(super) fn ending(halt: Halt) -> Ending {
    match halt {
        Halt::Fenced => Ending::Left(Some("lease lost; another node has the run")),
        Halt::Shutdown => Ending::Left(Some("node stopping; the run's lease will expire")),
        Halt::Waiting => Ending::Left(None),
        Halt::Cancelled => Ending::Ended {
            end: End::Cancelled,
            reason: "Cancelled",
            data: json!({}),
        },
        Halt::Paused(reason) => Ending::Paused(reason),
        Halt::Failed {
            step,
            reason,
            message,
        } => Ending::Ended {
            end: End::Failed,
            reason,
            data: json!({"reason": reason, "message": message, "stepKey": step}),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_statuses_are_read_as_the_walk_needs_them() {
        assert_eq!(Stored::of(None), Stored::New);
        assert_eq!(Stored::of(Some("InProgress")), Stored::InFlight);
        assert_eq!(Stored::of(Some("Completed")), Stored::Completed);
        assert_eq!(Stored::of(Some("Skipped")), Stored::Skipped);
        assert_eq!(Stored::of(Some("Failed")), Stored::Failed);
        assert_eq!(Stored::of(Some("Weird")), Stored::Failed);
    }

    #[test]
    fn done_steps_replay_and_the_rest_run() {
        let replayed = |s: Stored| (s.replays(), s.replays_item());
        assert_eq!(replayed(Stored::Completed), (true, true));
        assert_eq!(
            replayed(Stored::Skipped),
            (true, false),
            "a skipped map item runs again"
        );
        for stored in [Stored::New, Stored::InFlight, Stored::Failed] {
            assert_eq!(replayed(stored), (false, false));
        }
    }

    #[test]
    fn only_a_step_in_flight_is_not_marked_begun_again() {
        assert!(Stored::New.begins());
        assert!(Stored::Failed.begins());
        assert!(!Stored::InFlight.begins());
    }

    #[test]
    fn at_a_boundary_a_stop_wins_over_a_pause() {
        assert_eq!(at_boundary(None, false), None);
        assert_eq!(at_boundary(None, true), Some(Halt::Paused("Requested")));
        let stops = [
            (StopReason::Cancelled, Halt::Cancelled),
            (StopReason::Fenced, Halt::Fenced),
            (StopReason::Shutdown, Halt::Shutdown),
        ];
        for (reason, halt) in stops {
            assert_eq!(at_boundary(Some(reason), true), Some(halt.clone()));
            assert_eq!(halted(Some(reason)), Some(halt));
        }
        assert_eq!(halted(None), None);
    }

    #[test]
    fn what_a_person_asked_for_stops_the_next_write() {
        assert_eq!(desired(Some("Cancelled")), Some(Halt::Cancelled));
        assert_eq!(desired(Some("Paused")), Some(Halt::Paused("Requested")));
        assert_eq!(desired(None), None);
        assert_eq!(desired(Some("Completed")), None);
    }

    #[test]
    fn only_the_first_lease_of_a_run_with_nothing_stored_announces_its_start() {
        assert!(first_walk(1, 0));
        assert!(!first_walk(1, 1), "steps stored: it resumes");
        assert!(!first_walk(2, 0), "taken over: it resumes");
    }

    #[test]
    fn ends_have_their_status_and_event() {
        let ends = [End::Completed, End::Cancelled, End::Failed];
        let named: Vec<_> = ends.iter().map(|e| (e.status(), e.event())).collect();
        assert_eq!(
            named,
            [
                ("Completed", "run/completed"),
                ("Cancelled", "run/cancelled"),
                ("Failed", "run/failed")
            ]
        );
    }

    #[test]
    fn a_lost_lease_a_shutdown_or_a_wait_leave_the_run_as_it_is() {
        assert!(matches!(ending(Halt::Fenced), Ending::Left(Some(_))));
        assert!(matches!(ending(Halt::Shutdown), Ending::Left(Some(_))));
        assert_eq!(ending(Halt::Waiting), Ending::Left(None));
    }

    #[test]
    fn a_cancel_a_pause_and_a_failure_end_the_run_with_their_reason() {
        let cancelled = Ending::Ended {
            end: End::Cancelled,
            reason: "Cancelled",
            data: json!({}),
        };
        assert_eq!(ending(Halt::Cancelled), cancelled);
        assert_eq!(
            ending(Halt::Paused("UncertainStep")),
            Ending::Paused("UncertainStep")
        );
        let failed = Ending::Ended {
            end: End::Failed,
            reason: "MaxSteps",
            data: json!({"reason": "MaxSteps", "message": "10 steps", "stepKey": "1:a"}),
        };
        assert_eq!(ending(Halt::failed("1:a", "MaxSteps", "10 steps")), failed);
    }
}
