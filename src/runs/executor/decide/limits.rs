//! The run's limits before a step: steps taken, time spent in steps, credits with the step's
//! hold (`runs/limits.rs` says where they come from).

use super::{Halt, Stored};
use crate::runs::limits::RunLimits;

/// What a run has used so far (`store::usage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RunUsage {
    pub credits: i64,
    pub steps: i64,
    /// Milliseconds inside steps that do work (waits for time or people do not count).
    pub active_ms: i64,
}

/// The run's limits before step `key`, which may spend up to `hold` credits. A step already
/// begun (a wait resuming, a takeover, a retry after Failed) was counted when it began.
pub(crate) fn limits(
    key: &str,
    limits: RunLimits,
    used: RunUsage,
    hold: i64,
    stored: Stored,
) -> Option<Halt> {
    if stored == Stored::New && used.steps >= limits.max_steps {
        let message = format!(
            "{} steps taken; the limit is {}",
            used.steps, limits.max_steps
        );
        return Some(Halt::failed(key, "MaxSteps", message));
    }
    if used.active_ms >= limits.max_time_ms {
        let message = format!(
            "{} ms in steps; the limit is {}",
            used.active_ms, limits.max_time_ms
        );
        return Some(Halt::failed(key, "MaxTime", message));
    }
    // Paused, not failed: resumed with higher limits, the run goes on.
    (used.credits.saturating_add(hold) > limits.max_credits).then_some(Halt::Paused("MaxCredits"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: RunLimits = RunLimits {
        max_credits: 100,
        max_steps: 10,
        max_time_ms: 1000,
    };

    fn used(credits: i64, steps: i64, active_ms: i64) -> RunUsage {
        RunUsage {
            credits,
            steps,
            active_ms,
        }
    }

    fn reason(halt: Option<Halt>) -> Option<&'static str> {
        halt.map(|h| match h {
            Halt::Failed { reason, .. } | Halt::Paused(reason) => reason,
            other => panic!("not a limit: {other:?}"),
        })
    }

    #[test]
    fn under_every_limit_a_step_runs() {
        assert_eq!(limits("k", LIMITS, used(50, 9, 999), 50, Stored::New), None);
    }

    #[test]
    fn a_new_step_at_exactly_max_steps_fails_the_run_naming_the_step() {
        let halt = limits("run:a", LIMITS, used(0, 10, 0), 0, Stored::New);
        let Some(Halt::Failed {
            step,
            reason,
            message,
        }) = halt
        else {
            panic!("{halt:?}")
        };
        assert_eq!((step.as_str(), reason), ("run:a", "MaxSteps"));
        assert_eq!(message, "10 steps taken; the limit is 10");
    }

    #[test]
    fn a_step_begun_before_is_not_counted_again() {
        for stored in [Stored::InFlight, Stored::Failed] {
            assert_eq!(limits("k", LIMITS, used(0, 10, 0), 0, stored), None);
        }
    }

    #[test]
    fn time_in_steps_at_exactly_the_limit_fails_the_run() {
        assert_eq!(
            reason(limits("k", LIMITS, used(0, 0, 999), 0, Stored::InFlight)),
            None
        );
        let at = limits("k", LIMITS, used(0, 0, 1000), 0, Stored::InFlight);
        assert_eq!(reason(at), Some("MaxTime"));
    }

    #[test]
    fn steps_are_checked_before_time_and_time_before_credits() {
        let all = used(1000, 10, 1000);
        assert_eq!(
            reason(limits("k", LIMITS, all, 0, Stored::New)),
            Some("MaxSteps")
        );
        assert_eq!(
            reason(limits("k", LIMITS, all, 0, Stored::InFlight)),
            Some("MaxTime")
        );
    }

    #[test]
    fn credits_may_reach_the_limit_but_not_pass_it_and_that_pauses() {
        assert_eq!(limits("k", LIMITS, used(60, 0, 0), 40, Stored::New), None);
        let over = limits("k", LIMITS, used(60, 0, 0), 41, Stored::New);
        assert_eq!(over, Some(Halt::Paused("MaxCredits")));
        let already = limits("k", LIMITS, used(101, 0, 0), 0, Stored::New);
        assert_eq!(already, Some(Halt::Paused("MaxCredits")));
    }

    #[test]
    fn unlimited_runs_never_overflow() {
        let none = RunLimits {
            max_credits: i64::MAX,
            max_steps: i64::MAX,
            max_time_ms: i64::MAX,
        };
        assert_eq!(
            limits("k", none, used(i64::MAX - 1, 5, 5), 10, Stored::New),
            None
        );
    }
}
