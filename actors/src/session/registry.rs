//! `SessionRegistry`: every connection on this node, by connection id, with its user and
//! session — what revocation and shutdown use to find sockets — and the connection limits
//! (per node, per user) enforced before a connection is accepted.
//!
//! It reaches a connection's actor through the two messages it sends ([`CloseConnection`],
//! [`RecheckRoom`], defined here), not by the actor's type: the actor uses the registry (it
//! registers itself, holds its [`Admission`]), so the registry is the floor below it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use actix::{Message, Recipient};
use dashmap::DashMap;

use crate::access::Caller;
use crate::ids::{SessionId, UserId};
use crate::key::RoomKey;

pub use crate::outbound::ConnId;

/// Closes the connection with a code (revocation, shutdown).
#[derive(Message)]
#[rtype(result = "()")]
pub struct CloseConnection {
    pub code: u16,
    pub reason: String,
}

/// Who may be in a room changed: ask again, leave if no longer allowed.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RecheckRoom {
    /// `None`: every room the connection is in (the user's own standing changed).
    pub room: Option<RoomKey>,
}

struct Entry {
    user: UserId,
    session: SessionId,
    close: Recipient<CloseConnection>,
    recheck: Recipient<RecheckRoom>,
}

#[derive(Default)]
struct Inner {
    conns: DashMap<ConnId, Entry>,
    per_user: DashMap<UserId, usize>,
    admitted: AtomicUsize,
    next: AtomicU64,
}

#[derive(Clone, Default)]
pub struct SessionRegistry {
    inner: Arc<Inner>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("this node has reached its connection limit")]
    NodeFull,
    #[error("this user has reached the connection limit")]
    UserFull,
    #[error("this node is shutting down")]
    ShuttingDown,
}

/// A place reserved for one connection; released when dropped (with the connection's actor).
pub struct Admission {
    registry: SessionRegistry,
    user: UserId,
    conn: ConnId,
}

impl Admission {
    pub(crate) fn conn(&self) -> ConnId {
        self.conn
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        let inner = &self.registry.inner;
        inner.admitted.fetch_sub(1, Ordering::AcqRel);
        if let Some(mut count) = inner.per_user.get_mut(&self.user) {
            *count -= 1;
            let zero = *count == 0;
            drop(count);
            if zero {
                inner.per_user.remove_if(&self.user, |_, c| *c == 0);
            }
        }
    }
}

impl SessionRegistry {
    pub(crate) fn admit(
        &self,
        user: UserId,
        per_node: usize,
        per_user: usize,
    ) -> Result<Admission, Refusal> {
        let inner = &self.inner;
        if inner.admitted.fetch_add(1, Ordering::AcqRel) >= per_node {
            inner.admitted.fetch_sub(1, Ordering::AcqRel);
            return Err(Refusal::NodeFull);
        }
        let mut count = inner.per_user.entry(user).or_insert(0);
        if *count >= per_user {
            drop(count);
            inner.admitted.fetch_sub(1, Ordering::AcqRel);
            return Err(Refusal::UserFull);
        }
        *count += 1;
        drop(count);
        Ok(Admission {
            registry: self.clone(),
            user,
            conn: inner.next.fetch_add(1, Ordering::Relaxed),
        })
    }

    /// Adds a started connection: its actor's address, as the two messages sent to it.
    pub(crate) fn register(
        &self,
        conn: ConnId,
        caller: &Caller,
        close: Recipient<CloseConnection>,
        recheck: Recipient<RecheckRoom>,
    ) {
        self.inner.conns.insert(
            conn,
            Entry {
                user: caller.user_id,
                session: caller.session_id,
                close,
                recheck,
            },
        );
    }

    pub(crate) fn unregister(&self, conn: ConnId) {
        self.inner.conns.remove(&conn);
    }

    /// Asks every connection of this node to re-check its access to `room` (those not in it
    /// ignore the message).
    pub(crate) fn recheck(&self, room: &RoomKey) {
        for entry in self.inner.conns.iter() {
            entry.recheck.do_send(RecheckRoom {
                room: Some(room.clone()),
            });
        }
    }

    /// Asks every connection of `user` on this node to re-check all its rooms.
    pub(crate) fn recheck_user(&self, user: UserId) {
        for entry in self.inner.conns.iter().filter(|e| e.user == user) {
            entry.recheck.do_send(RecheckRoom { room: None });
        }
    }

    /// Closes this node's connections that match; returns how many.
    pub(crate) fn close_where(
        &self,
        matches: impl Fn(UserId, SessionId) -> bool,
        code: u16,
        reason: &str,
    ) -> usize {
        let mut closed = 0;
        for entry in self.inner.conns.iter() {
            if matches(entry.user, entry.session) {
                entry.close.do_send(CloseConnection {
                    code,
                    reason: reason.to_owned(),
                });
                closed += 1;
            }
        }
        closed
    }

    pub fn connections(&self) -> usize {
        self.inner.conns.len()
    }

    pub fn users(&self) -> usize {
        self.inner.per_user.len()
    }

    /// Connections admitted and not yet ended (includes ones still starting).
    pub fn admitted(&self) -> usize {
        self.inner.admitted.load(Ordering::Acquire)
    }
}
