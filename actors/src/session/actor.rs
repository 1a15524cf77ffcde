//! `SessionActor`: one per WebSocket connection.
//!
//! ```text
//! client frames ─▶ (aggregated, size-limited stream) ─▶ SessionActor ─▶ parse once ─▶ Command
//!                                                         │ join/leave ─▶ RoomRegistry ─▶ RoomActor
//!                                                         │ acks, pongs ─▶ Outbound ─▶ socket
//! CloseConnection (revocation, shutdown) ─────────────────┘
//! ```
//!
//! The client's frames come from [`Inbound`](crate::inbound) (the socket read on this actor's
//! arbiter); everything sent goes through [`Outbound`], written to the socket at once by whoever
//! sends it.
//!
//! ```text
//! ```
//!
//! Commands that need the database or a room (join, cancellation) run with `ctx.wait`, so a
//! connection's commands take effect in the order they were sent. The success ack of a join is
//! written by the room itself, ahead of any event, so a client never sees a room's event before
//! the ack that says it is in the room.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use serde_json::Value;
use vrooli_codes::Code;

use super::SessionDeps;
use super::registry::{Admission, CloseConnection, ConnId, RecheckRoom};
use crate::access::{Access, Caller};
use crate::broker::now_ms;
use crate::inbound::{InboundError, Incoming};
use crate::key::{RoomKey, RoomKind};
use crate::outbound::Outbound;
use crate::protocol::{self, Command, Resume, close};
use crate::room::JoinError;

pub struct SessionActor {
    conn: ConnId,
    caller: Arc<Caller>,
    deps: Arc<SessionDeps>,
    out: Outbound,
    rooms: HashSet<RoomKey>,
    last_heard: Instant,
    commands: CommandBucket,
    /// Every log line of this connection carries its id and user (entered in each handler,
    /// carried into the futures it waits on).
    span: tracing::Span,
    _admission: Admission,
}

/// The connection's command allowance: every command (a join is an SQL access check) takes a
/// token; tokens come back at `command_rate_per_sec`, at most `command_burst` held.
struct CommandBucket {
    tokens: f64,
    at: Instant,
    /// Commands refused in a row; as many as the burst again and the connection is closed.
    refused: u32,
}

enum Allowance {
    Take,
    Refuse,
    Close,
}

impl CommandBucket {
    fn new(burst: u32) -> Self {
        Self {
            tokens: f64::from(burst),
            at: Instant::now(),
            refused: 0,
        }
    }

    fn take(&mut self, rate: f64, burst: u32) -> Allowance {
        let now = Instant::now();
        let refill = now.duration_since(self.at).as_secs_f64() * rate;
        self.tokens = (self.tokens + refill).min(f64::from(burst));
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            self.refused = 0;
            return Allowance::Take;
        }
        self.refused += 1;
        if self.refused > burst {
            Allowance::Close
        } else {
            Allowance::Refuse
        }
    }
}

impl SessionActor {
    pub(crate) fn new(
        deps: Arc<SessionDeps>,
        admission: Admission,
        caller: Caller,
        out: Outbound,
    ) -> Self {
        let burst = deps.limits.command_burst;
        let span = tracing::info_span!("socket", conn = admission.conn(), user = %caller.user_id);
        Self {
            span,
            conn: admission.conn(),
            caller: Arc::new(caller),
            deps,
            out,
            rooms: HashSet::new(),
            last_heard: Instant::now(),
            commands: CommandBucket::new(burst),
            _admission: admission,
        }
    }

    fn send(&self, frame: bytestring::ByteString) {
        // A full queue closes the connection; nothing else to do here.
        let _ = self.out.push_text(frame);
    }

    fn close(&self, ctx: &mut Context<Self>, code: u16, reason: &str) {
        self.out.close(code, reason);
        ctx.stop();
    }

    fn command(&mut self, text: &str, ctx: &mut Context<Self>) {
        let envelope = protocol::parse(text);
        let id = envelope.id;
        let limits = &self.deps.limits;
        match self
            .commands
            .take(limits.command_rate_per_sec, limits.command_burst)
        {
            Allowance::Take => {}
            Allowance::Refuse => {
                return self.send(protocol::ack_err(
                    &id,
                    Code::RateLimited,
                    "Too many commands; slow down",
                ));
            }
            Allowance::Close => return self.close(ctx, close::POLICY, "too many commands"),
        }
        let command = match envelope.command {
            Ok(command) => command,
            Err(error) => return self.send(protocol::ack_err(&id, error.code, &error.message)),
        };
        match command {
            Command::Join { room, resume } => self.join(id, room, resume, ctx),
            Command::Leave { room } => {
                if self.rooms.remove(&room) {
                    self.deps.rooms.leave(&room, self.conn);
                }
                self.send(protocol::ack_ok(&id, None));
            }
            Command::Typing { room, typing } => {
                if !self.rooms.contains(&room) {
                    return self.send(protocol::ack_err(
                        &id,
                        Code::NotInRoom,
                        "Join the chat room first",
                    ));
                }
                self.deps.rooms.typing(&room, self.caller.user_id, typing);
                self.send(protocol::ack_ok(&id, None));
            }
            Command::RequestCancellation { room } => {
                let deps = self.deps.clone();
                let caller = self.caller.clone();
                let fut = async move {
                    // Stopping an answer someone pays for needs write access, not only a seat.
                    match deps.authorizer.can_act(&caller, &room).await {
                        // A reader of the room: it exists for them, acting is what is refused.
                        Ok(Access::Denied) => {
                            return Err((
                                Code::NotAllowed,
                                "Only participants may stop answers".into(),
                            ));
                        }
                        access => decide(access, &room)?,
                    }
                    // Only chat rooms have answers to stop; a chat room's id is a chat id.
                    let chat = room
                        .id()
                        .parse()
                        .map_err(|_| (Code::NotFound, "No such room".to_owned()))?;
                    deps.cancel_chat(chat)
                        .await
                        .map_err(|_| (Code::Unavailable, "Try again shortly".to_owned()))
                };
                ctx.wait(
                    tracing::Instrument::instrument(fut, self.span.clone())
                        .into_actor(self)
                        .map(move |result, act, _| match result {
                            Ok(()) => act.send(protocol::ack_ok(&id, None)),
                            Err((code, message)) => {
                                act.send(protocol::ack_err(&id, code, &message))
                            }
                        }),
                );
            }
        }
    }

    fn join(&mut self, id: Value, room: RoomKey, resume: Option<Resume>, ctx: &mut Context<Self>) {
        if !self.rooms.contains(&room)
            && self.rooms.len() >= self.deps.limits.max_rooms_per_connection
        {
            return self.send(protocol::ack_err(
                &id,
                Code::TooManyRooms,
                "This connection is in too many rooms",
            ));
        }
        let deps = self.deps.clone();
        let caller = self.caller.clone();
        let conn = self.conn;
        let out = self.out.clone();
        let ack = id.clone();
        let fut = async move {
            authorize(&deps, &caller, &room).await?;
            deps.rooms
                .join(&room, conn, caller.user_id, out, ack, resume)
                .await
                .map_err(|e| match e {
                    JoinError::Unavailable | JoinError::Closing => (
                        Code::Unavailable,
                        "The room is unavailable; try again shortly".to_owned(),
                    ),
                })?;
            Ok(room)
        };
        ctx.wait(
            tracing::Instrument::instrument(fut, self.span.clone())
                .into_actor(self)
                .map(move |result, act, _| match result {
                    Ok(room) => {
                        act.rooms.insert(room);
                    }
                    Err((code, message)) => act.send(protocol::ack_err(&id, code, &message)),
                }),
        );
    }
}

async fn authorize(
    deps: &SessionDeps,
    caller: &Caller,
    room: &RoomKey,
) -> Result<(), (Code, String)> {
    decide(deps.authorizer.can_join(caller, room).await, room)
}

/// An access answer as the client sees it. A room the caller may not enter is, to them, a room
/// that does not exist (`NotFound`, as REST answers for a chat they cannot read), so ids cannot
/// be probed.
fn decide(access: Result<Access, String>, room: &RoomKey) -> Result<(), (Code, String)> {
    match access {
        Ok(Access::Allowed) => Ok(()),
        Ok(Access::Denied | Access::NotFound) => Err((Code::NotFound, "No such room".to_owned())),
        Err(error) => {
            tracing::error!(%error, %room, "room authorization failed");
            Err((
                Code::InternalError,
                "Could not check access; try again".to_owned(),
            ))
        }
    }
}

impl Actor for SessionActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let _span = self.span.clone().entered();
        let limits = &self.deps.limits;
        let addr = ctx.address();
        self.deps.sessions.register(
            self.conn,
            &self.caller,
            addr.clone().recipient(),
            addr.recipient(),
        );
        ctx.run_interval(limits.heartbeat_interval, |act, ctx| {
            if act.last_heard.elapsed() > act.deps.limits.client_timeout {
                act.close(ctx, close::TIMEOUT, "heartbeat timeout");
            } else {
                let _ = act.out.ping(bytes::Bytes::from_static(b"hb"));
            }
        });
        ctx.run_interval(limits.session_check_interval, |act, ctx| {
            let check = act.deps.authorizer.session_valid(&act.caller);
            ctx.spawn(check.into_actor(act).map(|valid, act, ctx| {
                if let Ok(false) = valid {
                    act.close(ctx, close::REVOKED, "session ended");
                }
            }));
        });
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        let _span = self.span.clone().entered();
        self.deps.sessions.unregister(self.conn);
        for room in self.rooms.drain() {
            self.deps.rooms.leave(&room, self.conn);
        }
        self.out.close(1000, "bye");
    }
}

impl StreamHandler<Result<Incoming, InboundError>> for SessionActor {
    fn handle(&mut self, item: Result<Incoming, InboundError>, ctx: &mut Self::Context) {
        let _span = self.span.clone().entered();
        self.last_heard = Instant::now();
        match item {
            Ok(Incoming::Text(text)) => self.command(&text, ctx),
            Ok(Incoming::Binary) => {
                self.close(ctx, close::UNSUPPORTED, "binary frames are not supported")
            }
            Ok(Incoming::Ping(bytes)) => {
                let _ = self.out.pong(bytes);
            }
            Ok(Incoming::Pong) => {}
            Ok(Incoming::Close) => self.close(ctx, 1000, "bye"),
            // A frame, or continuation frames joined, over the limits: the same 1009.
            Err(InboundError::TooBig) => self.close(ctx, close::TOO_BIG, "message too big"),
            Err(InboundError::Protocol(error)) => {
                tracing::debug!(%error, "WebSocket protocol error");
                self.close(ctx, 1002, "protocol error")
            }
        }
    }

    fn finished(&mut self, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

impl Handler<RecheckRoom> for SessionActor {
    type Result = ();

    fn handle(&mut self, msg: RecheckRoom, ctx: &mut Self::Context) {
        let _span = self.span.clone().entered();
        let rooms: Vec<RoomKey> = match msg.room {
            Some(room) if self.rooms.contains(&room) => vec![room],
            Some(_) => return,
            // A user's own room stays theirs whatever else changed.
            None => self
                .rooms
                .iter()
                .filter(|r| r.kind() != RoomKind::User)
                .cloned()
                .collect(),
        };
        if rooms.is_empty() {
            return;
        }
        let deps = self.deps.clone();
        let caller = self.caller.clone();
        let fut = async move {
            let mut refused = Vec::new();
            for room in rooms {
                let allowed = matches!(
                    deps.authorizer.can_join(&caller, &room).await,
                    Ok(Access::Allowed)
                );
                if !allowed {
                    refused.push(room);
                }
            }
            refused
        };
        // In order with this connection's commands, like a join.
        ctx.wait(
            tracing::Instrument::instrument(fut, self.span.clone())
                .into_actor(self)
                .map(|refused, act, _| {
                    for room in refused {
                        if act.rooms.remove(&room) {
                            act.deps.rooms.leave(&room, act.conn);
                            act.send(protocol::removed_notice(&room, now_ms()));
                        }
                    }
                }),
        );
    }
}

impl Handler<CloseConnection> for SessionActor {
    type Result = ();
    fn handle(&mut self, msg: CloseConnection, ctx: &mut Self::Context) {
        let _span = self.span.clone().entered();
        self.close(ctx, msg.code, &msg.reason);
    }
}
