//! Rooms: one actor per chat, run or user room with members on this node (`actor`) and the
//! node's registry of them (`registry`).

pub mod actor;
pub mod registry;

pub use actor::{JoinError, RoomActor};
pub use registry::RoomRegistry;
