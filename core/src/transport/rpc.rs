//! Request/response over a framed connection, with many requests in flight per connection.
//!
//! A request frame carries a request id chosen by the client; the response repeats it. The
//! client keeps a table of waiting callers keyed by that id, so responses may arrive in any
//! order and the server is free to answer in completion order. Connections are one-way in
//! the RPC sense: the side that connected sends requests, the side that accepted answers.
//! (A Raft node holds one client connection to every peer and serves the peers' connections.)
//!
//! Cancellation: dropping a call's future, or its timeout, forgets the request on the client;
//! a late response is discarded. Frames are handed to a writer task whole, so a cancelled
//! caller can never leave half a frame on the wire.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::task::{JoinHandle, JoinSet};
use tracing::Instrument;

use super::conn::{
    ConnectOptions, Connection, ConnectionReader, ConnectionWriter, PeerInfo, TransportSecurity,
};
use super::error::TransportError;
use super::frame::{Frame, FrameError};
use super::listener::{Listener, ListenerMetrics};

/// A failure reported by a request handler; its message travels back to the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteError {
    pub message: String,
}

impl RemoteError {
    pub fn new(message: impl Into<String>) -> RemoteError {
        RemoteError {
            message: message.into(),
        }
    }
}

impl std::fmt::Display for RemoteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RemoteError {}

/// Why an RPC did not produce a response. A timeout or a closed connection means the outcome
/// on the server is unknown: the request may or may not have been executed.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    #[error("request to {addr} got no response within {after:?} (outcome unknown)")]
    Timeout { addr: SocketAddr, after: Duration },

    #[error("connection to {addr} is closed ({reason}); outcome of pending requests unknown")]
    Closed { addr: SocketAddr, reason: String },

    #[error("{addr} failed the request: {message}")]
    Remote { addr: SocketAddr, message: String },

    #[error(transparent)]
    Transport(#[from] TransportError),
}

/// Options for [`RpcClient`].
#[derive(Debug, Clone)]
pub struct RpcClientOptions {
    pub connect: ConnectOptions,
    /// Used by [`RpcClient::call`]; [`RpcClient::call_with_timeout`] overrides it.
    pub request_timeout: Duration,
    /// Requests queued for the writer before `call` waits.
    pub max_queued_requests: usize,
}

impl Default for RpcClientOptions {
    fn default() -> Self {
        RpcClientOptions {
            connect: ConnectOptions::default(),
            request_timeout: Duration::from_secs(5),
            max_queued_requests: 1024,
        }
    }
}

#[derive(Default)]
struct Pending {
    waiting: HashMap<u64, oneshot::Sender<Frame>>,
    /// Set once, when the connection fails; later calls fail at once with this reason.
    closed: Option<String>,
}

struct ClientShared {
    pending: Mutex<Pending>,
}

impl ClientShared {
    fn close(&self, reason: String) {
        let waiting = {
            let mut p = self.pending.lock();
            if p.closed.is_none() {
                p.closed = Some(reason);
            }
            std::mem::take(&mut p.waiting)
        };
        // Dropping the senders wakes every waiting caller with "closed".
        drop(waiting);
    }

    fn closed_reason(&self) -> String {
        self.pending
            .lock()
            .closed
            .clone()
            .unwrap_or_else(|| "connection closed".to_string())
    }
}

/// Removes a caller's table entry however its call ends (response, timeout, cancellation).
struct PendingGuard<'a> {
    shared: &'a ClientShared,
    id: u64,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.shared.pending.lock().waiting.remove(&self.id);
    }
}

/// [`PendingGuard`] for futures that outlive the borrow of the client.
struct OwnedPendingGuard {
    shared: Arc<ClientShared>,
    id: u64,
}

impl Drop for OwnedPendingGuard {
    fn drop(&mut self) {
        self.shared.pending.lock().waiting.remove(&self.id);
    }
}

/// The calling side of an RPC connection. Share it behind an `Arc` to issue calls from many
/// tasks; they are pipelined over the one connection. Dropping it closes the connection.
pub struct RpcClient {
    peer: PeerInfo,
    shared: Arc<ClientShared>,
    outgoing: mpsc::Sender<Frame>,
    next_id: AtomicU64,
    request_timeout: Duration,
    max_frame_payload: u32,
    tasks: [JoinHandle<()>; 2],
}

impl std::fmt::Debug for RpcClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcClient")
            .field("peer", &self.peer)
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

impl RpcClient {
    /// Connects and starts the connection's reader and writer tasks. See
    /// [`Connection::connect`] for `server_name`.
    pub async fn connect(
        addr: SocketAddr,
        security: &TransportSecurity,
        server_name: &str,
        options: RpcClientOptions,
    ) -> Result<RpcClient, TransportError> {
        let conn = Connection::connect_with(addr, security, server_name, &options.connect).await?;
        Ok(Self::from_connection(conn, options))
    }

    /// Runs the RPC protocol over an already established connection. Spawns the reader and
    /// writer tasks, so it must be called within a tokio runtime.
    pub fn from_connection(conn: Connection, options: RpcClientOptions) -> RpcClient {
        let peer = conn.peer().clone();
        let max_frame_payload = conn.max_frame_payload();
        let (reader, writer) = conn.into_split();
        let shared = Arc::new(ClientShared {
            pending: Mutex::new(Pending::default()),
        });
        let (outgoing, rx) = mpsc::channel(options.max_queued_requests.max(1));
        let span = tracing::debug_span!("transport.rpc_client", peer = %peer.addr, peer_node = ?peer.node_id);
        let writer_shared = shared.clone();
        let writer_task = tokio::spawn(
            async move {
                if let Err(e) = write_loop(writer, rx).await {
                    writer_shared.close(format!("write failed: {e}"));
                }
            }
            .instrument(span.clone()),
        );
        let reader_task = tokio::spawn(client_read_loop(reader, shared.clone()).instrument(span));
        RpcClient {
            peer,
            shared,
            outgoing,
            next_id: AtomicU64::new(1),
            request_timeout: options.request_timeout,
            max_frame_payload,
            tasks: [writer_task, reader_task],
        }
    }

    pub fn peer(&self) -> &PeerInfo {
        &self.peer
    }

    /// True once the connection has failed; every later call fails at once. Reconnect.
    pub fn is_closed(&self) -> bool {
        self.shared.pending.lock().closed.is_some()
    }

    /// Sends a request of `kind` and waits for its response, up to the default timeout.
    pub async fn call(&self, kind: u16, payload: Bytes) -> Result<Bytes, RpcError> {
        self.call_with_timeout(kind, payload, self.request_timeout)
            .await
    }

    /// Queues a request for sending *now* and returns a future for its response. Unlike
    /// [`call_with_timeout`](Self::call_with_timeout), whose frame is queued when the future is
    /// first polled, requests started this way leave in the order of the `start_call` calls,
    /// so a caller can pipeline requests whose order matters. Fails at once if the connection
    /// is closed ([`RpcError::Closed`]) or its send queue is full ([`RpcError::Timeout`] with
    /// a zero duration).
    pub fn start_call(
        &self,
        kind: u16,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<impl Future<Output = Result<Bytes, RpcError>> + Send + 'static, RpcError> {
        let addr = self.peer.addr;
        self.check_size(&payload)?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let rx = self.register(id)?;
        let guard = OwnedPendingGuard {
            shared: self.shared.clone(),
            id,
        };
        match self.outgoing.try_send(Frame::request(kind, id, payload)) {
            Ok(()) => {}
            // The connection is fine but `max_queued_requests` frames wait for the writer: the
            // peer is not keeping up. Reported like a timeout (try again later), not as a
            // closed connection, which would make the caller reconnect.
            Err(mpsc::error::TrySendError::Full(_)) => {
                return Err(RpcError::Timeout {
                    addr,
                    after: Duration::ZERO,
                })
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                return Err(RpcError::Closed {
                    addr,
                    reason: self.shared.closed_reason(),
                })
            }
        }
        let shared = self.shared.clone();
        Ok(async move {
            let _guard = guard;
            let response = match tokio::time::timeout(timeout, rx).await {
                Ok(Ok(frame)) => frame,
                Ok(Err(_)) => {
                    return Err(RpcError::Closed {
                        addr,
                        reason: shared.closed_reason(),
                    })
                }
                Err(_) => {
                    return Err(RpcError::Timeout {
                        addr,
                        after: timeout,
                    })
                }
            };
            response_payload(addr, response)
        })
    }

    fn check_size(&self, payload: &Bytes) -> Result<(), RpcError> {
        if payload.len() as u64 > u64::from(self.max_frame_payload) {
            return Err(RpcError::Transport(TransportError::Frame {
                addr: self.peer.addr,
                source: FrameError::TooLarge {
                    len: payload.len() as u64,
                    max: self.max_frame_payload,
                },
            }));
        }
        Ok(())
    }

    /// Enters request `id` in the table of waiting callers.
    fn register(&self, id: u64) -> Result<oneshot::Receiver<Frame>, RpcError> {
        let (tx, rx) = oneshot::channel();
        // Checked under the same lock `close` takes, so a request is either refused here or in
        // the table that `close` drains: none can wait for a dead connection.
        let mut p = self.shared.pending.lock();
        if let Some(reason) = &p.closed {
            return Err(RpcError::Closed {
                addr: self.peer.addr,
                reason: reason.clone(),
            });
        }
        p.waiting.insert(id, tx);
        Ok(rx)
    }

    pub async fn call_with_timeout(
        &self,
        kind: u16,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<Bytes, RpcError> {
        let addr = self.peer.addr;
        self.check_size(&payload)?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let rx = self.register(id)?;
        let _guard = PendingGuard {
            shared: &self.shared,
            id,
        };
        let closed = || RpcError::Closed {
            addr,
            reason: self.shared.closed_reason(),
        };
        let exchange = async {
            self.outgoing
                .send(Frame::request(kind, id, payload))
                .await
                .map_err(|_| closed())?;
            rx.await.map_err(|_| closed())
        };
        let response = match tokio::time::timeout(timeout, exchange).await {
            Ok(result) => result?,
            Err(_) => {
                return Err(RpcError::Timeout {
                    addr,
                    after: timeout,
                })
            }
        };
        response_payload(addr, response)
    }
}

fn response_payload(addr: SocketAddr, response: Frame) -> Result<Bytes, RpcError> {
    if response.is_error() {
        return Err(RpcError::Remote {
            addr,
            message: String::from_utf8_lossy(&response.payload).into_owned(),
        });
    }
    Ok(response.payload)
}

impl Drop for RpcClient {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn client_read_loop(mut reader: ConnectionReader, shared: Arc<ClientShared>) {
    let reason = loop {
        match reader.recv().await {
            Ok(Some(frame)) if frame.is_response() => {
                let waiter = shared.pending.lock().waiting.remove(&frame.request_id);
                match waiter {
                    Some(tx) => {
                        let _ = tx.send(frame);
                    }
                    None => tracing::debug!(
                        request_id = frame.request_id,
                        "response after its caller gave up; discarded"
                    ),
                }
            }
            Ok(Some(frame)) => {
                break format!(
                    "peer sent a request (kind {}) on a client connection",
                    frame.kind
                )
            }
            Ok(None) => break "peer closed the connection".to_string(),
            Err(e) => break e.to_string(),
        }
    };
    tracing::debug!(%reason, "RPC client connection closed");
    shared.close(reason);
}

/// Writes queued frames, flushing once the queue is momentarily empty so pipelined frames
/// share TLS records. Ends (with a clean shutdown) when every sender is gone.
async fn write_loop(
    mut writer: ConnectionWriter,
    mut rx: mpsc::Receiver<Frame>,
) -> Result<(), TransportError> {
    while let Some(frame) = rx.recv().await {
        writer.send_unflushed(&frame).await?;
        while let Ok(more) = rx.try_recv() {
            writer.send_unflushed(&more).await?;
        }
        writer.flush().await?;
    }
    writer.shutdown().await
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
type HandlerFuture = BoxFuture<Result<Bytes, RemoteError>>;
/// The handler of one connection: called in the order requests arrive.
type ConnHandler = Box<dyn FnMut(u16, Bytes) -> HandlerFuture + Send>;
/// Makes the handler of each accepted connection.
type ConnFactory = Arc<dyn Fn(PeerInfo) -> ConnHandler + Send + Sync>;

/// Counters of an [`RpcServer`], for the metrics endpoint.
#[derive(Debug, Default)]
pub struct RpcServerMetrics {
    /// Requests handed to the handler.
    pub requests: AtomicU64,
    /// Requests whose handler returned an error or panicked.
    pub handler_errors: AtomicU64,
    /// Connections dropped because the peer broke the protocol (bad frame, response frame).
    pub protocol_errors: AtomicU64,
}

/// Serves RPCs on every connection a [`Listener`] accepts, running the handler for each
/// request in its own task (at most `max_in_flight_per_connection` at once per connection;
/// beyond that the server stops reading from that peer until one finishes).
pub struct RpcServer {
    local_addr: SocketAddr,
    listener_metrics: Arc<ListenerMetrics>,
    metrics: Arc<RpcServerMetrics>,
    task: JoinHandle<()>,
}

/// Default bound on concurrently running handlers per connection.
pub const DEFAULT_MAX_IN_FLIGHT_PER_CONNECTION: usize = 256;

impl RpcServer {
    /// Starts serving (within a tokio runtime). `handler(peer, kind, payload)` runs once per
    /// request; its `Ok` bytes are the response, its `Err` message is returned to the caller as
    /// [`RpcError::Remote`]. `peer` is the authenticated peer ([`PeerInfo::node_id`]).
    pub fn spawn<H, F>(listener: Listener, handler: H) -> RpcServer
    where
        H: Fn(PeerInfo, u16, Bytes) -> F + Send + Sync + 'static,
        F: Future<Output = Result<Bytes, RemoteError>> + Send + 'static,
    {
        Self::spawn_with(listener, DEFAULT_MAX_IN_FLIGHT_PER_CONNECTION, handler)
    }

    pub fn spawn_with<H, F>(
        listener: Listener,
        max_in_flight_per_connection: usize,
        handler: H,
    ) -> RpcServer
    where
        H: Fn(PeerInfo, u16, Bytes) -> F + Send + Sync + 'static,
        F: Future<Output = Result<Bytes, RemoteError>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        Self::spawn_per_connection(listener, max_in_flight_per_connection, move |peer| {
            let handler = handler.clone();
            move |kind, payload| handler(peer.clone(), kind, payload)
        })
    }

    /// Like [`spawn_with`](Self::spawn_with), with state per connection: `factory(peer)` runs
    /// once per accepted connection and returns that connection's handler, which is dropped
    /// when the connection ends. The handler is *called* on the connection's reader, in the
    /// order the requests arrived, and the futures it returns then run concurrently; so work a
    /// handler does before returning its future (such as queueing the request somewhere) keeps
    /// the sender's order. It must not block.
    pub fn spawn_per_connection<M, H, F>(
        listener: Listener,
        max_in_flight_per_connection: usize,
        factory: M,
    ) -> RpcServer
    where
        M: Fn(PeerInfo) -> H + Send + Sync + 'static,
        H: FnMut(u16, Bytes) -> F + Send + 'static,
        F: Future<Output = Result<Bytes, RemoteError>> + Send + 'static,
    {
        let handler: ConnFactory = Arc::new(move |peer| {
            let mut conn_handler = factory(peer);
            Box::new(move |kind, payload| Box::pin(conn_handler(kind, payload)) as HandlerFuture)
                as ConnHandler
        });
        let local_addr = listener.local_addr();
        let listener_metrics = listener.metrics();
        let metrics = Arc::new(RpcServerMetrics::default());
        let span = tracing::info_span!("transport.rpc_server", addr = %local_addr);
        let task = tokio::spawn(
            serve(
                listener,
                handler,
                max_in_flight_per_connection.max(1),
                metrics.clone(),
            )
            .instrument(span),
        );
        RpcServer {
            local_addr,
            listener_metrics,
            metrics,
            task,
        }
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Accepted and refused handshakes of the underlying listener.
    pub fn listener_metrics(&self) -> Arc<ListenerMetrics> {
        self.listener_metrics.clone()
    }

    pub fn metrics(&self) -> Arc<RpcServerMetrics> {
        self.metrics.clone()
    }

    /// Stops accepting, closes every connection and cancels running handlers.
    pub async fn shutdown(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

impl Drop for RpcServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    mut listener: Listener,
    handler: ConnFactory,
    max_in_flight: usize,
    metrics: Arc<RpcServerMetrics>,
) {
    // Owning the connection tasks here means aborting this task aborts all of them.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            conn = listener.accept() => match conn {
                Ok(conn) => {
                    let peer = conn.peer();
                    let span = tracing::info_span!("transport.rpc_conn", peer = %peer.addr, peer_node = ?peer.node_id);
                    connections.spawn(
                        serve_connection(conn, handler.clone(), max_in_flight, metrics.clone()).instrument(span),
                    );
                }
                Err(e) => {
                    tracing::error!(error = %e, "listener stopped; no more connections will be served");
                    break;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    while connections.join_next().await.is_some() {}
}

async fn serve_connection(
    conn: Connection,
    factory: ConnFactory,
    max_in_flight: usize,
    metrics: Arc<RpcServerMetrics>,
) {
    let peer = conn.peer().clone();
    let mut handler = match std::panic::catch_unwind(AssertUnwindSafe(|| factory(peer.clone()))) {
        Ok(h) => h,
        Err(_) => {
            tracing::error!("RPC connection handler factory panicked; closing the connection");
            return;
        }
    };
    let max_payload = conn.max_frame_payload();
    let (mut reader, writer) = conn.into_split();
    let (tx, rx) = mpsc::channel::<Frame>(max_in_flight);
    let writer_task = tokio::spawn(
        async move {
            if let Err(e) = write_loop(writer, rx).await {
                tracing::debug!(error = %e, "writing responses failed");
            }
        }
        .in_current_span(),
    );
    let permits = Arc::new(Semaphore::new(max_in_flight));
    let mut handlers = JoinSet::new();
    // No select! around `recv`: reading a frame is not cancellation safe (a cancelled read
    // loses the bytes it consumed), so finished handler tasks are reaped between frames.
    loop {
        let frame = reader.recv().await;
        while handlers.try_join_next().is_some() {}
        match frame {
            Ok(Some(request)) if !request.is_response() => {
                // Waiting here stops reading from this peer: backpressure, not a queue.
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    break;
                };
                metrics.requests.fetch_add(1, Ordering::Relaxed);
                let span = tracing::debug_span!(
                    "rpc",
                    kind = request.kind,
                    request_id = request.request_id
                );
                // Called here, in arrival order; only the returned future runs in a task.
                let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
                    handler(request.kind, request.payload.clone())
                }))
                .map_err(|_| ());
                let task = respond(request, outcome, max_payload, tx.clone(), metrics.clone());
                handlers.spawn(
                    async move {
                        task.await;
                        drop(permit);
                    }
                    .instrument(span),
                );
            }
            Ok(Some(frame)) => {
                metrics.protocol_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    kind = frame.kind,
                    "peer sent a response frame to a server connection; closing it"
                );
                break;
            }
            Ok(None) => break,
            Err(e) => {
                let broken_protocol = matches!(
                    &e,
                    TransportError::Frame { source, .. } if !matches!(source, FrameError::Io(_))
                );
                if broken_protocol {
                    metrics.protocol_errors.fetch_add(1, Ordering::Relaxed);
                }
                tracing::warn!(error = %e, "closing connection");
                break;
            }
        }
    }
    // Let running handlers answer (the peer may have closed only its sending side), then the
    // writer drains and shuts the connection down once the last sender is gone. The
    // connection's handler goes first: it may own work queues its futures wait on.
    drop(handler);
    drop(tx);
    while handlers.join_next().await.is_some() {}
    let _ = writer_task.await;
}

async fn respond(
    request: Frame,
    handler_call: Result<HandlerFuture, ()>,
    max_payload: u32,
    tx: mpsc::Sender<Frame>,
    metrics: Arc<RpcServerMetrics>,
) {
    let outcome = match handler_call {
        Ok(future) => CatchUnwind(future).await,
        Err(()) => Err(()),
    };
    let response = match outcome {
        Ok(Ok(body)) if body.len() as u64 <= u64::from(max_payload) => {
            Frame::response_to(&request, body)
        }
        Ok(Ok(body)) => {
            metrics.handler_errors.fetch_add(1, Ordering::Relaxed);
            tracing::error!(
                len = body.len(),
                max_payload,
                "handler response exceeds the frame limit"
            );
            Frame::error_response_to(
                &request,
                &format!(
                    "response of {} bytes exceeds the frame limit of {max_payload} bytes",
                    body.len()
                ),
            )
        }
        Ok(Err(e)) => {
            metrics.handler_errors.fetch_add(1, Ordering::Relaxed);
            Frame::error_response_to(&request, &truncate_message(&e.message, max_payload))
        }
        Err(()) => {
            metrics.handler_errors.fetch_add(1, Ordering::Relaxed);
            tracing::error!(kind = request.kind, "RPC handler panicked");
            Frame::error_response_to(&request, "the request handler panicked")
        }
    };
    // Fails only when the connection is going away.
    let _ = tx.send(response).await;
}

fn truncate_message(message: &str, max_payload: u32) -> String {
    let max = max_payload as usize;
    if message.len() <= max {
        return message.to_string();
    }
    let mut end = max;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    message[..end].to_string()
}

/// Turns a panic inside a handler future into an error response instead of a lost request
/// (which the caller could only see as a timeout).
struct CatchUnwind<F>(F);

impl<F: Future + Unpin> Future for CatchUnwind<F> {
    type Output = Result<F::Output, ()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = &mut self.0;
        match std::panic::catch_unwind(AssertUnwindSafe(|| Pin::new(inner).poll(cx))) {
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(_) => Poll::Ready(Err(())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_error_messages_are_cut_on_a_char_boundary() {
        assert_eq!(truncate_message("héllo", 2), "h");
        assert_eq!(truncate_message("héllo", 3), "hé");
        assert_eq!(truncate_message("abc", 10), "abc");
    }
}
