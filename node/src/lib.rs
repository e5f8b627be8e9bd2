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
//! ```text
//! replicad keygen --out node.ed25519          # vote-signing key; prints the public key hex
//! replicad certs --dir certs --nodes 1,2,3    # DEVELOPMENT ONLY: throwaway CA + node certs
//! replicad demo [--fast]                      # 3-node TLS cluster, leader kill, verification
//! ```
//!
//! A config without peers runs a single-node cluster; with peers the node runs over mutual
//! TLS ([`network`]) and needs `node_key_path` and every peer's `public_key`.
//! [`cluster`] drives `replicad run` child processes (the demo and the multi-process tests).

pub mod api;
pub mod cluster;
pub mod daemon;
pub mod demo;
pub mod http;
pub mod metrics;
pub mod network;
pub mod store_handler;

pub use daemon::{run, RunError, RunOptions, DEFAULT_ADMIN_ADDR};
