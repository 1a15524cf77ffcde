//! Where the walk goes: the node after a node, whether a `wait` is due, what an answer to an
//! approval outputs, and a map's items.
//! Over 400 lines for its unit tests (more than half the file): every branch of each function.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{Halt, Stored};
use crate::routines::graph::{Graph, Kind, Node};
/// Where the walk goes after a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum After {
    Node(String),
    /// Return this node's outputs: the next node is the branch's join, or the graph ends and
    /// declares no outputs.
    Return,
    /// The graph ends: return its declared outputs, picked from the context.
    Outputs,
}

/// The node after `node` (whose outputs are `outputs`) in `graph`, on a walk that stops before
/// `stop_at` (a parallel branch stops before its join).
pub(crate) fn after(graph: &Graph, node: &Node, outputs: &Value, stop_at: Option<&str>) -> After {
    let next = match &node.kind {
        Kind::Decision { .. } => outputs["branch"].as_str(),
        Kind::Parallel { join, .. } => Some(join.as_str()),
        _ => graph.next_of(&node.id).first().copied(),
    };
    match next {
        Some(next) if Some(next) == stop_at => After::Return,
        Some(next) => After::Node(next.to_owned()),
        None if graph.outputs.is_empty() => After::Return,
        None => After::Outputs,
    }
}

/// What a `wait` step does now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Timer {
    /// Begin the step, storing `due`; `sleep` (drop the lease, `run/waiting`) when it is later
    /// than now, else complete it at once.
    Begin { due: DateTime<Utc>, sleep: bool },
    /// Begun before and not due yet (woken early, taken over): drop the lease again.
    Sleep(DateTime<Utc>),
    /// Begun before and due: complete it.
    Due,
}

/// A wait for `duration_ms` (0 when unset) or `until` (now when it does not parse), given its
/// stored status and the `until` stored when it began: the time fixed at the first begin holds.
/// A new wait due more than `max_wait_ms` from now (a snapshot saved under a higher
/// `runs.max_wait_ms`) is refused with why: the step fails, it never overflows.
pub(crate) fn timer(
    stored: Stored,
    stored_until: Option<&str>,
    until: Option<&str>,
    duration_ms: Option<u64>,
    max_wait_ms: u64,
    now: DateTime<Utc>,
) -> Result<Timer, String> {
    let parse = |at: &str| {
        DateTime::parse_from_rfc3339(at)
            .ok()
            .map(|at| at.with_timezone(&Utc))
    };
    match stored_until
        .filter(|_| stored == Stored::InFlight)
        .and_then(parse)
    {
        Some(due) if due > now => Ok(Timer::Sleep(due)),
        Some(_) => Ok(Timer::Due),
        None => {
            let too_long =
                || format!("the wait is longer than {max_wait_ms} ms (runs.max_wait_ms)");
            let most = i64::try_from(max_wait_ms)
                .ok()
                .and_then(chrono::TimeDelta::try_milliseconds)
                .and_then(|most| now.checked_add_signed(most));
            let due = match until {
                Some(until) => parse(until).unwrap_or(now),
                None => i64::try_from(duration_ms.unwrap_or(0))
                    .ok()
                    .and_then(chrono::TimeDelta::try_milliseconds)
                    .and_then(|wait| now.checked_add_signed(wait))
                    .ok_or_else(too_long)?,
            };
            match most {
                Some(most) if due <= most => Ok(Timer::Begin {
                    due,
                    sleep: due > now,
                }),
                _ => Err(too_long()),
            }
        }
    }
}

/// The outputs of an answered approval or input. An approval approves on `{"approved": true}`
/// or a bare `true`, on anything else not; an input outputs its answer as given.
pub(crate) fn answered(kind: &Kind, answer: Value) -> Value {
    match kind {
        Kind::Approval { .. } => {
            let approved = answer
                .get("approved")
                .and_then(Value::as_bool)
                .or(answer.as_bool())
                .unwrap_or(false);
            let comment = answer.get("comment").cloned().unwrap_or(Value::Null);
            json!({"approved": approved, "comment": comment})
        }
        _ => answer,
    }
}

/// A map's items (what `items` found in the context) and how many run at once; a value that is
/// not a list, or more items than `max_items` or `runs.map_max_items` (a map may lower the
/// server's cap, never raise it), fails the run.
pub(crate) fn map_items(
    key: &str,
    items: &str,
    found: Option<Value>,
    max_items: Option<u32>,
    server_max_items: usize,
    max_concurrency: Option<u32>,
) -> Result<(Vec<Value>, usize), Halt> {
    let list = match found {
        Some(Value::Array(list)) => list,
        other => {
            let found = other.map_or("missing".into(), |v| v.to_string());
            let message = format!("{items:?} is not a list ({found})");
            return Err(Halt::failed(key, "MapItems", message));
        }
    };
    let most = max_items.map_or(server_max_items, |m| (m as usize).min(server_max_items));
    if list.len() > most {
        let message = format!("{} items; at most {most} are allowed", list.len());
        return Err(Halt::failed(key, "MaxItems", message));
    }
    let at_once = max_concurrency.map_or(list.len().max(1), |m| m.max(1) as usize);
    Ok((list, at_once))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn graph(outputs: Value) -> Graph {
        serde_json::from_value(json!({
            "start": "a",
            "nodes": [
                {"id": "a", "kind": "decision", "default": "b"},
                {"id": "b", "kind": "parallel", "branches": ["c"], "join": "j"},
                {"id": "c", "kind": "wait"},
                {"id": "j", "kind": "join"},
                {"id": "d", "kind": "wait"},
            ],
            "edges": [{"from": "c", "to": "j"}, {"from": "j", "to": "d"}],
            "outputs": outputs,
        }))
        .expect("a graph")
    }

    fn at(graph: &Graph, id: &str, outputs: Value, stop_at: Option<&str>) -> After {
        after(graph, graph.node(id).unwrap(), &outputs, stop_at)
    }

    #[test]
    fn a_node_goes_to_its_first_edge_a_decision_to_its_branch_a_parallel_to_its_join() {
        let g = graph(json!({}));
        assert_eq!(at(&g, "j", json!({}), None), After::Node("d".into()));
        assert_eq!(
            at(&g, "a", json!({"branch": "b"}), None),
            After::Node("b".into())
        );
        assert_eq!(
            at(&g, "b", json!({"nodes": {}}), None),
            After::Node("j".into())
        );
    }

    #[test]
    fn a_branch_returns_before_its_join() {
        let g = graph(json!({}));
        assert_eq!(at(&g, "c", json!({"x": 1}), Some("j")), After::Return);
        assert_eq!(
            at(&g, "a", json!({"branch": "j"}), Some("j")),
            After::Return
        );
        assert_eq!(
            at(&g, "c", json!({}), Some("elsewhere")),
            After::Node("j".into())
        );
    }

    #[test]
    fn the_graphs_end_returns_its_outputs_or_the_last_nodes() {
        assert_eq!(at(&graph(json!({})), "d", json!({}), None), After::Return);
        let declared = graph(json!({"x": "nodes.c.x"}));
        assert_eq!(at(&declared, "d", json!({}), None), After::Outputs);
        // A decision whose outputs name no branch ends the graph too.
        assert_eq!(at(&declared, "a", json!({}), None), After::Outputs);
    }

    fn now() -> DateTime<Utc> {
        "2030-01-01T00:00:00Z".parse().unwrap()
    }

    fn secs(s: i64) -> DateTime<Utc> {
        now() + chrono::Duration::seconds(s)
    }

    /// A day: the most a wait may last in these tests.
    const DAY_MS: u64 = 24 * 3600 * 1000;

    fn started(
        stored: Stored,
        stored_until: Option<&str>,
        until: Option<&str>,
        duration_ms: Option<u64>,
        now: DateTime<Utc>,
    ) -> Timer {
        timer(stored, stored_until, until, duration_ms, DAY_MS, now).expect("within a day")
    }

    #[test]
    fn a_wait_longer_than_the_most_is_refused_never_overflowing() {
        let refused = |until: Option<&str>, duration: Option<u64>| {
            timer(Stored::New, None, until, duration, DAY_MS, now()).unwrap_err()
        };
        for ms in [DAY_MS + 1, 10u64.pow(17), i64::MAX as u64, u64::MAX] {
            assert_eq!(
                refused(None, Some(ms)),
                "the wait is longer than 86400000 ms (runs.max_wait_ms)"
            );
        }
        let far = secs(24 * 3600 + 1).to_rfc3339();
        refused(Some(&far), None);
        refused(Some("9999-12-31T23:59:59Z"), None);
        let exactly = started(Stored::New, None, None, Some(DAY_MS), now());
        assert_eq!(
            exactly,
            Timer::Begin {
                due: secs(24 * 3600),
                sleep: true
            }
        );
        // A setting beyond what a time can hold refuses rather than overflowing too.
        let huge = timer(Stored::New, None, None, Some(5), u64::MAX, now());
        assert!(huge.is_err(), "{huge:?}");
        // A wait begun before keeps its stored time, whatever it was.
        let stored = "9999-01-01T00:00:00Z";
        let woken = timer(
            Stored::InFlight,
            Some(stored),
            None,
            Some(u64::MAX),
            DAY_MS,
            now(),
        );
        assert_eq!(woken, Ok(Timer::Sleep(stored.parse().unwrap())));
    }

    #[test]
    fn a_new_wait_for_a_duration_sleeps_until_then() {
        let timer = started(Stored::New, None, None, Some(5000), now());
        assert_eq!(
            timer,
            Timer::Begin {
                due: secs(5),
                sleep: true
            }
        );
    }

    #[test]
    fn a_wait_of_nothing_is_done_as_it_begins() {
        for duration in [None, Some(0)] {
            let timer = started(Stored::New, None, None, duration, now());
            assert_eq!(
                timer,
                Timer::Begin {
                    due: now(),
                    sleep: false
                }
            );
        }
    }

    #[test]
    fn a_wait_until_a_time_sleeps_only_if_that_is_to_come() {
        let later = secs(60).to_rfc3339();
        let earlier = secs(-60).to_rfc3339();
        let begin = |until: &str| started(Stored::New, None, Some(until), Some(1), now());
        assert_eq!(
            begin(&later),
            Timer::Begin {
                due: secs(60),
                sleep: true
            }
        );
        assert_eq!(
            begin(&earlier),
            Timer::Begin {
                due: secs(-60),
                sleep: false
            }
        );
        assert_eq!(
            begin("next tuesday"),
            Timer::Begin {
                due: now(),
                sleep: false
            },
            "unreadable: now"
        );
    }

    #[test]
    fn a_begun_wait_keeps_the_time_it_stored() {
        let stored = secs(30).to_rfc3339();
        let woken = started(Stored::InFlight, Some(&stored), None, Some(999_999), now());
        assert_eq!(woken, Timer::Sleep(secs(30)), "woken early: sleeps again");
        let exactly = started(Stored::InFlight, Some(&stored), None, None, secs(30));
        assert_eq!(exactly, Timer::Due, "due at exactly its time");
        let past = started(Stored::InFlight, Some(&stored), None, None, secs(31));
        assert_eq!(past, Timer::Due);
    }

    #[test]
    fn a_stored_time_counts_only_while_the_wait_is_in_flight() {
        let stored = secs(30).to_rfc3339();
        let again = started(Stored::Failed, Some(&stored), None, Some(1000), now());
        assert_eq!(
            again,
            Timer::Begin {
                due: secs(1),
                sleep: true
            }
        );
        let unreadable = started(Stored::InFlight, Some("?"), None, Some(1000), now());
        assert_eq!(
            unreadable,
            Timer::Begin {
                due: secs(1),
                sleep: true
            }
        );
    }

    #[test]
    fn an_approval_approves_on_true_only_and_an_input_is_its_answer() {
        let approval = Kind::Approval {
            message: String::new(),
        };
        let out = |answer| answered(&approval, answer);
        assert_eq!(
            out(json!({"approved": true, "comment": "ok"})),
            json!({"approved": true, "comment": "ok"})
        );
        assert_eq!(out(json!(true)), json!({"approved": true, "comment": null}));
        assert_eq!(out(json!(false))["approved"], false);
        assert_eq!(out(json!("yes"))["approved"], false);
        assert_eq!(out(json!({"approved": "yes"}))["approved"], false);
        let input = Kind::Input {
            fields: vec!["name".into()],
        };
        assert_eq!(
            answered(&input, json!({"name": "Sam"})),
            json!({"name": "Sam"})
        );
    }

    fn reason(result: Result<(Vec<Value>, usize), Halt>) -> &'static str {
        match result {
            Err(Halt::Failed { reason, .. }) => reason,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_map_takes_a_list_of_at_most_max_items() {
        let list = |n: usize| Some(json!(vec![0; n]));
        assert_eq!(
            map_items("k", "i", list(3), Some(3), 10, None),
            Ok((vec![json!(0); 3], 3))
        );
        assert_eq!(
            reason(map_items("k", "i", list(4), Some(3), 10, None)),
            "MaxItems"
        );
        assert!(map_items("k", "i", list(10), None, 10, None).is_ok());
        assert_eq!(
            reason(map_items("k", "i", list(11), None, 10, None)),
            "MaxItems"
        );
    }

    #[test]
    fn a_maps_own_max_items_lowers_the_servers_cap_but_never_raises_it() {
        let list = |n: usize| Some(json!(vec![0; n]));
        let Err(Halt::Failed { message, .. }) = map_items("k", "i", list(11), Some(1000), 10, None)
        else {
            panic!("a map's maxItems of 1000 let 11 items past a cap of 10")
        };
        assert_eq!(message, "11 items; at most 10 are allowed");
        assert!(map_items("k", "i", list(10), Some(1000), 10, None).is_ok());
        assert_eq!(
            reason(map_items("k", "i", list(3), Some(2), 10, None)),
            "MaxItems"
        );
    }

    #[test]
    fn a_map_over_what_is_not_a_list_fails_saying_what_it_found() {
        let Err(Halt::Failed {
            message, reason, ..
        }) = map_items("k", "input.xs", None, None, 10, None)
        else {
            panic!()
        };
        assert_eq!(
            (reason, message.as_str()),
            ("MapItems", "\"input.xs\" is not a list (missing)")
        );
        assert_eq!(reason_of_object(), "MapItems");
    }

    fn reason_of_object() -> &'static str {
        reason(map_items("k", "i", Some(json!({"a": 1})), None, 10, None))
    }

    #[test]
    fn a_maps_items_run_all_at_once_unless_limited_and_at_least_one_at_a_time() {
        let list = Some(json!([1, 2, 3, 4]));
        assert_eq!(
            map_items("k", "i", list.clone(), None, 10, None).unwrap().1,
            4
        );
        assert_eq!(
            map_items("k", "i", list.clone(), None, 10, Some(2))
                .unwrap()
                .1,
            2
        );
        assert_eq!(map_items("k", "i", list, None, 10, Some(0)).unwrap().1, 1);
        assert_eq!(
            map_items("k", "i", Some(json!([])), None, 10, None)
                .unwrap()
                .1,
            1
        );
    }
}
