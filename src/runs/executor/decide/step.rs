//! One step's decisions: how it runs given what is stored, and what follows each attempt of
//! its work (complete, retry after a backoff, fail, or stop).

use std::collections::BTreeMap;
use std::time::Duration;

use vrooli_actors::StopReason;

use super::{Halt, Stored, halted};
use crate::routines::graph::{Effect, Kind, Node, Retry, action_writes};
use crate::runs::nodes::StepFailure;

/// How a step that has no stored result is run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Entry<'a> {
    /// Its skip condition holds: stored Skipped, outputs `{}`.
    Skip,
    /// A join: its branches are done (the parallel waited for them). `begin`: its row is not
    /// InProgress yet (here and below).
    Join { begin: bool },
    /// A wait: [`super::timer`] says when it is done.
    Wait {
        duration_ms: Option<u64>,
        until: Option<&'a str>,
    },
    /// An approval or input: done when answered.
    Ask { begin: bool },
    /// A child walk of the routine version's snapshot, with these inputs (templates).
    Subroutine {
        begin: bool,
        version_id: &'a str,
        inputs: &'a BTreeMap<String, String>,
    },
    /// It may have had its effect before its owner died: a person retries or skips it.
    Halt(Halt),
    /// Attempts of its work (http, llm, decision, code, action) under this policy.
    Work(Retry),
}

/// One attempt and no backoff: a node without a `retry`.
pub(crate) const ONE_ATTEMPT: Retry = Retry {
    max_attempts: 1,
    backoff_ms: 0,
};

/// How `node` runs, given its stored status and whether its skip condition holds. Only an
/// effect that may not be repeated pauses: llm, idempotent http, code and reading actions run
/// again with the same step key.
pub(crate) fn enter(node: &Node, stored: Stored, skip: bool) -> Entry<'_> {
    let in_flight = stored == Stored::InFlight;
    if skip {
        return Entry::Skip;
    }
    let begin = stored.begins();
    match &node.kind {
        Kind::Join { .. } => Entry::Join { begin },
        Kind::Wait { duration_ms, until } => Entry::Wait {
            duration_ms: *duration_ms,
            until: until.as_deref(),
        },
        Kind::Approval { .. } | Kind::Input { .. } => Entry::Ask { begin },
        Kind::Subroutine { version_id, inputs } => Entry::Subroutine {
            begin,
            version_id,
            inputs,
        },
        Kind::Http {
            effect: Effect::NonIdempotent,
            ..
        } if in_flight => Entry::Halt(Halt::Paused("UncertainStep")),
        Kind::Action { tool, input, .. } if in_flight && action_writes(tool, input.as_ref()) => {
            Entry::Halt(Halt::Paused("UncertainStep"))
        }
        _ => Entry::Work(node.retry.unwrap_or(ONE_ATTEMPT)),
    }
}

/// How long one attempt may take: the node's `timeoutMs`, else `runs.step_timeout`.
pub(crate) fn attempt_timeout(timeout_ms: Option<u64>, default: Duration) -> Duration {
    timeout_ms.map_or(default, Duration::from_millis)
}

/// An attempt that ran past its timeout: worth another one.
pub(crate) fn timed_out(timeout: Duration) -> StepFailure {
    StepFailure::retryable(
        "StepTimeout",
        format!("took longer than {} ms", timeout.as_millis()),
    )
}

/// What follows one attempt of a step's work; `T` is what the work returned.
#[derive(Debug)]
pub(crate) enum AfterAttempt<T> {
    /// The run was stopped meanwhile: nothing is stored. A cancel releases the step's hold
    /// (nothing was finished, nothing is charged); a lost lease or a shutdown keeps it for the
    /// node that takes over under the same key.
    Stop { halt: Halt, release_hold: bool },
    /// Store the outputs and the debit.
    Complete(T),
    /// `step/retrying`, sleep `delay_ms` (a cancel cuts it short), the boundary, then again.
    Retry { delay_ms: u64, failure: StepFailure },
    /// Store the step Failed, fail the run; `release_hold` when the step held credits.
    Fail {
        failure: StepFailure,
        release_hold: bool,
    },
}

/// After attempt number `attempt` (1 for the first; the step row counts them, across
/// takeovers too) of a step under `retry`, which held credits when `held`.
pub(crate) fn after_attempt<T>(
    stopped: Option<StopReason>,
    result: Result<T, StepFailure>,
    attempt: i32,
    retry: Retry,
    held: bool,
) -> AfterAttempt<T> {
    if let Some(halt) = halted(stopped) {
        let release_hold = held && halt == Halt::Cancelled;
        return AfterAttempt::Stop { halt, release_hold };
    }
    match result {
        Ok(done) => AfterAttempt::Complete(done),
        Err(failure) if failure.retryable && (attempt as u32) < retry.max_attempts => {
            AfterAttempt::Retry {
                delay_ms: backoff_ms(retry, attempt),
                failure,
            }
        }
        Err(failure) => AfterAttempt::Fail {
            failure,
            release_hold: held,
        },
    }
}

/// The sleep before the attempt after `attempt`: `backoffMs`, doubled per attempt after the
/// first, at most 2^16 times, saturating.
pub(crate) fn backoff_ms(retry: Retry, attempt: i32) -> u64 {
    retry
        .backoff_ms
        .saturating_mul(1 << (attempt - 1).clamp(0, 16))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn node(value: serde_json::Value) -> Node {
        serde_json::from_value(value).expect("a node")
    }

    fn http(effect: &str) -> Node {
        node(json!({"id": "call", "kind": "http", "url": "https://x.example", "effect": effect}))
    }

    #[test]
    fn a_step_whose_skip_condition_holds_is_skipped_whatever_it_is() {
        assert_eq!(
            enter(&http("non-idempotent"), Stored::InFlight, true),
            Entry::Skip
        );
        let wait = node(json!({"id": "w", "kind": "wait", "durationMs": 5}));
        assert_eq!(enter(&wait, Stored::New, true), Entry::Skip);
    }

    #[test]
    fn joins_approvals_and_subroutines_begin_unless_in_flight() {
        let join = node(json!({"id": "j", "kind": "join"}));
        let approval = node(json!({"id": "a", "kind": "approval"}));
        let input = node(json!({"id": "i", "kind": "input", "fields": ["x"]}));
        let child = node(json!({"id": "s", "kind": "subroutine", "versionId": "7",
                                "inputs": {"x": "{{input.x}}"}}));
        let child_inputs = [("x".to_owned(), "{{input.x}}".to_owned())].into();
        for (stored, begin) in [
            (Stored::New, true),
            (Stored::Failed, true),
            (Stored::InFlight, false),
        ] {
            assert_eq!(enter(&join, stored, false), Entry::Join { begin });
            assert_eq!(enter(&approval, stored, false), Entry::Ask { begin });
            assert_eq!(enter(&input, stored, false), Entry::Ask { begin });
            let subroutine = Entry::Subroutine {
                begin,
                version_id: "7",
                inputs: &child_inputs,
            };
            assert_eq!(enter(&child, stored, false), subroutine);
        }
    }

    #[test]
    fn a_wait_is_left_to_its_timer() {
        let wait = node(json!({"id": "w", "kind": "wait", "durationMs": 5}));
        let timer = Entry::Wait {
            duration_ms: Some(5),
            until: None,
        };
        assert_eq!(enter(&wait, Stored::InFlight, false), timer);
    }

    #[test]
    fn a_non_idempotent_http_step_in_flight_pauses_as_uncertain() {
        let call = http("non-idempotent");
        let entry = enter(&call, Stored::InFlight, false);
        assert_eq!(entry, Entry::Halt(Halt::Paused("UncertainStep")));
    }

    #[test]
    fn a_non_idempotent_http_step_not_in_flight_runs() {
        // New, or Failed and resumed by a person: run again on purpose.
        let call = http("non-idempotent");
        for stored in [Stored::New, Stored::Failed] {
            let entry = enter(&call, stored, false);
            assert_eq!(entry, Entry::Work(ONE_ATTEMPT));
        }
    }

    #[test]
    fn an_idempotent_step_in_flight_runs_again_under_its_retry_policy() {
        assert_eq!(
            enter(&http("idempotent"), Stored::InFlight, false),
            Entry::Work(ONE_ATTEMPT)
        );
        let llm = node(json!({"id": "l", "kind": "llm", "prompt": "hi",
                              "retry": {"maxAttempts": 3, "backoffMs": 20}}));
        let retry = Retry {
            max_attempts: 3,
            backoff_ms: 20,
        };
        assert_eq!(enter(&llm, Stored::InFlight, false), Entry::Work(retry));
    }

    #[test]
    fn an_action_in_flight_pauses_when_it_writes_and_runs_again_when_it_reads() {
        let send = node(json!({"id": "s", "kind": "action", "tool": "send_message"}));
        let find = node(
            json!({"id": "f", "kind": "action", "tool": "resource_manage",
                               "input": {"op": "find"}}),
        );
        let uncertain = Entry::Halt(Halt::Paused("UncertainStep"));
        assert_eq!(enter(&send, Stored::InFlight, false), uncertain);
        assert_eq!(enter(&send, Stored::New, false), Entry::Work(ONE_ATTEMPT));
        assert_eq!(
            enter(&find, Stored::InFlight, false),
            Entry::Work(ONE_ATTEMPT)
        );
    }

    #[test]
    fn an_attempt_may_take_the_nodes_timeout_else_the_default() {
        let default = Duration::from_secs(30);
        assert_eq!(attempt_timeout(None, default), default);
        assert_eq!(
            attempt_timeout(Some(250), default),
            Duration::from_millis(250)
        );
        let failure = timed_out(Duration::from_millis(250));
        assert!(failure.retryable);
        assert_eq!(failure.reason, "StepTimeout");
        assert_eq!(failure.message, "took longer than 250 ms");
    }

    const THREE: Retry = Retry {
        max_attempts: 3,
        backoff_ms: 100,
    };

    fn name<T>(after: &AfterAttempt<T>) -> String {
        match after {
            AfterAttempt::Stop { halt, release_hold } => format!("stop {halt:?} {release_hold}"),
            AfterAttempt::Complete(_) => "complete".into(),
            AfterAttempt::Retry { delay_ms, .. } => format!("retry {delay_ms}"),
            AfterAttempt::Fail { release_hold, .. } => format!("fail {release_hold}"),
        }
    }

    fn flaky() -> Result<(), StepFailure> {
        Err(StepFailure::retryable("ModelError", "503"))
    }

    #[test]
    fn a_successful_attempt_completes_with_what_it_returned() {
        let after = after_attempt(None, Ok(7), 1, THREE, true);
        assert!(matches!(after, AfterAttempt::Complete(7)));
    }

    #[test]
    fn a_retryable_failure_before_the_last_attempt_retries_after_its_backoff() {
        let after = after_attempt(None, flaky(), 1, THREE, true);
        assert_eq!(name(&after), "retry 100");
        let AfterAttempt::Retry { failure, .. } = after else {
            unreachable!()
        };
        assert_eq!(failure.message, "503", "step/retrying says why");
        assert_eq!(
            name(&after_attempt(None, flaky(), 2, THREE, true)),
            "retry 200"
        );
    }

    #[test]
    fn the_last_attempt_fails_the_step_and_releases_its_hold() {
        assert_eq!(
            name(&after_attempt(None, flaky(), 3, THREE, true)),
            "fail true"
        );
        assert_eq!(
            name(&after_attempt(None, flaky(), 3, THREE, false)),
            "fail false"
        );
        // Takeovers count attempts too: past the policy is past it.
        assert_eq!(
            name(&after_attempt(None, flaky(), 4, THREE, false)),
            "fail false"
        );
    }

    #[test]
    fn without_a_policy_the_first_failure_is_the_last() {
        assert_eq!(
            name(&after_attempt(None, flaky(), 1, ONE_ATTEMPT, false)),
            "fail false"
        );
    }

    #[test]
    fn a_permanent_failure_is_never_retried() {
        let permanent: Result<(), _> = Err(StepFailure::permanent("MissingOutput", "x"));
        assert_eq!(
            name(&after_attempt(None, permanent, 1, THREE, true)),
            "fail true"
        );
    }

    #[test]
    fn a_stop_during_the_attempt_wins_over_its_result() {
        let cancelled = Some(StopReason::Cancelled);
        let after = after_attempt(cancelled, Ok(()), 1, THREE, true);
        assert_eq!(
            name(&after),
            "stop Cancelled true",
            "a cancel charges nothing"
        );
        let after = after_attempt(cancelled, flaky(), 1, THREE, false);
        assert_eq!(
            name(&after),
            "stop Cancelled false",
            "no hold, nothing to release"
        );
        // The node that takes over settles the same key: the hold stays.
        let after = after_attempt(Some(StopReason::Fenced), flaky(), 1, THREE, true);
        assert_eq!(name(&after), "stop Fenced false");
        let after = after_attempt(Some(StopReason::Shutdown), Ok(()), 1, THREE, true);
        assert_eq!(name(&after), "stop Shutdown false");
    }

    #[test]
    fn backoff_doubles_per_attempt_up_to_two_to_the_sixteenth() {
        assert_eq!(backoff_ms(THREE, 1), 100);
        assert_eq!(backoff_ms(THREE, 2), 200);
        assert_eq!(backoff_ms(THREE, 3), 400);
        assert_eq!(backoff_ms(THREE, 17), 100 << 16);
        assert_eq!(backoff_ms(THREE, 40), 100 << 16, "capped");
        assert_eq!(backoff_ms(THREE, 0), 100, "never below the base");
        let huge = Retry {
            max_attempts: 9,
            backoff_ms: u64::MAX / 2,
        };
        assert_eq!(backoff_ms(huge, 3), u64::MAX, "saturates");
        assert_eq!(backoff_ms(ONE_ATTEMPT, 5), 0);
    }
}
