//! One actor per WebSocket connection (`actor`), its outbound queue and writer (`outbound`), and
//! the node's registry of connections (`registry`).

pub mod actor;
pub mod outbound;
pub mod registry;

pub use actor::{CloseConnection, SessionActor};
pub use outbound::{Outbound, PushError};
pub use registry::{Admission, ConnId, Refusal, SessionRegistry};
