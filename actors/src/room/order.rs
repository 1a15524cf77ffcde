//! The room's ordering state machine, without actors or I/O: what to send, in which order, and
//! when to give up on a missing event.
//!
//! ```text
//! offer(event) ──▶ offset = head+1 ──▶ Send, then every pending one that is next
//!              ──▶ offset > head+1 ──▶ pending (the caller fetches the history after head)
//!              ──▶ offset ≤ head   ──▶ dropped (duplicate)
//!              ──▶ new epoch       ──▶ NewEpoch + Gap(from, open end), offsets restart
//! history(h)   ──▶ fill pending from it; what it no longer holds ──▶ Gap(from, to)
//! give_up()    ──▶ Gap up to the first pending event, then deliver from there
//! ```
//!
//! The actor (`actor.rs`) feeds it events and history answers and carries out the [`Step`]s:
//! `Send` to members, `Gap` as a `room/gap` notice, `NewEpoch` by forgetting what each member
//! was sent. Keeping this pure lets the unit tests below drive every ordering case directly.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::broker::{History, RoomHead};
use crate::event::Delivery;

/// What the actor must do, in order.
#[derive(Debug)]
pub(crate) enum Step {
    /// Deliver this event to the members.
    Send(Delivery),
    /// Events `from..=to` (open-ended when `to` is `None`) of `epoch` are lost: tell the members.
    Gap {
        epoch: Arc<str>,
        from: u64,
        to: Option<u64>,
    },
    /// Offsets restarted under a new epoch (Redis lost the room's state).
    NewEpoch,
}

/// The room's head (epoch, last offset delivered) and the events that wait for a missing one.
#[derive(Debug)]
pub(crate) struct Order {
    head: RoomHead,
    pending: BTreeMap<u64, Delivery>,
    /// More waiting events than this and the room gives up on the missing ones.
    max_pending: usize,
}

impl Order {
    pub(crate) fn new(head: RoomHead, max_pending: usize) -> Self {
        Self {
            head,
            pending: BTreeMap::new(),
            max_pending,
        }
    }

    pub(crate) fn head(&self) -> &RoomHead {
        &self.head
    }

    /// Forgets the waiting events (after a restart, which refetches them).
    pub(crate) fn clear_pending(&mut self) {
        self.pending.clear();
    }

    /// Takes an event with an offset. Returns true when events are missing before the waiting
    /// ones, so the caller should fetch the history after [`Order::head`].
    pub(crate) fn offer(&mut self, delivery: Delivery, steps: &mut Vec<Step>) -> bool {
        let Some(offset) = delivery.offset else {
            steps.push(Step::Send(delivery)); // volatile: no place in the order
            return false;
        };
        if let Some(epoch) = &delivery.epoch
            && **epoch != *self.head.epoch
        {
            let from = self.head.offset + 1;
            self.head = RoomHead {
                epoch: epoch.clone(),
                offset: 0,
            };
            self.pending.clear();
            steps.push(Step::NewEpoch);
            steps.push(self.gap(from, None));
        }
        if offset <= self.head.offset {
            return !self.pending.is_empty(); // already delivered
        }
        self.pending.insert(offset, delivery);
        self.drain(steps);
        if self.pending.len() > self.max_pending {
            self.give_up(steps);
        }
        !self.pending.is_empty()
    }

    /// Gives up on the events missing before the first waiting one.
    pub(crate) fn give_up(&mut self, steps: &mut Vec<Step>) {
        if let Some(&first) = self.pending.keys().next() {
            steps.push(self.gap(self.head.offset + 1, Some(first - 1)));
            self.head.offset = first - 1;
            self.drain(steps);
        }
    }

    /// Takes the broker's answer to "events after head": fills what it can, reports the rest.
    pub(crate) fn apply_history(&mut self, history: History, steps: &mut Vec<Step>) {
        if history.head.epoch != self.head.epoch {
            let from = self.head.offset + 1;
            self.head = RoomHead {
                epoch: history.head.epoch.clone(),
                offset: 0,
            };
            self.pending
                .retain(|_, d| d.epoch.as_deref() == Some(&*history.head.epoch));
            steps.push(Step::NewEpoch);
            steps.push(self.gap(from, None));
        }
        let known_up_to = history.head.offset;
        for event in history.events {
            if let Some(offset) = event.offset {
                self.pending.entry(offset).or_insert(event);
            }
        }
        let next = self.head.offset + 1;
        match self.pending.keys().next().copied() {
            Some(first) if first > next => {
                steps.push(self.gap(next, Some(first - 1)));
                self.head.offset = first - 1;
            }
            None if known_up_to >= next => {
                // The history holds nothing of what was missed.
                steps.push(self.gap(next, Some(known_up_to)));
                self.head.offset = known_up_to;
            }
            _ => {}
        }
        self.drain(steps);
    }

    /// Sends waiting events while they are the next in order.
    fn drain(&mut self, steps: &mut Vec<Step>) {
        while let Some(entry) = self.pending.first_entry() {
            let next = self.head.offset + 1;
            if *entry.key() < next {
                entry.remove();
                continue;
            }
            if *entry.key() != next {
                return;
            }
            steps.push(Step::Send(entry.remove()));
            self.head.offset = next;
        }
    }

    fn gap(&self, from: u64, to: Option<u64>) -> Step {
        Step::Gap {
            epoch: self.head.epoch.clone(),
            from,
            to,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::RoomKey;

    fn event(epoch: &str, offset: u64) -> Delivery {
        Delivery {
            room: RoomKey::chat("1").unwrap(),
            offset: Some(offset),
            epoch: Some(epoch.into()),
            timestamp_ms: 0,
            frame: format!("{epoch}:{offset}").into(),
        }
    }

    fn head(epoch: &str, offset: u64) -> RoomHead {
        RoomHead {
            epoch: epoch.into(),
            offset,
        }
    }

    /// The steps as short strings: `send 3`, `gap 2..=4`, `gap 1..`, `epoch`.
    fn names(steps: &[Step]) -> Vec<String> {
        steps
            .iter()
            .map(|s| match s {
                Step::Send(d) => format!("send {}", d.offset.map_or(-1, |o| o as i64)),
                Step::Gap {
                    from, to: Some(to), ..
                } => format!("gap {from}..={to}"),
                Step::Gap { from, to: None, .. } => format!("gap {from}.."),
                Step::NewEpoch => "epoch".into(),
            })
            .collect()
    }

    #[test]
    fn in_order_events_go_out_at_once() {
        let mut order = Order::new(head("a", 5), 10);
        let mut steps = Vec::new();
        assert!(!order.offer(event("a", 6), &mut steps));
        assert!(!order.offer(event("a", 7), &mut steps));
        assert_eq!(names(&steps), ["send 6", "send 7"]);
        assert_eq!(order.head().offset, 7);
    }

    #[test]
    fn duplicates_are_dropped() {
        let mut order = Order::new(head("a", 5), 10);
        let mut steps = Vec::new();
        assert!(!order.offer(event("a", 5), &mut steps));
        assert!(!order.offer(event("a", 3), &mut steps));
        assert!(steps.is_empty());
    }

    #[test]
    fn a_later_event_waits_for_the_missing_one() {
        let mut order = Order::new(head("a", 5), 10);
        let mut steps = Vec::new();
        assert!(
            order.offer(event("a", 8), &mut steps),
            "asks for the history"
        );
        assert!(order.offer(event("a", 7), &mut steps));
        assert!(steps.is_empty());
        assert!(
            !order.offer(event("a", 6), &mut steps),
            "nothing missing any more"
        );
        assert_eq!(names(&steps), ["send 6", "send 7", "send 8"]);
    }

    #[test]
    fn too_many_waiting_events_give_up_on_the_missing_ones() {
        let mut order = Order::new(head("a", 0), 2);
        let mut steps = Vec::new();
        order.offer(event("a", 3), &mut steps);
        order.offer(event("a", 4), &mut steps);
        assert!(!order.offer(event("a", 5), &mut steps));
        assert_eq!(names(&steps), ["gap 1..=2", "send 3", "send 4", "send 5"]);
    }

    #[test]
    fn history_fills_the_hole() {
        let mut order = Order::new(head("a", 5), 10);
        let mut steps = Vec::new();
        order.offer(event("a", 8), &mut steps);
        let history = History {
            head: head("a", 8),
            events: vec![event("a", 6), event("a", 7), event("a", 8)],
            complete: true,
        };
        order.apply_history(history, &mut steps);
        assert_eq!(names(&steps), ["send 6", "send 7", "send 8"]);
    }

    #[test]
    fn what_the_history_no_longer_holds_is_a_gap() {
        let mut order = Order::new(head("a", 5), 10);
        let mut steps = Vec::new();
        order.offer(event("a", 9), &mut steps);
        let history = History {
            head: head("a", 9),
            events: vec![event("a", 8), event("a", 9)],
            complete: false,
        };
        order.apply_history(history, &mut steps);
        assert_eq!(names(&steps), ["gap 6..=7", "send 8", "send 9"]);
    }

    #[test]
    fn an_empty_history_behind_the_head_is_a_gap_to_the_head() {
        let mut order = Order::new(head("a", 5), 10);
        let mut steps = Vec::new();
        let history = History {
            head: head("a", 9),
            events: vec![],
            complete: false,
        };
        order.apply_history(history, &mut steps);
        assert_eq!(names(&steps), ["gap 6..=9"]);
        assert_eq!(order.head().offset, 9);
    }

    #[test]
    fn a_new_epoch_restarts_offsets_with_an_open_gap() {
        let mut order = Order::new(head("a", 5), 10);
        let mut steps = Vec::new();
        order.offer(event("a", 7), &mut steps);
        assert!(!order.offer(event("b", 1), &mut steps));
        assert_eq!(names(&steps), ["epoch", "gap 6..", "send 1"]);
        let Step::Gap { epoch, .. } = &steps[1] else {
            unreachable!()
        };
        assert_eq!(&**epoch, "b", "the gap notice names the new epoch");
        assert_eq!(&*order.head().epoch, "b");
    }

    #[test]
    fn history_of_a_new_epoch_keeps_only_that_epochs_events() {
        let mut order = Order::new(head("a", 5), 10);
        let mut steps = Vec::new();
        order.offer(event("a", 7), &mut steps);
        let history = History {
            head: head("b", 2),
            events: vec![event("b", 1), event("b", 2)],
            complete: true,
        };
        order.apply_history(history, &mut steps);
        assert_eq!(names(&steps), ["epoch", "gap 6..", "send 1", "send 2"]);
    }

    #[test]
    fn volatile_events_pass_straight_through() {
        let mut order = Order::new(head("a", 5), 10);
        let mut steps = Vec::new();
        let mut typing = event("a", 0);
        typing.offset = None;
        order.offer(event("a", 9), &mut steps);
        assert!(
            !order.offer(typing, &mut steps),
            "volatile events never ask for history"
        );
        assert_eq!(names(&steps), ["send -1"]);
    }
}
