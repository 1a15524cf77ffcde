//! The node's running totals (read by `/metrics`): written by rooms and the broker's inbox.

use std::sync::atomic::AtomicU64;

/// Running totals for metrics.
#[derive(Default, Debug)]
pub struct Counters {
    /// Event frames queued to sockets.
    pub delivered: AtomicU64,
    /// Connections cut off because they did not read.
    pub slow_disconnects: AtomicU64,
    /// Gaps reported to clients.
    pub gaps: AtomicU64,
    /// Events dropped at a full room mailbox (then refetched from the history).
    pub mailbox_drops: AtomicU64,
    pub room_restarts: AtomicU64,
}
