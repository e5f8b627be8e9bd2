//! Counters a test reads to check that a fault really happened.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::Direction;

/// Counters of one direction (bytes are payload bytes of the TCP stream).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DirectionStats {
    /// Bytes written to the receiving peer, duplicates included.
    pub bytes_forwarded: u64,
    /// Bytes discarded by the `drop` fault.
    pub bytes_dropped: u64,
    /// Extra copies written by the `duplicate` fault (not counting the original).
    pub bytes_duplicated: u64,
    /// Bytes that were given a non-zero delay.
    pub bytes_delayed: u64,
    /// Bytes read and discarded by a [`Blackhole`](crate::PartitionMode::Blackhole) partition.
    pub bytes_blackholed: u64,
    /// Chunks held back by the `reorder` fault.
    pub chunks_held: u64,
    /// Held chunks that a later chunk overtook (the others were released after the hold
    /// time, or at the end of the stream, in order).
    pub chunks_reordered: u64,
}

/// A snapshot of a proxy's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProxyStats {
    /// Client to server.
    pub up: DirectionStats,
    /// Server to client.
    pub down: DirectionStats,
    /// Connections accepted and forwarded (refused ones are not counted here).
    pub connections_accepted: u64,
    /// Connections reset right after accept because new connections were refused.
    pub connections_refused: u64,
    /// Connections ended by `kill_connections`.
    pub connections_killed: u64,
    /// Accepted connections whose target could not be reached.
    pub connect_failures: u64,
    /// Connections open now.
    pub connections_active: u64,
}

impl ProxyStats {
    /// The counters of one direction.
    pub fn get(&self, dir: Direction) -> &DirectionStats {
        match dir {
            Direction::Up => &self.up,
            Direction::Down => &self.down,
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct DirectionCounters {
    pub(crate) forwarded: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) duplicated: AtomicU64,
    pub(crate) delayed: AtomicU64,
    pub(crate) blackholed: AtomicU64,
    pub(crate) held: AtomicU64,
    pub(crate) reordered: AtomicU64,
}

impl DirectionCounters {
    fn snapshot(&self) -> DirectionStats {
        DirectionStats {
            bytes_forwarded: self.forwarded.load(Relaxed),
            bytes_dropped: self.dropped.load(Relaxed),
            bytes_duplicated: self.duplicated.load(Relaxed),
            bytes_delayed: self.delayed.load(Relaxed),
            bytes_blackholed: self.blackholed.load(Relaxed),
            chunks_held: self.held.load(Relaxed),
            chunks_reordered: self.reordered.load(Relaxed),
        }
    }
}

/// Relaxed atomics: each counter is read on its own, and a snapshot taken while traffic flows
/// is a moment's approximation anyway.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) up: DirectionCounters,
    pub(crate) down: DirectionCounters,
    pub(crate) accepted: AtomicU64,
    pub(crate) refused: AtomicU64,
    pub(crate) killed: AtomicU64,
    pub(crate) connect_failures: AtomicU64,
    pub(crate) active: AtomicU64,
}

impl Counters {
    pub(crate) fn dir(&self, dir: Direction) -> &DirectionCounters {
        match dir {
            Direction::Up => &self.up,
            Direction::Down => &self.down,
        }
    }

    pub(crate) fn snapshot(&self) -> ProxyStats {
        ProxyStats {
            up: self.up.snapshot(),
            down: self.down.snapshot(),
            connections_accepted: self.accepted.load(Relaxed),
            connections_refused: self.refused.load(Relaxed),
            connections_killed: self.killed.load(Relaxed),
            connect_failures: self.connect_failures.load(Relaxed),
            connections_active: self.active.load(Relaxed),
        }
    }
}

/// Add to a counter (relaxed).
pub(crate) fn add(counter: &AtomicU64, n: usize) {
    counter.fetch_add(n as u64, Relaxed);
}
