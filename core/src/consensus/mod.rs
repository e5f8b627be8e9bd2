//! Consensus: openraft 0.10 on the WAL.
//!
//! - [`types`]: the openraft type configuration and the entry payload.
//! - [`log_store`]: the Raft log *is* the WAL (log index = LSN), with group fsync.
//! - [`state_machine`]: the host's storage as the state machine, via [`ApplyHandler`].
//! - [`memory_store`]: [`MemoryStore`], an in-memory `ApplyHandler` (tests, default).
//! - [`network_local`]: an in-process network for tests and simulation only.
//! - [`node`]: [`ReplicationNode`], the public API (append with ack modes, status, elections,
//!   membership).

pub mod log_store;
pub mod memory_store;
pub mod network_local;
pub mod node;
mod state_file;
pub mod state_machine;
pub mod types;

pub use log_store::WalLogStore;
pub use memory_store::MemoryStore;
pub use network_local::{LocalNetwork, LocalNetworkFactory};
pub use node::{
    AckPolicy, ConsensusError, ElectionStart, FollowerStatus, NodeStatus, ReplicationNode, Role,
    SYNC_NEEDS_REPLICAS,
};
pub use state_machine::{AppliedEntry, ApplyError, ApplyHandler, StateMachine};
pub use types::{ClientWrite, ConsensusRaft, NodeInfo, TypeConfig};
