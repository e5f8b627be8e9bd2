//! The one place that decides how this node talks to its peers.
//!
//! `ReplicationNode::start` is generic over the network factory, so the choice is an enum
//! matched in [`start_node`]: each variant starts the node with its own concrete factory and
//! does whatever registration that network needs afterwards.
//!
//! - no peers: the in-process network, which never carries a message (there is no one to send
//!   to);
//! - peers: [`NetworkedNode`], the consensus server and client over mutual TLS 1.3 (or, only
//!   with `allow_plaintext_dev = true`, plaintext, which logs a warning). Vote and pre-vote
//!   requests are signed with `node_key_path` and checked against each peer's `public_key`
//!   on every transport.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use replication_core::consensus::{
    ApplyHandler, ConsensusError, LocalNetwork, NetworkedNode, ReplicationNode,
};
use replication_core::security::{NodeKey, NodePublicKey, SecurityError};
use replication_core::transport::TransportSecurity;
use replication_core::{NodeId, ReplicationConfig};

use crate::metrics::RejectedVotesSource;

/// The network a node runs on.
pub enum Network {
    /// In-process channels. Used for a cluster of one: no peer exists, so nothing is sent.
    Local(LocalNetwork),
    /// Mutual TLS (or explicit development plaintext) to the configured peers.
    Remote(Box<RemoteNetwork>),
}

/// What [`NetworkedNode::start`] needs besides the config, loaded before the disk is touched.
pub struct RemoteNetwork {
    security: TransportSecurity,
    node_key: NodeKey,
    peer_keys: Vec<(NodeId, NodePublicKey)>,
}

/// Why no network could be chosen for a config.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("transport security: {0}")]
    Security(#[source] ConsensusError),
    #[error(
        "node_key_path is required when peers are configured; create a key with \
         `replicad keygen --out PATH`"
    )]
    NoNodeKey,
    #[error("node key {}: {source}", path.display())]
    NodeKey {
        path: PathBuf,
        #[source]
        source: SecurityError,
    },
    #[error(
        "peer {peer} has no public_key; set it to the hex `replicad keygen` printed on that node"
    )]
    NoPeerKey { peer: NodeId },
    #[error("public_key of peer {peer}: {source}")]
    PeerKey {
        peer: NodeId,
        #[source]
        source: SecurityError,
    },
}

/// Chooses the network for `config` and loads its key material (TLS identity, node key, peer
/// keys), so that a missing or unreadable file is reported before anything starts.
pub fn network_for(config: &ReplicationConfig) -> Result<Network, NetworkError> {
    if config.peers.is_empty() {
        return Ok(Network::Local(LocalNetwork::new()));
    }
    let security = NetworkedNode::security_from_config(config).map_err(NetworkError::Security)?;
    let path = config
        .node_key_path
        .as_ref()
        .ok_or(NetworkError::NoNodeKey)?;
    let node_key = NodeKey::load(path).map_err(|source| NetworkError::NodeKey {
        path: path.clone(),
        source,
    })?;
    let peer_keys = config
        .peers
        .iter()
        .map(|p| match p.parsed_public_key() {
            None => Err(NetworkError::NoPeerKey { peer: p.node_id }),
            Some(Err(source)) => Err(NetworkError::PeerKey {
                peer: p.node_id,
                source,
            }),
            Some(Ok(key)) => Ok((p.node_id, key)),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Network::Remote(Box::new(RemoteNetwork {
        security,
        node_key,
        peer_keys,
    })))
}

/// A started node and whatever serves its peers.
pub struct RunningNode {
    node: Arc<ReplicationNode>,
    networked: Option<NetworkedNode>,
}

impl RunningNode {
    pub fn node(&self) -> &Arc<ReplicationNode> {
        &self.node
    }

    /// The consensus server's vote counters, for `/metrics`; `None` without a network.
    pub fn rejected_votes_source(&self) -> Option<RejectedVotesSource> {
        let verifier = Arc::clone(self.networked.as_ref()?.server().verifier());
        Some(Arc::new(move || verifier.metrics().snapshot()))
    }

    /// Stops serving peers (if any), stops the node and closes its WAL.
    pub async fn shutdown(self) -> Result<(), ConsensusError> {
        match self.networked {
            Some(n) => n.shutdown().await,
            None => self.node.shutdown().await,
        }
    }
}

/// Starts the node on `network` (inside a tokio multi-thread runtime).
pub async fn start_node(
    config: &ReplicationConfig,
    apply: Arc<dyn ApplyHandler>,
    network: Network,
) -> Result<RunningNode, ConsensusError> {
    match network {
        Network::Local(net) => {
            let node = ReplicationNode::start(config, apply, net.factory(config.node_id)).await?;
            net.register(config.node_id, node.raft().clone());
            Ok(RunningNode {
                node: Arc::new(node),
                networked: None,
            })
        }
        Network::Remote(remote) => {
            let RemoteNetwork {
                security,
                node_key,
                peer_keys,
            } = *remote;
            let networked =
                NetworkedNode::start(config, apply, security, node_key, peer_keys).await?;
            Ok(RunningNode {
                node: Arc::clone(networked.node()),
                networked: Some(networked),
            })
        }
    }
}

/// Every voter of the initial cluster: this node and its peers, with their replication
/// addresses.
pub fn initial_members(config: &ReplicationConfig) -> BTreeMap<NodeId, String> {
    std::iter::once((config.node_id, config.listen_address.clone()))
        .chain(config.peers.iter().map(|p| (p.node_id, p.address.clone())))
        .collect()
}

/// Forms the cluster on first start. Exactly one member may do it, so the rule is fixed: the
/// member with the lowest node id. A node whose log already holds a membership (any restart)
/// skips this; the others learn the membership from the leader.
pub async fn bootstrap_if_new(
    node: &ReplicationNode,
    config: &ReplicationConfig,
) -> Result<bool, ConsensusError> {
    let members = initial_members(config);
    let first = members.keys().next().copied();
    if first != Some(config.node_id) {
        return Ok(false);
    }
    let initialized = node
        .raft()
        .is_initialized()
        .await
        .map_err(|e| ConsensusError::Raft(e.to_string()))?;
    if initialized {
        return Ok(false);
    }
    tracing::info!(node = config.node_id, ?members, "forming a new cluster");
    node.initialize(members).await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use replication_core::config::PeerConfig;

    use super::*;

    fn peer(node_id: u64, public_key: Option<String>) -> PeerConfig {
        PeerConfig {
            node_id,
            address: format!("127.0.0.1:{}", 7400 + node_id),
            public_key,
        }
    }

    #[test]
    fn single_node_runs_locally_and_peers_need_keys() {
        let single = ReplicationConfig::default();
        assert!(matches!(network_for(&single), Ok(Network::Local(_))));

        let dir = tempfile::tempdir().unwrap();
        let mut multi = ReplicationConfig {
            allow_plaintext_dev: true,
            ..Default::default()
        };
        multi.peers.push(peer(2, None));
        let e = network_for(&multi).err().expect("refused");
        assert!(e.to_string().contains("replicad keygen"), "{e}");

        let key_path = dir.path().join("node.key");
        NodeKey::generate().save(&key_path).unwrap();
        multi.node_key_path = Some(key_path);
        let e = network_for(&multi).err().expect("refused");
        assert!(matches!(e, NetworkError::NoPeerKey { peer: 2 }), "{e}");

        multi.peers[0].public_key = Some(NodeKey::generate().public_key().to_hex());
        assert!(matches!(network_for(&multi), Ok(Network::Remote(_))));

        // Without certificates and without the development flag, the transport is refused.
        multi.allow_plaintext_dev = false;
        let e = network_for(&multi).err().expect("refused");
        assert!(matches!(e, NetworkError::Security(_)), "{e}");
    }

    #[test]
    fn initial_members_include_self_and_peers() {
        let mut c = ReplicationConfig {
            node_id: 3,
            ..Default::default()
        };
        c.peers.push(PeerConfig {
            node_id: 1,
            address: "10.0.0.1:7400".into(),
            public_key: None,
        });
        let m = initial_members(&c);
        assert_eq!(m.keys().copied().collect::<Vec<_>>(), vec![1, 3]);
        assert_eq!(m[&3], c.listen_address);
    }
}
