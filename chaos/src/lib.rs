//! Chaos testing for the replication cluster: a user-space TCP proxy that injects network
//! faults between nodes running on one machine, on loopback only.
//!
//! [`FaultProxy`] listens on a 127.0.0.x port and forwards each accepted connection to a
//! target. Its [`FaultHandle`] changes the faults at run time, for each direction of the
//! connections separately: *up* is client to server, *down* is server to client.
//! [`ProxyMesh`] starts one proxy per ordered pair of nodes so that any link of a cluster can
//! be cut or slowed.
//!
//! # Faults and what they mean on a TCP stream
//!
//! The proxy sees a byte stream, not packets: every fault acts on a *chunk*, the bytes one
//! read returned (up to 16 KiB). TCP below the proxy stays reliable, so faults that lose,
//! repeat or swap chunks corrupt the stream as the application sees it, on purpose: the
//! peers must detect it (TLS record MACs, frame CRCs) and reconnect.
//!
//! | fault | effect | stream stays valid? |
//! |---|---|---|
//! | partition, [`PartitionMode::Hold`] | nothing is read: bytes wait in kernel buffers, the sender blocks when they fill; after the heal everything arrives in order | yes |
//! | partition, [`PartitionMode::Blackhole`] | bytes are read and discarded | no |
//! | refuse new ([`FaultHandle::refuse_new`]) | new connections are reset right after accept | — |
//! | delay | each chunk waits `fixed + uniform(0..=jitter)`; never released before the chunk ahead of it, so order is kept | yes |
//! | drop | a chunk is discarded with probability p | no |
//! | duplicate | a chunk is sent twice with probability p | no |
//! | reorder | a chunk is held with probability p and sent right after the next chunk (or after `reorder_max_hold`, 50 ms by default, if none comes) | no |
//! | throttle | bytes per second cap, token bucket with 50 ms of burst | yes |
//! | kill ([`FaultHandle::kill_connections`]) | every open connection is reset ([`KillMode::Reset`]) or closed ([`KillMode::Close`]) | — |
//!
//! The end of a stream (FIN) never crosses a partition, of either mode: it is passed on after
//! the heal, as TCP would retransmit it.
//!
//! Every setter takes an optional duration after which the fault clears itself;
//! [`FaultHandle::clear`] clears them all. Random decisions come from a seeded
//! `rand::rngs::StdRng` per connection and direction, derived from the proxy seed
//! ([`FaultHandle::seed`]), so a run replays as far as the chunking of the stream (which
//! depends on timing) replays.
//!
//! # History checkers
//!
//! [`history`] records what concurrent test clients asked of the store and saw, and checks the
//! recorded history afterwards: linearizability per key, survival of acknowledged writes, one
//! leader per term, replica convergence and exactly-once CDC delivery.
//!
//! # Loopback only
//!
//! Both the listen and the target address must be in 127.0.0.0/8; anything else is refused
//! with [`ChaosError::NotLoopback`]. This tooling must never disturb a real network.
//!
//! # Example
//!
//! ```no_run
//! # async fn demo(server: std::net::SocketAddr) -> Result<(), replication_chaos::ChaosError> {
//! use std::time::Duration;
//! use replication_chaos::{Delay, Directions, FaultProxy, PartitionMode};
//!
//! let proxy = FaultProxy::start("127.0.0.1:0".parse().unwrap(), server).await?;
//! let faults = proxy.handle();
//! // A 50 ms round trip, like a WAN link.
//! faults.set_delay(Directions::Both, Delay::new(Duration::from_millis(25), Duration::ZERO), None);
//! // Requests stop reaching the server for two seconds; responses still flow.
//! faults.partition(Directions::Up, PartitionMode::Hold, Some(Duration::from_secs(2)));
//! println!("dial {} instead of {server}; seed {}", proxy.local_addr(), faults.seed());
//! # Ok(()) }
//! ```

mod conn;
mod error;
mod faults;
pub mod history;
mod loopback;
mod mesh;
mod proxy;
mod pump;
mod seed;
mod stats;
mod throttle;

pub use error::ChaosError;
pub use faults::{
    Delay, Direction, Directions, FaultSnapshot, KillMode, LinkFaults, PartitionMode,
};
pub use mesh::{MeshOptions, NodeId, ProxyMesh};
pub use proxy::{FaultHandle, FaultProxy, ProxyOptions};
pub use stats::{DirectionStats, ProxyStats};
