//! Rooms: one actor per chat, run or user room with members on this node (`actor`), its pure
//! ordering state machine (`order`), typing table (`typing`) and joins (`join`; its member and
//! message types in `member`), what every room is given (`deps`), and the node's registry of
//! rooms (`registry`). Arrows point one way: registry → actor, member, deps; join → actor, member;
//! actor → member, deps, order, typing.

pub mod actor;
mod deps;
mod join;
mod member;
pub(crate) mod order;
pub mod registry;
pub(crate) mod typing;

pub use actor::RoomActor;
pub(crate) use deps::RoomDeps;
pub use member::JoinError;
pub use registry::RoomRegistry;
