//! Rooms: one actor per chat, run or user room with members on this node (`actor`), its pure
//! ordering state machine (`order`), typing table (`typing`) and joins (`join`), and the node's registry of
//! rooms (`registry`).

pub mod actor;
mod join;
pub(crate) mod order;
pub mod registry;
pub(crate) mod typing;

pub use actor::{JoinError, RoomActor};
pub use registry::RoomRegistry;
