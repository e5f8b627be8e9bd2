//! Node-to-node transport: framed messages over TCP, protected by mutual TLS 1.3.
//!
//! Why it looks like this:
//!
//! - **Every RPC is authenticated.** A Raft AppendEntries carries a vote and can depose a
//!   leader, so an unauthenticated peer could disrupt the cluster with one message. Both ends
//!   present certificates issued by the cluster CA ([`tls`]); the server refuses a client
//!   without one, and the client checks that the server's certificate names the node it meant
//!   to reach. Vote requests are additionally signed (see `crate::security`).
//! - **TLS 1.3 only.** TLS 1.2 handshakes are refused: 1.3 removes renegotiation, static-RSA
//!   key exchange and CBC suites, and hides the certificates from passive observers. rustls is
//!   built without TLS 1.2 support outside of tests.
//! - **Plaintext is possible but must be asked for by name**
//!   ([`TransportSecurity::plaintext_for_development`]), which logs a warning; there is no
//!   config value that silently turns TLS off.
//! - **Node identity comes from the certificate.** A node certificate carries the DNS subject
//!   alternative name `node-<id>` (decimal, e.g. `node-3`). After the handshake,
//!   [`PeerInfo::node_id`] holds the id the CA vouched for, so the consensus layer can refuse
//!   a message whose claimed sender differs. See [`identity`].
//! - **Frames carry a magic, a version and a CRC32C** ([`frame`]), even under TLS: the version
//!   lets mixed-version clusters refuse each other clearly, and the checksum protects the
//!   development plaintext mode and catches framing bugs. Decoding never trusts a length
//!   before checking it against a limit.
//! - **RPCs are pipelined** ([`rpc`]): each request carries an id, the server runs handlers
//!   concurrently and answers in completion order, so a slow snapshot request does not hold
//!   up heartbeats on the same connection.

mod conn;
#[cfg(any(test, feature = "dev-certs"))]
pub mod dev_certs;
mod error;
pub mod frame;
pub mod identity;
mod listener;
pub mod rpc;
pub mod tls;

pub use conn::{
    peer_node_id, ConnectOptions, Connection, ConnectionReader, ConnectionWriter, PeerInfo,
    PlaintextAcknowledged, TransportSecurity,
};
pub use error::TransportError;
pub use frame::{Frame, FrameError, DEFAULT_MAX_FRAME_PAYLOAD, FRAME_HEADER_LEN};
pub use identity::{node_id_from_certificate, node_server_name};
pub use listener::{Listener, ListenerMetrics, ListenerMetricsSnapshot, ListenerOptions};
pub use rpc::{
    RemoteError, RpcClient, RpcClientOptions, RpcError, RpcServer, RpcServerMetrics,
    DEFAULT_MAX_IN_FLIGHT_PER_CONNECTION,
};
pub use tls::{TlsIdentity, TlsSettings};
