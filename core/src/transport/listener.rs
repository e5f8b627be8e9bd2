//! Accepting connections: TCP accept plus TLS handshake, off the caller's path.
//!
//! Handshakes run in their own tasks, so a slow or hostile client (one that connects and
//! says nothing) holds up neither the accept loop nor other peers; each is bounded by
//! `handshake_timeout`. Refused handshakes (no client certificate, unknown CA, TLS 1.2,
//! plaintext, timeouts) are counted: a climbing counter means a misconfigured node or a probe.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tracing::Instrument;

use super::conn::{Connection, PeerInfo, TransportSecurity};
use super::error::TransportError;
use super::frame::DEFAULT_MAX_FRAME_PAYLOAD;

/// Options for [`Listener::bind_with`].
#[derive(Debug, Clone)]
pub struct ListenerOptions {
    /// A client must complete the TLS handshake within this time.
    pub handshake_timeout: Duration,
    /// Handshakes in progress at once; connections beyond it are closed at once and counted
    /// as refused.
    pub max_pending_handshakes: usize,
    /// Largest frame payload sent or accepted on accepted connections.
    pub max_frame_payload: u32,
}

impl Default for ListenerOptions {
    fn default() -> Self {
        ListenerOptions {
            handshake_timeout: Duration::from_secs(10),
            max_pending_handshakes: 256,
            max_frame_payload: DEFAULT_MAX_FRAME_PAYLOAD,
        }
    }
}

/// Counters of a listener, for the metrics endpoint.
#[derive(Debug, Default)]
pub struct ListenerMetrics {
    /// Connections that completed the handshake and were handed to the caller.
    pub accepted: AtomicU64,
    /// Connections closed because the handshake failed, timed out, or there were too many.
    pub refused_handshakes: AtomicU64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerMetricsSnapshot {
    pub accepted: u64,
    pub refused_handshakes: u64,
}

impl ListenerMetrics {
    pub fn snapshot(&self) -> ListenerMetricsSnapshot {
        ListenerMetricsSnapshot {
            accepted: self.accepted.load(Ordering::Relaxed),
            refused_handshakes: self.refused_handshakes.load(Ordering::Relaxed),
        }
    }
}

/// A bound socket accepting peer connections. Dropping it stops accepting and aborts
/// handshakes in progress; connections already returned by [`Listener::accept`] live on.
pub struct Listener {
    local_addr: SocketAddr,
    incoming: mpsc::Receiver<Connection>,
    metrics: Arc<ListenerMetrics>,
    task: JoinHandle<()>,
}

impl Listener {
    /// Binds `addr` (port 0 picks a free port) and starts accepting. Must be called within a
    /// tokio runtime.
    pub async fn bind(
        addr: SocketAddr,
        security: TransportSecurity,
    ) -> Result<Listener, TransportError> {
        Self::bind_with(addr, security, ListenerOptions::default()).await
    }

    pub async fn bind_with(
        addr: SocketAddr,
        security: TransportSecurity,
        options: ListenerOptions,
    ) -> Result<Listener, TransportError> {
        let tcp = TcpListener::bind(addr)
            .await
            .map_err(|source| TransportError::Io {
                action: "binding",
                addr,
                source,
            })?;
        let local_addr = tcp.local_addr().map_err(|source| TransportError::Io {
            action: "reading the local address of",
            addr,
            source,
        })?;
        let metrics = Arc::new(ListenerMetrics::default());
        let (tx, incoming) = mpsc::channel(64);
        let span =
            tracing::info_span!("transport.listen", addr = %local_addr, tls = security.is_tls());
        tracing::info!(parent: &span, "listening for peer connections");
        let task =
            tokio::spawn(accept_loop(tcp, security, options, tx, metrics.clone()).instrument(span));
        Ok(Listener {
            local_addr,
            incoming,
            metrics,
            task,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn metrics(&self) -> Arc<ListenerMetrics> {
        self.metrics.clone()
    }

    /// The next connection that completed its handshake.
    pub async fn accept(&mut self) -> Result<Connection, TransportError> {
        self.incoming
            .recv()
            .await
            .ok_or(TransportError::ListenerClosed(self.local_addr))
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(
    tcp: TcpListener,
    security: TransportSecurity,
    options: ListenerOptions,
    tx: mpsc::Sender<Connection>,
    metrics: Arc<ListenerMetrics>,
) {
    let mut handshakes = JoinSet::new();
    loop {
        tokio::select! {
            accepted = tcp.accept() => match accepted {
                Ok((stream, addr)) => {
                    if handshakes.len() >= options.max_pending_handshakes {
                        metrics.refused_handshakes.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(peer = %addr, "too many handshakes in progress; closing connection");
                        continue;
                    }
                    let span = tracing::debug_span!("transport.handshake", peer = %addr);
                    handshakes.spawn(
                        handshake(stream, addr, security.clone(), options.clone(), tx.clone(), metrics.clone())
                            .instrument(span),
                    );
                }
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning on the error.
                    tracing::warn!(error = %e, "accept failed; retrying in 100 ms");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = handshakes.join_next(), if !handshakes.is_empty() => {}
        }
    }
}

async fn handshake(
    stream: TcpStream,
    addr: SocketAddr,
    security: TransportSecurity,
    options: ListenerOptions,
    tx: mpsc::Sender<Connection>,
    metrics: Arc<ListenerMetrics>,
) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(error = %e, "cannot set TCP_NODELAY");
    }
    let conn = match security {
        TransportSecurity::Plaintext(_) => Connection::new(
            Box::new(stream),
            PeerInfo::plaintext(addr),
            options.max_frame_payload,
        ),
        TransportSecurity::Tls(identity) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(identity.server_config());
            match tokio::time::timeout(options.handshake_timeout, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    let peer =
                        PeerInfo::from_verified_certs(addr, tls.get_ref().1.peer_certificates());
                    tracing::debug!(peer_node = ?peer.node_id, "TLS handshake complete");
                    Connection::new(Box::new(tls), peer, options.max_frame_payload)
                }
                Ok(Err(e)) => {
                    metrics.refused_handshakes.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %e, "refused connection: TLS handshake failed");
                    return;
                }
                Err(_) => {
                    metrics.refused_handshakes.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(timeout = ?options.handshake_timeout, "refused connection: TLS handshake timed out");
                    return;
                }
            }
        }
    };
    metrics.accepted.fetch_add(1, Ordering::Relaxed);
    // Fails only when the Listener was dropped; the connection is then simply closed.
    let _ = tx.send(conn).await;
}
