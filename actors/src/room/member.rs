//! A room's member and its join: the `JoinRoom` message (and its `JoinError`), what the room
//! keeps of each member, and the join in flight that holds the member's frames until its ack and
//! missed events are written (`join.rs` runs it). Below both the actor and the registry.

use actix::prelude::*;
use bytestring::ByteString;
use serde_json::Value;

use crate::broker::RoomHead;
use crate::ids::UserId;
use crate::outbound::{ConnId, Outbound};
use crate::protocol::Resume;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinError {
    /// The room is stopping (its last member just left): ask the registry again.
    Closing,
    /// The broker could not subscribe.
    Unavailable,
}

#[derive(Message, Clone)]
#[rtype(result = "Result<(), JoinError>")]
pub struct JoinRoom {
    pub conn: ConnId,
    pub user: UserId,
    pub out: Outbound,
    /// The id of the client's join command: the room writes the success ack.
    pub ack: Value,
    pub resume: Option<Resume>,
}

pub(super) struct Member {
    pub(super) user: UserId,
    pub(super) out: Outbound,
    pub(super) last_sent: u64,
    /// Set while the member's join fetches its presence and missed events.
    pub(super) joining: Option<Joining>,
}

/// A join in flight: what it needs to finish, and what arrived for the member meanwhile.
pub(super) struct Joining {
    /// Tells this join from a later one of the same connection (after a leave).
    pub(super) token: u64,
    pub(super) ack: Value,
    /// Acks of further joins of the same connection that came meanwhile: answered alike.
    pub(super) more_acks: Vec<Value>,
    pub(super) resume: Option<Resume>,
    /// The room's head when the member joined: the ack reports it, missed events are before it.
    pub(super) head: RoomHead,
    pub(super) held: Vec<Held>,
}

pub(super) enum Held {
    Frame(Option<u64>, ByteString),
    /// Offsets restarted (new epoch) at this point.
    NewEpoch,
}

impl Member {
    /// Queues a frame for the socket, or holds it while the member is joining. Err: too slow.
    pub(super) fn push(
        &mut self,
        offset: Option<u64>,
        frame: &ByteString,
        hold_max: usize,
    ) -> Result<(), ()> {
        match &mut self.joining {
            Some(joining) if joining.held.len() >= hold_max => Err(()),
            Some(joining) => {
                joining.held.push(Held::Frame(offset, frame.clone()));
                Ok(())
            }
            None => self.out.push_text(frame.clone()).map_err(|_| ()),
        }
    }
}
