//! `ProxyMesh`: one proxy per ordered pair of nodes, so faults can cut any link.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use crate::faults::{Delay, Directions, KillMode, PartitionMode};
use crate::proxy::{FaultProxy, ProxyOptions};
use crate::seed::{derive, random_seed};
use crate::stats::ProxyStats;
use crate::ChaosError;

/// A node's id in the mesh (the Raft node id of the cluster under test).
pub type NodeId = u64;

/// Options for [`ProxyMesh::start_with`].
#[derive(Debug, Clone, Copy)]
pub struct MeshOptions {
    /// Seed of the whole mesh; each proxy's seed is derived from it and the pair of node ids.
    /// `None` draws one ([`ProxyMesh::seed`] tells it).
    pub seed: Option<u64>,
    /// What the partition helpers do to the bytes. [`PartitionMode::Hold`] by default: that
    /// is a cut link under TCP (nothing arrives, nothing is corrupted, and everything sent
    /// arrives after the heal, if the peers have not given up by then).
    pub partition_mode: PartitionMode,
}

impl Default for MeshOptions {
    fn default() -> Self {
        MeshOptions {
            seed: None,
            partition_mode: PartitionMode::Hold,
        }
    }
}

/// Proxies between N nodes: the proxy of the pair `(from, to)` listens on its own loopback
/// port and forwards to `to`'s real address, and `from` is meant to dial it (see
/// [`ProxyMesh::addr_for`]) instead of `to`'s address.
///
/// A TCP connection carries bytes both ways, so "no message from `a` reaches `b`" means
/// cutting the requests on `a`'s proxy to `b` (its up direction) *and* the responses on `b`'s
/// proxy to `a` (its down direction). The helpers below do that bookkeeping.
#[derive(Debug)]
pub struct ProxyMesh {
    nodes: BTreeMap<NodeId, SocketAddr>,
    links: BTreeMap<(NodeId, NodeId), FaultProxy>,
    seed: u64,
    partition_mode: PartitionMode,
}

impl ProxyMesh {
    /// Starts the proxies for `nodes` (id, real address) with the default options.
    pub async fn start(
        nodes: impl IntoIterator<Item = (NodeId, SocketAddr)>,
    ) -> Result<ProxyMesh, ChaosError> {
        ProxyMesh::start_with(nodes, MeshOptions::default()).await
    }

    /// Starts the proxies for `nodes` (id, real address). Every address must be loopback.
    pub async fn start_with(
        nodes: impl IntoIterator<Item = (NodeId, SocketAddr)>,
        options: MeshOptions,
    ) -> Result<ProxyMesh, ChaosError> {
        let mut map = BTreeMap::new();
        for (id, addr) in nodes {
            if map.insert(id, addr).is_some() {
                return Err(ChaosError::DuplicateNode(id));
            }
        }
        let seed = options.seed.unwrap_or_else(random_seed);
        let listen: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 0));
        let mut links = BTreeMap::new();
        for &from in map.keys() {
            for (&to, &target) in &map {
                if from == to {
                    continue;
                }
                let seed = derive(derive(seed, from), to);
                let proxy = FaultProxy::start_with(
                    listen,
                    target,
                    ProxyOptions {
                        seed: Some(seed),
                        ..ProxyOptions::default()
                    },
                )
                .await?;
                links.insert((from, to), proxy);
            }
        }
        Ok(ProxyMesh {
            nodes: map,
            links,
            seed,
            partition_mode: options.partition_mode,
        })
    }

    /// The mesh seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The node ids, ascending.
    pub fn nodes(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.nodes.keys().copied()
    }

    /// The real address of `node`.
    pub fn node_addr(&self, node: NodeId) -> Option<SocketAddr> {
        self.nodes.get(&node).copied()
    }

    /// The address `from` should dial to reach `to` (`None` for `from == to` or an unknown id).
    pub fn addr_for(&self, from: NodeId, to: NodeId) -> Option<SocketAddr> {
        self.links.get(&(from, to)).map(FaultProxy::local_addr)
    }

    /// Every peer of `from` and the address `from` should dial to reach it: the peer map to
    /// give node `from` in place of the real addresses.
    pub fn peer_addrs(&self, from: NodeId) -> BTreeMap<NodeId, SocketAddr> {
        self.links
            .iter()
            .filter(|((f, _), _)| *f == from)
            .map(|(&(_, to), proxy)| (to, proxy.local_addr()))
            .collect()
    }

    /// The proxy `from` uses to reach `to`, for faults the helpers do not cover.
    pub fn link(&self, from: NodeId, to: NodeId) -> Option<&FaultProxy> {
        self.links.get(&(from, to))
    }

    fn known(&self, node: NodeId) -> Result<(), ChaosError> {
        if self.nodes.contains_key(&node) {
            Ok(())
        } else {
            Err(ChaosError::UnknownNode(node))
        }
    }

    /// Cuts the bytes flowing from `from` to `to` (on both connections between them) and
    /// leaves the other way open.
    pub fn partition_one_way(
        &self,
        from: NodeId,
        to: NodeId,
        duration: Option<Duration>,
    ) -> Result<(), ChaosError> {
        self.known(from)?;
        self.known(to)?;
        let mode = self.partition_mode;
        if let Some(p) = self.link(from, to) {
            p.handle().partition(Directions::Up, mode, duration);
        }
        if let Some(p) = self.link(to, from) {
            p.handle().partition(Directions::Down, mode, duration);
        }
        Ok(())
    }

    /// Cuts `a` and `b` from each other, both ways.
    pub fn partition(
        &self,
        a: NodeId,
        b: NodeId,
        duration: Option<Duration>,
    ) -> Result<(), ChaosError> {
        self.partition_one_way(a, b, duration)?;
        self.partition_one_way(b, a, duration)
    }

    /// Cuts `node` from every other node, both ways.
    pub fn isolate(&self, node: NodeId, duration: Option<Duration>) -> Result<(), ChaosError> {
        self.known(node)?;
        for other in self.nodes() {
            if other != node {
                self.partition(node, other, duration)?;
            }
        }
        Ok(())
    }

    /// Ends every partition between `a` and `b` (both ways).
    pub fn heal(&self, a: NodeId, b: NodeId) -> Result<(), ChaosError> {
        self.known(a)?;
        self.known(b)?;
        for pair in [(a, b), (b, a)] {
            if let Some(p) = self.links.get(&pair) {
                p.handle().heal(Directions::Both);
            }
        }
        Ok(())
    }

    /// Ends every partition in the mesh (other faults stay).
    pub fn heal_all(&self) {
        for proxy in self.links.values() {
            proxy.handle().heal(Directions::Both);
        }
    }

    /// Gives every link `fixed` + `0..=jitter` of latency each way (so a round trip between
    /// two nodes takes at least `2 * fixed`).
    pub fn delay_all(&self, fixed: Duration, jitter: Duration, duration: Option<Duration>) {
        for proxy in self.links.values() {
            proxy
                .handle()
                .set_delay(Directions::Both, Delay::new(fixed, jitter), duration);
        }
    }

    /// Clears every fault on every link.
    pub fn clear_all(&self) {
        for proxy in self.links.values() {
            proxy.handle().clear();
        }
    }

    /// Kills every connection on every link; returns how many were open.
    pub fn kill_all(&self, mode: KillMode) -> u64 {
        self.links
            .values()
            .map(|p| p.handle().kill_connections(mode))
            .sum()
    }

    /// The counters of every link, keyed by `(from, to)`.
    pub fn stats(&self) -> BTreeMap<(NodeId, NodeId), ProxyStats> {
        self.links
            .iter()
            .map(|(&pair, p)| (pair, p.handle().stats()))
            .collect()
    }
}
