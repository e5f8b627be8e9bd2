//! The one place that decides how this node talks to its peers.
//!
//! `ReplicationNode::start` is generic over the network factory, so the choice is an enum
//! matched in [`start_node`]: each variant starts the node with its own concrete factory and
//! does whatever registration that network needs afterwards.
//!
//! Today only a single-node cluster runs (the in-process network, which never carries a
//! message because there is no one to send to). A config with peers is refused until the
//! mutual-TLS network is wired in here: add a `Tls` variant built from the config's
//! certificates in [`network_for`] and start the node with it in [`start_node`].

use std::collections::BTreeMap;
use std::sync::Arc;

use replication_core::consensus::{ApplyHandler, ConsensusError, LocalNetwork, ReplicationNode};
use replication_core::{NodeId, ReplicationConfig};

/// The network a node runs on.
pub enum Network {
    /// In-process channels. Used for a cluster of one: no peer exists, so nothing is sent.
    Local(LocalNetwork),
}

/// Why no network could be chosen for a config.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error(
        "multi-node networking is not wired yet: this config lists {peers} peer(s), but this \
         build of replicad can only run a single-node cluster; remove the [[peers]] entries to \
         run one node"
    )]
    MultiNodeNotWired { peers: usize },
}

/// Chooses the network for `config`.
pub fn network_for(config: &ReplicationConfig) -> Result<Network, NetworkError> {
    if config.peers.is_empty() {
        Ok(Network::Local(LocalNetwork::new()))
    } else {
        Err(NetworkError::MultiNodeNotWired {
            peers: config.peers.len(),
        })
    }
}

/// Starts the node on `network` (inside a tokio multi-thread runtime).
pub async fn start_node(
    config: &ReplicationConfig,
    apply: Arc<dyn ApplyHandler>,
    network: Network,
) -> Result<ReplicationNode, ConsensusError> {
    match network {
        Network::Local(net) => {
            let node = ReplicationNode::start(config, apply, net.factory(config.node_id)).await?;
            net.register(config.node_id, node.raft().clone());
            Ok(node)
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

    #[test]
    fn peers_are_refused_with_a_clear_message_until_tls_is_wired() {
        let single = ReplicationConfig::default();
        assert!(matches!(network_for(&single), Ok(Network::Local(_))));
        let mut multi = ReplicationConfig::default();
        multi.peers.push(PeerConfig {
            node_id: 2,
            address: "127.0.0.1:7402".into(),
        });
        let e = network_for(&multi).err().expect("refused");
        assert!(e
            .to_string()
            .contains("multi-node networking is not wired yet"));
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
        });
        let m = initial_members(&c);
        assert_eq!(m.keys().copied().collect::<Vec<_>>(), vec![1, 3]);
        assert_eq!(m[&3], c.listen_address);
    }
}
