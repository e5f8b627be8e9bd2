//! Consensus: openraft 0.10 on the WAL.
//!
//! - [`types`]: the openraft type configuration and the entry payload.
//! - [`log_store`]: the Raft log *is* the WAL (log index = LSN), with group fsync.
//! - [`state_machine`]: the host's storage as the state machine, via [`ApplyHandler`].
//! - [`memory_store`]: [`MemoryStore`], an in-memory `ApplyHandler` (tests, default).
//! - [`network_local`]: an in-process network for tests and simulation only.
//! - [`network_tls`], [`raft_server`], [`rpc_kinds`], [`append_codec`]: the real network, Raft
//!   RPCs over the mutual-TLS transport with signed votes and pipelined binary AppendEntries;
//!   [`networked`] wires a node to it.
//! - [`node`]: [`ReplicationNode`], the public API (append with ack modes, status, elections,
//!   membership).
//! - [`reads`]: linearizable (lease, ReadIndex fallback), leader-local and bounded-staleness
//!   follower reads.
//! - [`split_vote`]: campaigns again at once when the vote split (one vote per term).
//! - [`health`]: follower health and lag (entries, bytes, ms) and the lag alert.

mod ack_waiters;
pub mod append_codec;
mod append_pipeline;
mod append_stream;
pub mod health;
pub mod log_store;
pub mod memory_store;
pub mod network_local;
pub mod network_tls;
pub mod networked;
pub mod node;
pub mod raft_server;
pub mod reads;
pub mod rpc_kinds;
pub mod split_vote;
mod state_file;
pub mod state_machine;
mod tail_cache;
pub mod types;

pub use health::{FollowerStatus, LagAlert, LagAlertCounts, LagAlertKind, LagThresholds};
pub use log_store::WalLogStore;
pub use memory_store::MemoryStore;
pub use network_local::{LocalNetwork, LocalNetworkFactory};
pub use network_tls::{TlsNetwork, TlsNetworkOptions};
pub use networked::NetworkedNode;
pub use node::{
    AckPolicy, ConsensusError, ElectionStart, NodeStatus, ReplicationNode, Role,
    SYNC_NEEDS_REPLICAS,
};
pub use raft_server::{
    RaftServer, RaftServerMetrics, RaftServerMetricsSnapshot, RaftServerOptions,
};
pub use reads::{ReadConsistency, ReadPath, ReadStats};
pub use state_machine::{AppliedEntry, ApplyError, ApplyHandler, StateMachine};
pub use types::{ClientWrite, ConsensusRaft, NodeInfo, TypeConfig};
