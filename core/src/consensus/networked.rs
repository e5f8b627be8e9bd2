//! A [`ReplicationNode`] wired to the real network: a [`RaftServer`] on its listener and a
//! [`TlsNetwork`] to its peers.
//!
//! Start order (the two-phase start the server needs): bind the listener, so the port is known
//! and peers can already connect; start the node with the network factory; attach the node's
//! `Raft` to the server. Requests that arrive in between are refused as "not ready", which
//! peers treat like an unreachable node and retry.

use std::net::SocketAddr;
use std::sync::Arc;

use super::network_tls::{TlsNetwork, TlsNetworkOptions};
use super::node::{ConsensusError, ReplicationNode};
use super::raft_server::{RaftServer, RaftServerOptions};
use super::state_machine::ApplyHandler;
use crate::config::ReplicationConfig;
use crate::security::{NodeKey, NodePublicKey, VoteSigner, VoteVerifier};
use crate::transport::{Listener, TlsSettings, TransportSecurity};
use crate::NodeId;

/// A running node with its consensus server.
pub struct NetworkedNode {
    node: Arc<ReplicationNode>,
    server: RaftServer,
    network: TlsNetwork,
}

impl std::fmt::Debug for NetworkedNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetworkedNode")
            .field("id", &self.node.id())
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl NetworkedNode {
    /// The transport protection `config` asks for: mutual TLS from `cert_path`, `key_path`
    /// and `ca_path`, or, only when `allow_plaintext_dev = true` and no certificate is
    /// configured, plaintext (which logs a warning).
    pub fn security_from_config(
        config: &ReplicationConfig,
    ) -> Result<TransportSecurity, ConsensusError> {
        match (&config.cert_path, &config.key_path, &config.ca_path) {
            (Some(cert), Some(key), Some(ca)) => {
                let settings = TlsSettings {
                    cert_path: cert.clone(),
                    key_path: key.clone(),
                    ca_path: ca.clone(),
                };
                let identity = settings
                    .load()
                    .map_err(|e| ConsensusError::Invalid(e.to_string()))?;
                Ok(TransportSecurity::tls(identity))
            }
            (None, None, None) if config.allow_plaintext_dev => {
                Ok(TransportSecurity::plaintext_for_development())
            }
            (None, None, None) => Err(ConsensusError::Invalid(
                "no TLS material: set cert_path, key_path and ca_path (or allow_plaintext_dev = \
                 true for local development only)"
                    .into(),
            )),
            _ => Err(ConsensusError::Invalid(
                "cert_path, key_path and ca_path must be set together".into(),
            )),
        }
    }

    /// Binds `config.listen_address` and starts the node. See [`NetworkedNode::start_on`].
    pub async fn start(
        config: &ReplicationConfig,
        apply: Arc<dyn ApplyHandler>,
        security: TransportSecurity,
        node_key: NodeKey,
        peer_keys: impl IntoIterator<Item = (NodeId, NodePublicKey)>,
    ) -> Result<NetworkedNode, ConsensusError> {
        check_security(config, &security)?;
        let addr: SocketAddr = config.listen_address.parse().map_err(|_| {
            ConsensusError::Invalid(format!(
                "listen_address `{}` is not an IP address and port; the replication listener \
                 binds an IP, e.g. 0.0.0.0:7400",
                config.listen_address
            ))
        })?;
        let listener = Listener::bind(addr, security.clone())
            .await
            .map_err(|e| ConsensusError::Invalid(e.to_string()))?;
        Self::start_on(listener, config, apply, security, node_key, peer_keys).await
    }

    /// Starts the node on an already bound `listener` (bound with the same `security`).
    /// `node_key` signs this node's vote requests; `peer_keys` are the other voters' public
    /// keys (this node's own key is added). Plaintext `security` is refused unless
    /// `config.allow_plaintext_dev` is set; a TLS certificate must name `config.node_id`.
    pub async fn start_on(
        listener: Listener,
        config: &ReplicationConfig,
        apply: Arc<dyn ApplyHandler>,
        security: TransportSecurity,
        node_key: NodeKey,
        peer_keys: impl IntoIterator<Item = (NodeId, NodePublicKey)>,
    ) -> Result<NetworkedNode, ConsensusError> {
        let options = TlsNetworkOptions::default();
        Self::start_on_with(
            listener, config, apply, security, node_key, peer_keys, options,
        )
        .await
    }

    /// [`NetworkedNode::start_on`] with network tunables.
    pub async fn start_on_with(
        listener: Listener,
        config: &ReplicationConfig,
        apply: Arc<dyn ApplyHandler>,
        security: TransportSecurity,
        node_key: NodeKey,
        peer_keys: impl IntoIterator<Item = (NodeId, NodePublicKey)>,
        network_options: TlsNetworkOptions,
    ) -> Result<NetworkedNode, ConsensusError> {
        check_security(config, &security)?;
        let id = config.node_id;
        let verifier = Arc::new(VoteVerifier::new(
            peer_keys.into_iter().chain([(id, node_key.public_key())]),
        ));
        let mut options = RaftServerOptions::new(verifier);
        options.require_peer_identity = security.is_tls();
        // Beside the node's other consensus state (see `ReplicationNode::start`).
        let state_dir = config.wal_options().dir.join("raft");
        std::fs::create_dir_all(&state_dir)
            .map_err(|e| ConsensusError::Storage(format!("{}: {e}", state_dir.display())))?;
        options.replay_state_dir = Some(state_dir);
        let server = RaftServer::spawn(listener, options)
            .map_err(|e| ConsensusError::Storage(format!("vote replay state: {e}")))?;
        let signer = Arc::new(VoteSigner::new(id, node_key));
        let network = TlsNetwork::new(security, signer, network_options);
        let node = ReplicationNode::start(config, apply, network.clone()).await?;
        server.attach(node.raft().clone());
        tracing::info!(node = id, addr = %server.local_addr(), "consensus server attached");
        Ok(NetworkedNode {
            node: Arc::new(node),
            server,
            network,
        })
    }

    pub fn node(&self) -> &Arc<ReplicationNode> {
        &self.node
    }

    pub fn server(&self) -> &RaftServer {
        &self.server
    }

    pub fn network(&self) -> &TlsNetwork {
        &self.network
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// Stops serving peers, stops the node and closes its WAL.
    pub async fn shutdown(self) -> Result<(), ConsensusError> {
        self.server.detach();
        drop(self.server);
        self.network.disconnect_all();
        self.node.shutdown().await
    }
}

fn check_security(
    config: &ReplicationConfig,
    security: &TransportSecurity,
) -> Result<(), ConsensusError> {
    match security {
        TransportSecurity::Plaintext(_) if !config.allow_plaintext_dev => {
            Err(ConsensusError::Invalid(
                "plaintext transport refused: node-to-node traffic must use mutual TLS; set \
                 allow_plaintext_dev = true only for local development"
                    .into(),
            ))
        }
        TransportSecurity::Tls(identity) => match identity.node_id() {
            Some(n) if n == config.node_id => Ok(()),
            other => Err(ConsensusError::Invalid(format!(
                "the TLS certificate names {} but this is node {}; issue the certificate for \
                 node-{}",
                other.map_or("no node-<id>".to_string(), |n| format!("node-{n}")),
                config.node_id,
                config.node_id
            ))),
        },
        TransportSecurity::Plaintext(_) => Ok(()),
    }
}
