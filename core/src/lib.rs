//! `replication-core`: every piece of replication logic, with no knowledge of C or Python.
//!
//! Modules are cut by role:
//! - [`wal`]: the segmented, checksummed write-ahead log (the future Raft log).
//! - [`clock`]: hybrid logical clocks and vector clocks.
//! - [`config`]: `ReplicationConfig`, loaded from TOML and validated.
//! - [`store`]: the embedded redb document store a standalone node applies records to.

pub mod clock;
pub mod config;
pub mod consensus;
pub mod security;
pub mod store;
pub mod transport;
pub mod wal;

pub use clock::{HlcClock, HlcTimestamp, VectorClock, VectorOrdering};
pub use config::ReplicationConfig;
pub use wal::{Durability, NewRecord, Operation, Record, RecoveryMode, Wal, WalError, WalOptions};

/// Log sequence number: dense, starts at 1, one per record. Equals the Raft log index later.
pub type Lsn = u64;
/// Identifier of a node in the cluster.
pub type NodeId = u64;

/// Runs the Rust code blocks of README.md as doctests, so the tour cannot go stale.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
