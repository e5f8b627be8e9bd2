//! Errors of the transport layer. Messages say which file or peer was involved and what to do.

use std::net::SocketAddr;
use std::time::Duration;

use super::frame::FrameError;

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// A certificate, key or CA file (or in-memory PEM) could not be used.
    #[error("cannot load the {what} from {origin}: {problem}")]
    TlsMaterial {
        /// "node certificate", "private key" or "CA certificate".
        what: &'static str,
        /// A file path, or "in-memory PEM".
        origin: String,
        problem: String,
    },

    /// The private key does not belong to the node certificate.
    #[error(
        "the private key in {key_origin} does not match the certificate in {cert_origin}; \
         point key_path at the key the certificate was issued for"
    )]
    KeyMismatch {
        cert_origin: String,
        key_origin: String,
    },

    /// rustls refused the configuration built from otherwise readable material.
    #[error("invalid TLS configuration: {0}")]
    TlsConfig(String),

    /// `server_name` is not a DNS name or IP address rustls can verify a certificate against.
    #[error("{0:?} is not a valid server name; use node_server_name(id), e.g. \"node-3\"")]
    InvalidServerName(String),

    /// A socket operation (bind, connect, read, write) failed.
    #[error("{action} {addr}: {source}")]
    Io {
        action: &'static str,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },

    /// The TLS handshake with a peer failed (wrong CA, no client certificate, TLS 1.2, ...).
    #[error("TLS handshake with {addr} failed: {source}")]
    Handshake {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },

    /// Connecting, or the TLS handshake, did not finish in time.
    #[error("{action} {addr} did not finish within {after:?}")]
    Timeout {
        action: &'static str,
        addr: SocketAddr,
        after: Duration,
    },

    /// A frame could not be read or written.
    #[error("transport frame error with {addr}: {source}")]
    Frame {
        addr: SocketAddr,
        #[source]
        source: FrameError,
    },

    /// The listener's background task has stopped; no more connections will be accepted.
    #[error("the listener on {0} is closed")]
    ListenerClosed(SocketAddr),
}
