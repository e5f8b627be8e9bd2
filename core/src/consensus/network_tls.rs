//! The real Raft network: openraft RPCs over the mutual-TLS transport ([`crate::transport`]).
//!
//! [`TlsNetwork`] is the `RaftNetworkFactory` a node passes to `ReplicationNode::start`. It
//! keeps one [`RpcClient`] per peer, shared by every openraft client of that peer (replication
//! stream, votes, snapshots), connected lazily on first use and again after the connection
//! fails. The client checks that the server's certificate names `node-<target>`, so an RPC
//! meant for node 2 can only reach node 2. Payloads are described in [`super::rpc_kinds`].
//!
//! Vote and pre-vote requests are signed afresh for every transmission (see
//! [`crate::security::vote_signing`]); the receiving [`super::raft_server::RaftServer`]
//! verifies them before Raft sees them.
//!
//! Errors map onto openraft's as follows, which decides how openraft retries:
//! - cannot resolve or connect (or still backing off after a failed connect): `Unreachable`,
//!   so openraft backs off too;
//! - no response within the RPC's soft TTL: `Timeout`;
//! - connection lost mid-call: `Unreachable` (the next call reconnects);
//! - the peer answered with an error (it refused the request, or its Raft is stopping):
//!   `Unreachable`, since repeating the same request at once would fail the same way;
//! - a response that does not decode, or a request over the frame limit: `Network`.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use openraft::base::{BoxFuture, BoxStream};
use openraft::errors::{
    NetworkError, RPCError, ReplicationClosed, StreamingError, Timeout, Unreachable,
};
use openraft::network::{RPCOption, RPCTypes, RaftNetworkFactory, RaftNetworkV2};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, StreamAppendError,
    StreamAppendResult, TransferLeaderRequest, TransferLeaderResponse, VoteRequest, VoteResponse,
};
use openraft::OptionalSend;
use parking_lot::Mutex;
use tokio::time::Instant;
use tracing::Instrument;

use super::append_codec;
use super::append_stream::PipelinedAppends;
use super::rpc_kinds::{
    from_json, to_json, SignedVoteRequest, SnapshotChunk, SnapshotChunkHeader, KIND_APPEND_STREAM,
    KIND_PRE_VOTE, KIND_SNAPSHOT_CHUNK, KIND_TRANSFER_LEADER, KIND_VOTE,
};
use super::types::{NodeInfo, Snapshot, SnapshotData, Vote, C};
use crate::security::VoteSigner;
use crate::transport::{
    node_server_name, ConnectOptions, RpcClient, RpcClientOptions, RpcError, TransportSecurity,
    DEFAULT_MAX_FRAME_PAYLOAD,
};
use crate::NodeId;

/// Tunables of a [`TlsNetwork`].
#[derive(Debug, Clone)]
pub struct TlsNetworkOptions {
    /// Upper bound on resolving, connecting and the TLS handshake (the RPC's own deadline
    /// also bounds it).
    pub connect_timeout: Duration,
    /// After a failed connect, calls fail at once (`Unreachable`) for this long, doubling per
    /// consecutive failure up to `reconnect_backoff_max`, so a dead peer costs no dial per RPC.
    pub reconnect_backoff_min: Duration,
    pub reconnect_backoff_max: Duration,
    /// Snapshot bytes per chunk frame; must leave room for the chunk header under
    /// `max_frame_payload`.
    pub snapshot_chunk_bytes: usize,
    /// Largest frame payload; must equal the peers' listener setting.
    pub max_frame_payload: u32,
    /// AppendEntries requests in flight per follower. With one, the leader waits for each
    /// batch's reply (which includes the follower's fsync) before sending the next; more lets
    /// transfers and fsyncs overlap.
    pub append_window: usize,
}

impl Default for TlsNetworkOptions {
    fn default() -> Self {
        TlsNetworkOptions {
            connect_timeout: Duration::from_secs(5),
            reconnect_backoff_min: Duration::from_millis(20),
            reconnect_backoff_max: Duration::from_millis(500),
            // A quarter of the default 16 MiB frame: the header needs a few hundred bytes, and
            // smaller chunks keep heartbeats on the same connection moving.
            snapshot_chunk_bytes: 4 << 20,
            max_frame_payload: DEFAULT_MAX_FRAME_PAYLOAD,
            append_window: 8,
        }
    }
}

struct Shared {
    node_id: NodeId,
    security: TransportSecurity,
    signer: Arc<VoteSigner>,
    options: TlsNetworkOptions,
    links: Mutex<HashMap<NodeId, Arc<PeerLink>>>,
    next_transfer_id: AtomicU64,
}

/// The `RaftNetworkFactory` over mutual TLS. Cheap to clone; clones share the connections.
#[derive(Clone)]
pub struct TlsNetwork {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for TlsNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsNetwork")
            .field("node_id", &self.shared.node_id)
            .field("tls", &self.shared.security.is_tls())
            .finish_non_exhaustive()
    }
}

impl TlsNetwork {
    /// The network of node `node_id` (the signer's id), connecting with `security`.
    pub fn new(
        security: TransportSecurity,
        signer: Arc<VoteSigner>,
        options: TlsNetworkOptions,
    ) -> TlsNetwork {
        TlsNetwork {
            shared: Arc::new(Shared {
                node_id: signer.node_id(),
                security,
                signer,
                options,
                links: Mutex::new(HashMap::new()),
                next_transfer_id: AtomicU64::new(1),
            }),
        }
    }

    pub fn node_id(&self) -> NodeId {
        self.shared.node_id
    }

    /// Closes every peer connection (they reconnect on the next RPC).
    pub fn disconnect_all(&self) {
        self.shared.links.lock().clear();
    }

    fn link(&self, target: NodeId, addr: &str) -> Arc<PeerLink> {
        let mut links = self.shared.links.lock();
        match links.get(&target) {
            // A membership change may move a node to a new address: start over then.
            Some(link) if link.addr == addr => link.clone(),
            _ => {
                let link = Arc::new(PeerLink {
                    target,
                    addr: addr.to_string(),
                    state: tokio::sync::Mutex::new(LinkState::default()),
                });
                links.insert(target, link.clone());
                link
            }
        }
    }
}

impl RaftNetworkFactory<C> for TlsNetwork {
    type Network = TlsPeer;

    async fn new_client(&mut self, target: NodeId, node: &NodeInfo) -> TlsPeer {
        TlsPeer {
            shared: self.shared.clone(),
            target,
            link: self.link(target, &node.addr),
        }
    }
}

#[derive(Default)]
struct LinkState {
    client: Option<Arc<RpcClient>>,
    failures: u32,
    retry_at: Option<Instant>,
}

/// The connection to one peer, shared by all openraft clients of that peer.
pub(super) struct PeerLink {
    target: NodeId,
    addr: String,
    /// A tokio mutex: it is held while connecting, so concurrent callers wait for one dial
    /// instead of each opening a connection.
    state: tokio::sync::Mutex<LinkState>,
}

impl PeerLink {
    async fn client(&self, shared: &Shared, deadline: Instant) -> Result<Arc<RpcClient>, String> {
        let mut st = tokio::time::timeout_at(deadline, self.state.lock())
            .await
            .map_err(|_| format!("node {} busy connecting", self.target))?;
        if let Some(c) = &st.client {
            if !c.is_closed() {
                return Ok(c.clone());
            }
            st.client = None;
        }
        if let Some(at) = st.retry_at {
            if Instant::now() < at {
                return Err(format!(
                    "node {} at {} is unreachable (backing off after {} failed connect(s))",
                    self.target, self.addr, st.failures
                ));
            }
        }
        let opts = &shared.options;
        let budget = opts
            .connect_timeout
            .min(deadline.saturating_duration_since(Instant::now()));
        match tokio::time::timeout(budget, self.connect(shared, budget)).await {
            Ok(Ok(client)) => {
                let client = Arc::new(client);
                st.client = Some(client.clone());
                st.failures = 0;
                st.retry_at = None;
                Ok(client)
            }
            outcome => {
                let reason = match outcome {
                    Ok(Err(e)) => e,
                    _ => format!("connecting took longer than {budget:?}"),
                };
                st.failures = st.failures.saturating_add(1);
                let backoff = opts
                    .reconnect_backoff_min
                    .saturating_mul(1u32 << st.failures.min(16).saturating_sub(1))
                    .min(opts.reconnect_backoff_max);
                st.retry_at = Some(Instant::now() + backoff);
                tracing::debug!(target_node = self.target, addr = %self.addr, %reason, ?backoff, "connect failed");
                Err(format!(
                    "cannot connect to node {} at {}: {reason}",
                    self.target, self.addr
                ))
            }
        }
    }

    async fn connect(&self, shared: &Shared, budget: Duration) -> Result<RpcClient, String> {
        let addr: SocketAddr = tokio::net::lookup_host(&self.addr)
            .await
            .map_err(|e| format!("cannot resolve {}: {e}", self.addr))?
            .next()
            .ok_or_else(|| format!("{} resolves to no address", self.addr))?;
        let options = RpcClientOptions {
            connect: ConnectOptions {
                connect_timeout: budget,
                max_frame_payload: shared.options.max_frame_payload,
            },
            ..RpcClientOptions::default()
        };
        RpcClient::connect(
            addr,
            &shared.security,
            &node_server_name(self.target),
            options,
        )
        .await
        .map_err(|e| e.to_string())
    }

    /// Drops `client` if it is still the current one (after it failed).
    async fn forget(&self, client: &Arc<RpcClient>) {
        let mut st = self.state.lock().await;
        if st.client.as_ref().is_some_and(|c| Arc::ptr_eq(c, client)) {
            st.client = None;
        }
    }
}

/// One node's openraft client to one peer.
pub struct TlsPeer {
    shared: Arc<Shared>,
    target: NodeId,
    link: Arc<PeerLink>,
}

impl TlsPeer {
    async fn call(
        &self,
        action: RPCTypes,
        kind: u16,
        payload: Bytes,
        ttl: Duration,
    ) -> Result<Bytes, RPCError<C>> {
        let deadline = Instant::now() + ttl;
        let timeout = || self.errors(action, ttl).timeout();
        let client = self
            .link
            .client(&self.shared, deadline)
            .await
            .map_err(|e| RPCError::Unreachable(Unreachable::from_string(e)))?;
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(timeout());
        }
        let result = client.call_with_timeout(kind, payload, remaining).await;
        self.errors(action, ttl).map(result, &client).await
    }

    fn errors(&self, action: RPCTypes, ttl: Duration) -> ErrorMap {
        ErrorMap {
            node: self.shared.node_id,
            target: self.target,
            link: self.link.clone(),
            action,
            ttl,
        }
    }

    async fn call_json<T: serde::de::DeserializeOwned>(
        &self,
        action: RPCTypes,
        kind: u16,
        payload: Bytes,
        ttl: Duration,
        what: &'static str,
    ) -> Result<T, RPCError<C>> {
        let body = self.call(action, kind, payload, ttl).await?;
        from_json(what, &body).map_err(network_error)
    }

    async fn send_vote(
        &self,
        rpc: VoteRequest<C>,
        pre_vote: bool,
        option: RPCOption,
    ) -> Result<VoteResponse<C>, RPCError<C>> {
        let (kind, what) = if pre_vote {
            (KIND_PRE_VOTE, "pre-vote response")
        } else {
            (KIND_VOTE, "vote response")
        };
        let envelope = SignedVoteRequest::sign(&self.shared.signer, rpc, pre_vote);
        self.call_json(
            RPCTypes::Vote,
            kind,
            envelope.encode(),
            option.soft_ttl(),
            what,
        )
        .await
    }

    async fn send_snapshot(
        &self,
        vote: Vote,
        snapshot: Snapshot,
        cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        ttl: Duration,
    ) -> Result<SnapshotResponse<C>, StreamingError<C>> {
        let transfer_id = self.shared.next_transfer_id.fetch_add(1, Ordering::Relaxed);
        let data = snapshot.snapshot;
        let total = data.len();
        let chunk = self.shared.options.snapshot_chunk_bytes.max(1);
        let mut cancel = std::pin::pin!(cancel);
        let mut offset = 0usize;
        loop {
            let end = total.min(offset.saturating_add(chunk));
            let last = end == total;
            let header = SnapshotChunkHeader {
                transfer_id,
                vote,
                offset: offset as u64,
                total_len: total as u64,
                meta: last.then(|| snapshot.meta.clone()),
            };
            let payload = SnapshotChunk::encode(&header, &data[offset..end]);
            let call = self.call_json::<Option<SnapshotResponse<C>>>(
                RPCTypes::InstallSnapshot,
                KIND_SNAPSHOT_CHUNK,
                payload,
                ttl,
                "snapshot chunk response",
            );
            let reply = tokio::select! {
                closed = &mut cancel => return Err(StreamingError::Closed(closed)),
                r = call => r.map_err(streaming_error)?,
            };
            match (last, reply) {
                (true, Some(resp)) => return Ok(resp),
                (true, None) => {
                    return Err(StreamingError::Network(NetworkError::from_string(format!(
                        "node {} acknowledged the last snapshot chunk without installing it",
                        self.target
                    ))))
                }
                (false, _) => offset = end,
            }
        }
    }
}

/// Turns transport failures into openraft's errors (see the module documentation).
pub(super) struct ErrorMap {
    node: NodeId,
    target: NodeId,
    link: Arc<PeerLink>,
    action: RPCTypes,
    ttl: Duration,
}

impl ErrorMap {
    pub(super) fn ttl(&self) -> Duration {
        self.ttl
    }

    pub(super) fn timeout(&self) -> RPCError<C> {
        RPCError::Timeout(Timeout {
            action: self.action,
            id: self.node,
            target: self.target,
            timeout: self.ttl,
        })
    }

    pub(super) async fn map(
        &self,
        result: Result<Bytes, RpcError>,
        client: &Arc<RpcClient>,
    ) -> Result<Bytes, RPCError<C>> {
        match result {
            Ok(body) => Ok(body),
            Err(RpcError::Timeout { .. }) => Err(self.timeout()),
            Err(e @ RpcError::Closed { .. }) => {
                self.link.forget(client).await;
                Err(RPCError::Unreachable(Unreachable::from_string(
                    e.to_string(),
                )))
            }
            Err(RpcError::Remote { message, .. }) => Err(RPCError::Unreachable(
                Unreachable::from_string(format!("node {} refused: {message}", self.target)),
            )),
            Err(e @ RpcError::Transport(_)) => {
                Err(RPCError::Network(NetworkError::from_string(e.to_string())))
            }
        }
    }
}

pub(super) fn network_error(e: impl std::fmt::Display) -> RPCError<C> {
    RPCError::Network(NetworkError::from_string(e.to_string()))
}

fn streaming_error(e: RPCError<C>) -> StreamingError<C> {
    match e {
        RPCError::Timeout(t) => StreamingError::Timeout(t),
        RPCError::Unreachable(u) => StreamingError::Unreachable(u),
        RPCError::Network(n) => StreamingError::Network(n),
        RPCError::RemoteError(r) => {
            StreamingError::Network(NetworkError::from_string(r.to_string()))
        }
    }
}

impl RaftNetworkV2<C> for TlsPeer {
    type SnapshotData = SnapshotData;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<C>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<C>, RPCError<C>> {
        let span = tracing::trace_span!(
            "raft.append_entries",
            node = self.shared.node_id,
            target = self.target,
            term = rpc.vote.leader_id.term,
            entries = rpc.entries.len()
        );
        let sent_last = rpc.entries.last().map(|e| e.log_id).or(rpc.prev_log_id);
        let payload = append_codec::encode_request(&rpc).map_err(network_error)?;
        let body = self
            .call(
                RPCTypes::AppendEntries,
                KIND_APPEND_STREAM,
                payload,
                option.soft_ttl(),
            )
            .instrument(span)
            .await?;
        Ok(
            match append_codec::decode_result(&body).map_err(network_error)? {
                Ok(matched) if matched == sent_last => AppendEntriesResponse::Success,
                Ok(matched) => AppendEntriesResponse::PartialSuccess(matched),
                Err(StreamAppendError::Conflict(_)) => AppendEntriesResponse::Conflict,
                Err(StreamAppendError::HigherVote(v)) => AppendEntriesResponse::HigherVote(v),
            },
        )
    }

    // openraft's default sends one request and waits for its reply before the next.
    fn stream_append<'s, S>(
        &'s mut self,
        input: S,
        option: RPCOption,
    ) -> BoxFuture<'s, Result<BoxStream<'s, Result<StreamAppendResult<C>, RPCError<C>>>, RPCError<C>>>
    where
        S: futures_util::Stream<Item = AppendEntriesRequest<C>> + OptionalSend + Unpin + 'static,
    {
        Box::pin(async move {
            let ttl = option.soft_ttl();
            let client = self
                .link
                .client(&self.shared, Instant::now() + ttl)
                .await
                .map_err(|e| RPCError::Unreachable(Unreachable::from_string(e)))?;
            let stream = PipelinedAppends::new(
                input,
                client,
                self.errors(RPCTypes::AppendEntries, ttl),
                self.shared.options.append_window,
            );
            Ok(Box::pin(stream) as BoxStream<'s, _>)
        })
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<C>,
        option: RPCOption,
    ) -> Result<VoteResponse<C>, RPCError<C>> {
        let span = tracing::debug_span!(
            "raft.vote",
            node = self.shared.node_id,
            target = self.target,
            term = rpc.vote.leader_id.term,
            transfer = rpc.leadership_transfer
        );
        self.send_vote(rpc, false, option).instrument(span).await
    }

    // openraft's default grants the pre-vote locally, which would turn pre-vote off.
    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<C>,
        option: RPCOption,
    ) -> Result<VoteResponse<C>, RPCError<C>> {
        let span = tracing::debug_span!(
            "raft.pre_vote",
            node = self.shared.node_id,
            target = self.target,
            term = rpc.vote.leader_id.term
        );
        self.send_vote(rpc, true, option).instrument(span).await
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<C>, StreamingError<C>> {
        let span = tracing::info_span!(
            "raft.full_snapshot",
            node = self.shared.node_id,
            target = self.target,
            term = vote.leader_id.term,
            bytes = snapshot.snapshot.len()
        );
        self.send_snapshot(vote, snapshot, cancel, option.soft_ttl())
            .instrument(span)
            .await
    }

    // openraft's default fails, which would make leadership transfer hang until an election.
    async fn transfer_leader(
        &mut self,
        req: TransferLeaderRequest<C>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<C>, RPCError<C>> {
        let span = tracing::debug_span!(
            "raft.transfer_leader",
            node = self.shared.node_id,
            target = self.target,
            to = *req.to_node_id()
        );
        self.call_json(
            RPCTypes::TransferLeader,
            KIND_TRANSFER_LEADER,
            to_json(&req),
            option.soft_ttl(),
            "transfer-leader response",
        )
        .instrument(span)
        .await
    }
}
