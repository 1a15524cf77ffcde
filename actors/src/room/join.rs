//! Joining a room without holding it up: the member is added at once, marked "joining"; the
//! room keeps delivering to everyone else and holds this member's frames; a spawned fetch reads
//! the presence and (for a resume) the missed events; then [`RoomActor::finish_join`] writes the
//! ack, the missed events and the held frames, in that order, and the member is live.
//!
//! ```text
//! JoinRoom ─▶ Member { joining: Some(held = []) } ─▶ Ok(()) to the registry at once
//!     spawn: set_presence, presence, history(after resume) ─▶ finish_join
//! live events meanwhile ─▶ held (at most `join_buffer`, else dropped as slow)
//! finish_join ─▶ ack (+ acks of repeated joins) ─▶ missed ─▶ held (offsets deduplicated)
//! ```

use actix::prelude::*;

use super::actor::RoomActor;
use super::member::{Held, JoinError, JoinRoom, Joining, Member};
use crate::broker::{BrokerError, History};
use crate::ids::UserId;
use crate::outbound::ConnId;
use crate::protocol;

impl RoomActor {
    /// Fetches what a joining member needs (presence, missed events), then finishes its join.
    pub(super) fn fetch_for_join(
        &mut self,
        conn: ConnId,
        first_of_user: bool,
        ctx: &mut Context<Self>,
    ) {
        let Some(member) = self.members.get(&conn) else {
            return;
        };
        let Some(joining) = &member.joining else {
            return;
        };
        let broker = self.deps.broker.clone();
        let key = self.key.clone();
        let head = joining.head.clone();
        let resume = joining.resume.clone();
        let token = joining.token;
        let arriving = first_of_user.then_some(member.user);
        let fetch = async move {
            if let Some(user) = arriving
                && let Err(error) = broker.set_presence(&key, user, true).await
            {
                tracing::debug!(%error, "presence not updated");
            }
            let online = broker.presence(&key).await.unwrap_or_default();
            let history = match &resume {
                Some(r) if *r.epoch == *head.epoch && r.offset < head.offset => {
                    Some(broker.history(&key, r.offset).await)
                }
                _ => None,
            };
            (online, history)
        };
        ctx.spawn(
            fetch
                .into_actor(self)
                .map(move |(online, history), act, _| {
                    act.finish_join(conn, token, &online, history);
                }),
        );
    }

    /// Writes the join's ack, the missed events and what was held meanwhile; the member is live.
    fn finish_join(
        &mut self,
        conn: ConnId,
        token: u64,
        online: &[UserId],
        history: Option<Result<History, BrokerError>>,
    ) {
        let Some(member) = self.members.get_mut(&conn) else {
            return; // left meanwhile
        };
        if member.joining.as_ref().map(|j| j.token) != Some(token) {
            return; // a later join of this connection took its place
        }
        let Some(joining) = member.joining.take() else {
            return;
        };
        let head = &joining.head;
        let mut missed = Vec::new();
        let recovered = match (&joining.resume, history) {
            (None, _) => None,
            (Some(r), _) if *r.epoch != *head.epoch => Some(false),
            (Some(r), None) => {
                member.last_sent = member.last_sent.max(r.offset.min(head.offset));
                Some(true)
            }
            (Some(_), Some(Ok(h))) if h.complete && h.head.epoch == head.epoch => {
                missed = h.events;
                Some(true)
            }
            (Some(_), Some(_)) => Some(false),
        };
        if let Some(last) = missed.last().and_then(|d| d.offset) {
            member.last_sent = last.max(head.offset);
        }
        let data =
            protocol::join_ack_data(&self.key, &head.epoch, member.last_sent, recovered, online);
        let mut ok = true;
        for ack in std::iter::once(&joining.ack).chain(&joining.more_acks) {
            ok = ok
                && member
                    .out
                    .push_text(protocol::ack_ok(ack, Some(data.clone())))
                    .is_ok();
        }
        for event in &missed {
            ok = ok && member.out.push_text(event.frame.clone()).is_ok();
        }
        for held in joining.held {
            match held {
                Held::NewEpoch => member.last_sent = 0,
                Held::Frame(Some(offset), _) if offset <= member.last_sent => {}
                Held::Frame(offset, frame) => {
                    if let Some(offset) = offset {
                        member.last_sent = offset;
                    }
                    ok = ok && member.out.push_text(frame).is_ok();
                }
            }
        }
        if !ok {
            self.remove_member(conn);
        }
    }
}

impl Handler<JoinRoom> for RoomActor {
    type Result = Result<(), JoinError>;

    fn handle(&mut self, join: JoinRoom, ctx: &mut Self::Context) -> Self::Result {
        if self.closing {
            return Err(JoinError::Closing);
        }
        let Some(order) = &self.order else {
            return Err(JoinError::Unavailable);
        };
        let head = order.head().clone();
        if let Some(joining) = self
            .members
            .get_mut(&join.conn)
            .and_then(|m| m.joining.as_mut())
        {
            // Joined again before the first join finished: answered with it.
            joining.more_acks.push(join.ack);
            return Ok(());
        }
        let user = join.user;
        let first_of_user =
            !self.users.contains_key(&user) && !self.members.contains_key(&join.conn);
        if let Some(old) = self.members.remove(&join.conn) {
            // Joining again: same connection, replaced below.
            if let Some(count) = self.users.get_mut(&old.user) {
                *count -= 1;
            }
        }
        *self.users.entry(user).or_insert(0) += 1;
        self.next_join += 1;
        self.members.insert(
            join.conn,
            Member {
                user,
                out: join.out,
                last_sent: head.offset,
                joining: Some(Joining {
                    token: self.next_join,
                    ack: join.ack,
                    more_acks: Vec::new(),
                    resume: join.resume,
                    head,
                    held: Vec::new(),
                }),
            },
        );
        if first_of_user {
            self.deps.presence.joined(&self.key, user);
        }
        self.fetch_for_join(join.conn, first_of_user, ctx);
        Ok(())
    }
}
