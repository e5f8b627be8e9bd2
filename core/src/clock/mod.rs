//! Clocks for ordering events across nodes.
//!
//! - [`HlcClock`] / [`HlcTimestamp`]: hybrid logical clock. Totally ordered timestamps that stay
//!   close to wall time; used to stamp WAL records, for last-writer-wins and for point-in-time
//!   recovery.
//! - [`VectorClock`]: per-node counters that tell causally ordered updates from concurrent ones
//!   (conflicts) in multi-master replication, which a single HLC value cannot.

mod hlc;
mod vector;

pub use hlc::{ClockError, HlcClock, HlcTimestamp};
pub use vector::{VectorClock, VectorOrdering};

pub use hlc::{ManualClock, PhysicalClock, SystemClock, DEFAULT_MAX_DRIFT};
pub use vector::DuplicateNode;
