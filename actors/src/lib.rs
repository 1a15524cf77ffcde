//! The actor system of the Vrooli server (`vrooli-actors`).
//!
//! ```text
//! socket ─▶ Inbound ─▶ SessionActor ─join─▶ RoomRegistry ─▶ RoomActor ─▶ members' Outbound ─▶ socket
//!                                                      ▲
//! Hub::publish ─▶ Broker (Redis | in-process) ─▶ Inbox ┘   (every node with members)
//! Hub::close_session / request ─▶ Broker node channels ─▶ SessionRegistry / replies
//! ```
//!
//! - [`hub`]: the API the server uses (no actix actor types in it).
//! - [`session`]: one actor per connection and the connection registry; [`outbound`] writes a
//!   connection's frames to its socket (queueing, bounded, only when the socket is full),
//!   `inbound` reads them.
//! - [`room`]: one actor per room with local members, ordering and gap recovery, the registry.
//! - [`broker`]: the `Broker` trait, the Redis and in-process brokers, node messages.
//! - [`protocol`]: commands, acks and close codes (`docs/PROTOCOL.md`). The strict types of
//!   every frame the server sends, which the API tests parse, are in `tests/api/ws/wire.rs`.
//! - [`access`]: what the actors ask the server (may this caller join; is the session valid).
//!
//! No HTTP routing or SQL here: the server supplies authorization through [`access::Authorizer`].
//! actix types stay inside this crate.

pub mod access;
pub mod broker;
pub mod cancel;
pub mod counters;
pub mod event;
pub mod fut;
pub mod hub;
pub mod ids;
pub(crate) mod inbound;
pub mod key;
pub mod limits;
pub mod outbound;
pub(crate) mod presence;
pub mod protocol;
pub mod room;
pub mod run;
pub mod session;

#[cfg(test)]
mod tests;

pub use access::{Access, Authorizer, Caller};
pub use broker::{
    Broker, BrokerError, BrokerSettings, NodeReply, NodeRequest, NodeStats, RoomHead,
};
pub use event::NewEvent;
pub use hub::Hub;
pub use ids::{ChatId, RunId, SessionId, UserId};
/// For [`snowflake_id_impls!`], which is expanded in other crates too.
#[doc(hidden)]
pub use itoa as __itoa;
pub use key::{RoomKey, RoomKind};
pub use limits::WsLimits;
pub use run::{CommandOutcome, RunCommand, RunControl, RunDriver, StopReason};
pub use session::{Admission, Refusal};
