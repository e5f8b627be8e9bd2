//! The one error type of the crate.

use std::io;
use std::net::SocketAddr;

use crate::mesh::NodeId;

/// What went wrong when starting a proxy or setting a fault.
#[derive(Debug, thiserror::Error)]
pub enum ChaosError {
    /// The chaos tooling may only ever touch 127.0.0.0/8: a proxy that listened on or forwarded
    /// to a routable address could disturb a real network.
    #[error(
        "{role} address {addr} is not loopback; the chaos proxy only listens on and connects to \
         127.0.0.0/8 (use 127.0.0.1, port 0 to let the OS pick a listen port)"
    )]
    NotLoopback {
        /// `"listen"` or `"target"`.
        role: &'static str,
        /// The refused address.
        addr: SocketAddr,
    },

    /// The listen socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: io::Error,
    },

    /// A probability outside `0.0..=1.0` (or NaN).
    #[error("{fault} probability {p} is not in 0.0..=1.0")]
    InvalidProbability {
        /// The fault it was given for (`"drop"`, `"duplicate"`, `"reorder"`).
        fault: &'static str,
        /// The refused value.
        p: f64,
    },

    /// A throttle of 0 bytes per second would stall the stream forever; use a partition instead.
    #[error("throttle rate must be at least 1 byte per second; use a partition to stop traffic")]
    ZeroRate,

    /// A mesh was given the same node id twice.
    #[error("node {0} is listed twice in the mesh")]
    DuplicateNode(NodeId),

    /// A mesh helper was given a node id the mesh does not know.
    #[error("node {0} is not in the mesh")]
    UnknownNode(NodeId),
}
