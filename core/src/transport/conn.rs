//! Framed, authenticated connections between nodes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufWriter, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tracing::Instrument;

use super::error::TransportError;
use super::frame::{read_frame, write_frame, Frame, DEFAULT_MAX_FRAME_PAYLOAD};
use super::identity::certificate_names;
use super::tls::TlsIdentity;
use crate::NodeId;

/// How connections are protected. There is deliberately no way to build the plaintext variant
/// except [`TransportSecurity::plaintext_for_development`].
#[derive(Debug, Clone)]
pub enum TransportSecurity {
    /// Mutual TLS 1.3 with the node's identity.
    Tls(Arc<TlsIdentity>),
    /// No encryption, no authentication. Development only.
    Plaintext(PlaintextAcknowledged),
}

/// Proof that plaintext was chosen through [`TransportSecurity::plaintext_for_development`].
#[derive(Debug, Clone)]
pub struct PlaintextAcknowledged {
    _private: (),
}

impl TransportSecurity {
    pub fn tls(identity: TlsIdentity) -> TransportSecurity {
        TransportSecurity::Tls(Arc::new(identity))
    }

    /// Unencrypted, unauthenticated transport, for development on a trusted machine. Anyone
    /// who can reach the port can then send Raft messages, including votes that depose the
    /// leader. Logs a warning every time it is called, so it shows in the startup log.
    pub fn plaintext_for_development() -> TransportSecurity {
        tracing::warn!(
            "node-to-node transport is PLAINTEXT (development flag set): traffic is neither \
             encrypted nor authenticated; never use this outside a trusted test machine"
        );
        TransportSecurity::Plaintext(PlaintextAcknowledged { _private: () })
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, TransportSecurity::Tls(_))
    }
}

/// Who is on the other end of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    pub addr: SocketAddr,
    /// True when the connection is TLS and the peer's certificate was verified against the CA.
    pub authenticated: bool,
    /// The node id from the peer certificate's `node-<id>` name; `None` for plaintext
    /// connections and for certificates that do not follow the convention. The consensus layer
    /// must refuse a message whose claimed sender differs from this id.
    pub node_id: Option<NodeId>,
    /// DNS subject alternative names of the peer certificate (empty for plaintext).
    pub dns_names: Vec<String>,
    /// URI subject alternative names of the peer certificate (empty for plaintext).
    pub uri_names: Vec<String>,
}

impl PeerInfo {
    pub(crate) fn plaintext(addr: SocketAddr) -> PeerInfo {
        PeerInfo {
            addr,
            authenticated: false,
            node_id: None,
            dns_names: Vec::new(),
            uri_names: Vec::new(),
        }
    }

    /// Built from the certificates rustls verified during the handshake.
    pub(crate) fn from_verified_certs(
        addr: SocketAddr,
        certs: Option<&[CertificateDer<'static>]>,
    ) -> PeerInfo {
        let names = certs
            .and_then(|c| c.first())
            .and_then(certificate_names)
            .unwrap_or_default();
        PeerInfo {
            addr,
            authenticated: certs.is_some_and(|c| !c.is_empty()),
            node_id: names.node_id(),
            dns_names: names.dns,
            uri_names: names.uri,
        }
    }
}

/// The node id the peer of `conn` authenticated as (see [`PeerInfo::node_id`]).
pub fn peer_node_id(conn: &Connection) -> Option<NodeId> {
    conn.peer().node_id
}

/// A byte stream a connection can run over: TCP, or TLS over TCP.
pub(crate) trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}
pub(crate) type BoxStream = Box<dyn Stream>;
/// Frames are written as header then payload; buffering joins them (and pipelined frames)
/// into one TLS record and one segment instead of one per write call.
type Buffered = BufWriter<BoxStream>;

/// Options for [`Connection::connect_with`].
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Bound on TCP connect plus TLS handshake.
    pub connect_timeout: Duration,
    /// Largest frame payload sent or accepted; must match the peer's listener.
    pub max_frame_payload: u32,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            connect_timeout: Duration::from_secs(5),
            max_frame_payload: DEFAULT_MAX_FRAME_PAYLOAD,
        }
    }
}

/// A framed bidirectional connection to a peer.
pub struct Connection {
    stream: Buffered,
    peer: PeerInfo,
    max_frame_payload: u32,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

impl Connection {
    pub(crate) fn new(stream: BoxStream, peer: PeerInfo, max_frame_payload: u32) -> Connection {
        Connection {
            stream: BufWriter::new(stream),
            peer,
            max_frame_payload,
        }
    }

    /// Connects to `addr` with default options. With TLS, the server's certificate must be
    /// valid for `server_name`: pass [`super::node_server_name`]`(id)` to make sure the peer
    /// is the node you meant. Ignored for plaintext.
    pub async fn connect(
        addr: SocketAddr,
        security: &TransportSecurity,
        server_name: &str,
    ) -> Result<Connection, TransportError> {
        Self::connect_with(addr, security, server_name, &ConnectOptions::default()).await
    }

    pub async fn connect_with(
        addr: SocketAddr,
        security: &TransportSecurity,
        server_name: &str,
        options: &ConnectOptions,
    ) -> Result<Connection, TransportError> {
        let span =
            tracing::debug_span!("transport.connect", %addr, server_name, tls = security.is_tls());
        let attempt = connect_inner(addr, security, server_name, options.max_frame_payload);
        match tokio::time::timeout(options.connect_timeout, attempt.instrument(span)).await {
            Ok(result) => result,
            Err(_) => Err(TransportError::Timeout {
                action: "connecting to",
                addr,
                after: options.connect_timeout,
            }),
        }
    }

    pub fn peer(&self) -> &PeerInfo {
        &self.peer
    }

    pub fn max_frame_payload(&self) -> u32 {
        self.max_frame_payload
    }

    /// Sends one frame and flushes it.
    pub async fn send(&mut self, frame: &Frame) -> Result<(), TransportError> {
        let addr = self.peer.addr;
        let frame_err = |source| TransportError::Frame { addr, source };
        write_frame(&mut self.stream, frame, self.max_frame_payload)
            .await
            .map_err(frame_err)?;
        self.stream.flush().await.map_err(|e| frame_err(e.into()))
    }

    /// Receives one frame; `Ok(None)` when the peer closed the connection between frames.
    pub async fn recv(&mut self) -> Result<Option<Frame>, TransportError> {
        read_frame(&mut self.stream, self.max_frame_payload)
            .await
            .map_err(|source| TransportError::Frame {
                addr: self.peer.addr,
                source,
            })
    }

    /// Closes the sending direction (TLS close_notify, then TCP FIN).
    pub async fn shutdown(&mut self) -> Result<(), TransportError> {
        self.stream
            .shutdown()
            .await
            .map_err(|source| TransportError::Io {
                action: "shutting down the connection to",
                addr: self.peer.addr,
                source,
            })
    }

    /// Splits into halves that can be used from different tasks.
    pub fn into_split(self) -> (ConnectionReader, ConnectionWriter) {
        let (r, w) = tokio::io::split(self.stream);
        (
            ConnectionReader {
                inner: r,
                peer: self.peer.clone(),
                max_frame_payload: self.max_frame_payload,
            },
            ConnectionWriter {
                inner: w,
                peer: self.peer,
                max_frame_payload: self.max_frame_payload,
            },
        )
    }
}

/// Receiving half of a [`Connection`].
pub struct ConnectionReader {
    inner: ReadHalf<Buffered>,
    peer: PeerInfo,
    max_frame_payload: u32,
}

impl ConnectionReader {
    pub async fn recv(&mut self) -> Result<Option<Frame>, TransportError> {
        read_frame(&mut self.inner, self.max_frame_payload)
            .await
            .map_err(|source| TransportError::Frame {
                addr: self.peer.addr,
                source,
            })
    }

    pub fn peer(&self) -> &PeerInfo {
        &self.peer
    }
}

/// Sending half of a [`Connection`].
pub struct ConnectionWriter {
    inner: WriteHalf<Buffered>,
    peer: PeerInfo,
    max_frame_payload: u32,
}

impl ConnectionWriter {
    /// Writes one frame without flushing; call [`ConnectionWriter::flush`] after a batch.
    pub async fn send_unflushed(&mut self, frame: &Frame) -> Result<(), TransportError> {
        write_frame(&mut self.inner, frame, self.max_frame_payload)
            .await
            .map_err(|source| TransportError::Frame {
                addr: self.peer.addr,
                source,
            })
    }

    pub async fn flush(&mut self) -> Result<(), TransportError> {
        self.inner.flush().await.map_err(|e| TransportError::Frame {
            addr: self.peer.addr,
            source: e.into(),
        })
    }

    pub async fn send(&mut self, frame: &Frame) -> Result<(), TransportError> {
        self.send_unflushed(frame).await?;
        self.flush().await
    }

    pub async fn shutdown(&mut self) -> Result<(), TransportError> {
        self.inner
            .shutdown()
            .await
            .map_err(|source| TransportError::Io {
                action: "shutting down the connection to",
                addr: self.peer.addr,
                source,
            })
    }

    pub fn peer(&self) -> &PeerInfo {
        &self.peer
    }
}

async fn connect_inner(
    addr: SocketAddr,
    security: &TransportSecurity,
    server_name: &str,
    max_frame_payload: u32,
) -> Result<Connection, TransportError> {
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|source| TransportError::Io {
            action: "connecting to",
            addr,
            source,
        })?;
    // Raft messages are small and latency-bound; Nagle would hold heartbeats back.
    tcp.set_nodelay(true).map_err(|source| TransportError::Io {
        action: "setting TCP_NODELAY on the connection to",
        addr,
        source,
    })?;
    match security {
        TransportSecurity::Plaintext(_) => Ok(Connection::new(
            Box::new(tcp),
            PeerInfo::plaintext(addr),
            max_frame_payload,
        )),
        TransportSecurity::Tls(identity) => {
            let name = ServerName::try_from(server_name.to_string())
                .map_err(|_| TransportError::InvalidServerName(server_name.to_string()))?;
            let connector = tokio_rustls::TlsConnector::from(identity.client_config());
            let tls = connector
                .connect(name, tcp)
                .await
                .map_err(|source| TransportError::Handshake { addr, source })?;
            let peer = PeerInfo::from_verified_certs(addr, tls.get_ref().1.peer_certificates());
            tracing::debug!(peer_node = ?peer.node_id, "TLS connection established");
            Ok(Connection::new(Box::new(tls), peer, max_frame_payload))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts WARN events; just enough of a subscriber to observe the plaintext warning.
    #[derive(Default)]
    struct WarnCounter {
        warnings: Arc<AtomicUsize>,
    }

    impl tracing::Subscriber for WarnCounter {
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, event: &tracing::Event<'_>) {
            if *event.metadata().level() == tracing::Level::WARN {
                self.warnings.fetch_add(1, Ordering::SeqCst);
            }
        }
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }

    #[test]
    fn choosing_plaintext_logs_a_warning() {
        let subscriber = WarnCounter::default();
        let warnings = subscriber.warnings.clone();
        let security = tracing::subscriber::with_default(subscriber, || {
            TransportSecurity::plaintext_for_development()
        });
        assert!(!security.is_tls());
        assert_eq!(warnings.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn plaintext_peer_has_no_identity() {
        let peer = PeerInfo::plaintext("127.0.0.1:1".parse().unwrap());
        assert!(!peer.authenticated);
        assert_eq!(peer.node_id, None);
        let no_certs = PeerInfo::from_verified_certs("127.0.0.1:1".parse().unwrap(), None);
        assert_eq!(no_certs, peer);
    }
}
