//! What every room actor of the node is given ([`RoomDeps`]): built by the hub, held by the
//! registry and each room. Below the actor and the registry.

use std::sync::Arc;
use std::time::Duration;

use crate::broker::Broker;
use crate::counters::Counters;
use crate::event::EventIds;
use crate::presence::Presence;

/// What every room actor of the node uses.
pub(crate) struct RoomDeps {
    pub broker: Arc<dyn Broker>,
    /// More waiting events than this and a room gives up on the missing ones; also the bound of
    /// the room's mailbox.
    pub mailbox: usize,
    pub typing_ttl: Duration,
    /// The most events held for a member whose join is still fetching its missed events.
    pub join_buffer: usize,
    pub counters: Arc<Counters>,
    pub presence: Arc<Presence>,
    pub ids: Arc<EventIds>,
}
