//! `replicad`: the replication node daemon.
//!
//! One process runs one cluster member: the Raft log on the WAL, the embedded redb
//! [`DocumentStore`](replication_core::store::DocumentStore) as its state machine
//! ([`store_handler`]), a small client / admin HTTP API ([`api`]) and Prometheus metrics
//! ([`metrics`]).
//!
//! ```text
//! replicad run --config node.toml [--admin-addr 127.0.0.1:7401] [--log-level info]
//! ```
//!
//! Files: the WAL segments and the consensus state (`raft/`) live in the config's
//! `wal_directory` (relative paths are relative to the working directory); the store is
//! `<wal_directory>/store.redb`.
//!
//! Exit codes: 0 after a clean stop (SIGTERM / Ctrl-C), 2 when the config is unusable (every
//! problem is printed), 1 for any other failure.
//!
//! Status of issue 3, point 6: a single-node cluster runs; a config with peers is refused until
//! the mutual-TLS network is wired in [`network`]. A `demo` subcommand (3-node loopback cluster
//! with a leader kill) comes next.

pub mod api;
pub mod daemon;
pub mod metrics;
pub mod network;
pub mod store_handler;

pub use daemon::{run, RunError, RunOptions, DEFAULT_ADMIN_ADDR};
