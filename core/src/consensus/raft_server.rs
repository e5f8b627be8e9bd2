//! The receiving side of the Raft network: serves peers' consensus RPCs to a local `Raft`.
//!
//! Every RPC is authenticated before Raft sees it:
//! - the sender a message names (the candidate of a vote, the leader of an AppendEntries,
//!   snapshot or TransferLeader) must be the node id of the connection's TLS certificate;
//! - vote and pre-vote requests must carry a valid, fresh signature by the candidate's node key
//!   ([`VoteVerifier`]).
//!
//! A refused request gets an error response and is counted ([`RaftServerMetrics`]); it never
//! reaches Raft, so it cannot move this node's term or vote.
//!
//! AppendEntries (binary, [`super::append_codec`]) are handled per connection: the server
//! decodes and checks each one as it reads it and queues it to that connection's
//! `append_pipeline`, which feeds them to one `Raft::stream_append` session in the order the
//! leader sent them. That is what lets the leader keep several in flight.
//!
//! Two-phase start: [`RaftServer::spawn`] serves a bound [`Listener`] at once (so its port is
//! known before the cluster membership is written), and [`RaftServer::attach`] hands it the
//! `Raft` once the node exists. Until then requests fail with "not ready", which the sender
//! treats as an unreachable peer.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use openraft::raft::TransferLeaderRequest;
use parking_lot::{Mutex, RwLock};

use super::append_codec;
use super::append_pipeline::AppendPipeline;
use super::rpc_kinds::{
    from_json, to_json, SignedVoteRequest, SnapshotChunk, KIND_APPEND_STREAM, KIND_PRE_VOTE,
    KIND_SNAPSHOT_CHUNK, KIND_TRANSFER_LEADER, KIND_VOTE,
};
use super::state_file;
use super::types::{ConsensusRaft, Snapshot, Vote, C};
use crate::security::{VoteMetricsSnapshot, VoteOutcome, VoteVerifier};
use crate::transport::{
    Listener, ListenerMetrics, ListenerMetricsSnapshot, PeerInfo, RemoteError, RpcServer,
    DEFAULT_MAX_IN_FLIGHT_PER_CONNECTION,
};
use crate::NodeId;

/// The vote replay state file, beside the other consensus state files.
const REPLAY_FILE: &str = "vote_replay";

/// Options of a [`RaftServer`].
#[derive(Debug, Clone)]
pub struct RaftServerOptions {
    /// Checks vote signatures; holds the peers' public keys and the replay state.
    pub verifier: Arc<VoteVerifier>,
    /// Refuse connections without an authenticated node id. True for TLS; false only for the
    /// development plaintext mode, where there is no identity to check (signatures still are).
    pub require_peer_identity: bool,
    /// Largest snapshot accepted from a leader, in bytes.
    pub max_snapshot_bytes: u64,
    /// Where the vote replay state is kept across restarts (file `vote_replay`); `None` keeps
    /// it in memory only, and a restarted node would accept one replay of an old claim.
    pub replay_state_dir: Option<PathBuf>,
}

impl RaftServerOptions {
    pub fn new(verifier: Arc<VoteVerifier>) -> RaftServerOptions {
        RaftServerOptions {
            verifier,
            require_peer_identity: true,
            max_snapshot_bytes: 64 << 30,
            replay_state_dir: None,
        }
    }
}

/// Counters of a [`RaftServer`] (for the metrics endpoint).
#[derive(Debug, Default)]
pub struct RaftServerMetrics {
    /// Requests handed to Raft.
    pub served: AtomicU64,
    /// AppendEntries, snapshot or TransferLeader requests whose leader id differs from the
    /// connection's certificate (vote requests count under the vote outcomes instead).
    pub rejected_sender: AtomicU64,
    /// Payloads that did not decode, and unknown kinds.
    pub malformed: AtomicU64,
    /// Requests that arrived before [`RaftServer::attach`] or after [`RaftServer::detach`].
    pub not_ready: AtomicU64,
    /// Snapshot chunks accepted, and snapshots handed to Raft once complete.
    pub snapshot_chunks: AtomicU64,
    pub snapshots_installed: AtomicU64,
}

/// A point-in-time copy of a server's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RaftServerMetricsSnapshot {
    pub served: u64,
    /// Vote and pre-vote outcomes; `votes.rejected()` is the total of refused votes, by reason
    /// in `unsigned`, `bad_signature`, `replayed`, `unknown_node` and `identity_mismatch`.
    pub votes: VoteMetricsSnapshot,
    pub rejected_sender: u64,
    pub malformed: u64,
    pub not_ready: u64,
    pub snapshot_chunks: u64,
    pub snapshots_installed: u64,
    pub listener: ListenerMetricsSnapshot,
}

/// Who sent a snapshot, to keep one transfer in progress per peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum PeerKey {
    Node(NodeId),
    /// Development plaintext mode: no identity, the address stands in.
    Addr(SocketAddr),
}

struct Assembly {
    transfer_id: u64,
    total_len: u64,
    data: Vec<u8>,
}

struct State {
    raft: RwLock<Option<ConsensusRaft>>,
    options: RaftServerOptions,
    metrics: RaftServerMetrics,
    snapshots: Mutex<HashMap<PeerKey, Assembly>>,
}

/// Serves consensus RPCs from peers. Dropping it stops serving and closes the connections.
pub struct RaftServer {
    rpc: RpcServer,
    listener_metrics: Arc<ListenerMetrics>,
    state: Arc<State>,
}

impl std::fmt::Debug for RaftServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftServer")
            .field("local_addr", &self.rpc.local_addr())
            .field("attached", &self.state.raft.read().is_some())
            .finish_non_exhaustive()
    }
}

fn refuse(message: String) -> RemoteError {
    RemoteError::new(message)
}

impl RaftServer {
    /// Starts serving `listener`. Must be called within a tokio runtime. Loads the persisted
    /// vote replay state first, if `options.replay_state_dir` has one.
    pub fn spawn(listener: Listener, options: RaftServerOptions) -> io::Result<RaftServer> {
        if let Some(dir) = &options.replay_state_dir {
            if let Some(positions) =
                state_file::read_json::<Vec<(NodeId, u64, u64)>>(dir, REPLAY_FILE)?
            {
                options.verifier.restore_replay_positions(positions);
            }
        }
        let listener_metrics = listener.metrics();
        let state = Arc::new(State {
            raft: RwLock::new(None),
            options,
            metrics: RaftServerMetrics::default(),
            snapshots: Mutex::new(HashMap::new()),
        });
        let handler_state = state.clone();
        let rpc = RpcServer::spawn_per_connection(
            listener,
            DEFAULT_MAX_IN_FLIGHT_PER_CONNECTION,
            move |peer| {
                let mut conn = ConnectionState {
                    state: handler_state.clone(),
                    peer,
                    appends: None,
                };
                move |kind, payload| conn.handle(kind, payload)
            },
        );
        Ok(RaftServer {
            rpc,
            listener_metrics,
            state,
        })
    }

    /// Starts handing requests to `raft`.
    pub fn attach(&self, raft: ConsensusRaft) {
        *self.state.raft.write() = Some(raft);
    }

    /// Stops handing requests to Raft (they fail with "not ready"); connections stay open.
    pub fn detach(&self) {
        *self.state.raft.write() = None;
        self.state.snapshots.lock().clear();
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.rpc.local_addr()
    }

    pub fn verifier(&self) -> &Arc<VoteVerifier> {
        &self.state.options.verifier
    }

    pub fn metrics(&self) -> &RaftServerMetrics {
        &self.state.metrics
    }

    pub fn metrics_snapshot(&self) -> RaftServerMetricsSnapshot {
        let m = &self.state.metrics;
        RaftServerMetricsSnapshot {
            served: m.served.load(Ordering::Relaxed),
            votes: self.state.options.verifier.metrics().snapshot(),
            rejected_sender: m.rejected_sender.load(Ordering::Relaxed),
            malformed: m.malformed.load(Ordering::Relaxed),
            not_ready: m.not_ready.load(Ordering::Relaxed),
            snapshot_chunks: m.snapshot_chunks.load(Ordering::Relaxed),
            snapshots_installed: m.snapshots_installed.load(Ordering::Relaxed),
            listener: self.listener_metrics.snapshot(),
        }
    }
}

impl State {
    fn raft(&self) -> Result<ConsensusRaft, RemoteError> {
        match self.raft.read().clone() {
            Some(r) => Ok(r),
            None => {
                self.metrics.not_ready.fetch_add(1, Ordering::Relaxed);
                Err(refuse("this node's consensus is not running".into()))
            }
        }
    }

    fn malformed(&self, e: impl std::fmt::Display) -> RemoteError {
        self.metrics.malformed.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(error = %e, "refused a malformed consensus request");
        refuse(format!("malformed request: {e}"))
    }

    /// True if the connection may speak for node `claimed`.
    fn sender_is(&self, peer: &PeerInfo, claimed: NodeId) -> bool {
        if peer.authenticated || self.options.require_peer_identity {
            peer.node_id == Some(claimed)
        } else {
            true
        }
    }

    /// For AppendEntries, snapshots and TransferLeader: the leader they name must be the peer.
    fn check_leader(&self, peer: &PeerInfo, what: &str, vote: &Vote) -> Result<(), RemoteError> {
        let claimed = vote.leader_id.voted_for;
        if self.sender_is(peer, claimed) {
            return Ok(());
        }
        self.metrics.rejected_sender.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(peer = %peer.addr, peer_node = ?peer.node_id, claimed, term = vote.leader_id.term, "refused {what}: sender is not the leader it names");
        Err(refuse(format!(
            "{what} names leader {claimed} but the connection is authenticated as {}",
            describe(peer)
        )))
    }

    async fn handle(
        &self,
        peer: PeerInfo,
        kind: u16,
        payload: Bytes,
    ) -> Result<Bytes, RemoteError> {
        let result = match kind {
            KIND_VOTE => self.vote(&peer, &payload, false).await,
            KIND_PRE_VOTE => self.vote(&peer, &payload, true).await,
            KIND_SNAPSHOT_CHUNK => self.snapshot_chunk(&peer, payload).await,
            KIND_TRANSFER_LEADER => self.transfer_leader(&peer, &payload).await,
            other => Err(self.malformed(format!("unknown consensus RPC kind {other:#06x}"))),
        };
        if result.is_ok() {
            self.metrics.served.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    async fn vote(
        &self,
        peer: &PeerInfo,
        payload: &[u8],
        pre_vote: bool,
    ) -> Result<Bytes, RemoteError> {
        let envelope = SignedVoteRequest::decode(payload).map_err(|e| self.malformed(e))?;
        let raft = self.raft()?;
        let vote = envelope.signed_vote(pre_vote);
        let kind = if pre_vote { "pre-vote" } else { "vote" };
        // Identity first: a mismatch must not consume the candidate's replay state.
        if !self.sender_is(peer, vote.claim.candidate) {
            let verifier = &self.options.verifier;
            verifier.record_rejection(&vote, VoteOutcome::IdentityMismatch);
            return Err(refuse(format!(
                "{kind} request for candidate {} refused: the connection is authenticated as {}",
                vote.claim.candidate,
                describe(peer)
            )));
        }
        let outcome = self.options.verifier.verify(&vote);
        if !outcome.is_valid() {
            return Err(refuse(format!(
                "{kind} request for candidate {} refused: {}",
                vote.claim.candidate,
                outcome.as_str()
            )));
        }
        self.persist_replay_state().await;
        let resp = if pre_vote {
            raft.pre_vote(envelope.request).await
        } else {
            raft.vote(envelope.request).await
        }
        .map_err(raft_failed)?;
        Ok(to_json(&resp))
    }

    /// Writes the verifier's replay state before Raft sees the vote (elections are rare, so
    /// this costs a small file write per accepted claim). A failure is logged, not fatal: Raft's
    /// own term checks still refuse a replayed claim of an old term.
    async fn persist_replay_state(&self) {
        let Some(dir) = self.options.replay_state_dir.clone() else {
            return;
        };
        let positions = self.options.verifier.replay_positions();
        let written = tokio::task::spawn_blocking(move || {
            state_file::write_json(&dir, REPLAY_FILE, &positions)
        })
        .await;
        match written {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "could not persist the vote replay state"),
            Err(e) => tracing::warn!(error = %e, "could not persist the vote replay state"),
        }
    }

    async fn transfer_leader(&self, peer: &PeerInfo, payload: &[u8]) -> Result<Bytes, RemoteError> {
        let req: TransferLeaderRequest<C> =
            from_json("transfer-leader request", payload).map_err(|e| self.malformed(e))?;
        self.check_leader(peer, "transfer-leader", req.from_leader())?;
        let raft = self.raft()?;
        let resp = raft
            .handle_transfer_leader(req)
            .await
            .map_err(raft_failed)?;
        Ok(to_json(&resp))
    }

    async fn snapshot_chunk(&self, peer: &PeerInfo, payload: Bytes) -> Result<Bytes, RemoteError> {
        let chunk = SnapshotChunk::decode(&payload).map_err(|e| self.malformed(e))?;
        let h = chunk.header;
        self.check_leader(peer, "snapshot", &h.vote)?;
        let raft = self.raft()?;
        let key = match peer.node_id {
            Some(id) => PeerKey::Node(id),
            None => PeerKey::Addr(peer.addr),
        };
        let complete = {
            let mut snapshots = self.snapshots.lock();
            if h.offset == 0 {
                if h.total_len > self.options.max_snapshot_bytes {
                    snapshots.remove(&key);
                    return Err(refuse(format!(
                        "snapshot of {} bytes exceeds this node's limit of {} bytes",
                        h.total_len, self.options.max_snapshot_bytes
                    )));
                }
                // A new transfer replaces an abandoned one from the same leader.
                snapshots.insert(
                    key,
                    Assembly {
                        transfer_id: h.transfer_id,
                        total_len: h.total_len,
                        data: Vec::with_capacity(h.total_len.min(64 << 20) as usize),
                    },
                );
            }
            let Some(a) = snapshots.get_mut(&key) else {
                return Err(refuse(format!(
                    "snapshot chunk at offset {} of transfer {} without its start; restart the transfer",
                    h.offset, h.transfer_id
                )));
            };
            let fits = a.transfer_id == h.transfer_id
                && a.total_len == h.total_len
                && a.data.len() as u64 == h.offset
                && h.offset + chunk.data.len() as u64 <= a.total_len;
            if !fits {
                snapshots.remove(&key);
                return Err(refuse(format!(
                    "snapshot chunk at offset {} of transfer {} does not continue the transfer; \
                     restart it",
                    h.offset, h.transfer_id
                )));
            }
            a.data.extend_from_slice(&chunk.data);
            self.metrics.snapshot_chunks.fetch_add(1, Ordering::Relaxed);
            match h.meta {
                None => None,
                Some(meta) => {
                    let a = snapshots.remove(&key).expect("assembly present");
                    if a.data.len() as u64 != a.total_len {
                        return Err(refuse(format!(
                            "last snapshot chunk arrived after {} of {} bytes",
                            a.data.len(),
                            a.total_len
                        )));
                    }
                    Some(Snapshot {
                        meta,
                        snapshot: a.data,
                    })
                }
            }
        };
        let Some(snapshot) = complete else {
            return Ok(to_json(&None::<()>));
        };
        tracing::info!(peer_node = ?peer.node_id, term = h.vote.leader_id.term, bytes = snapshot.snapshot.len(), "installing snapshot from the leader");
        // Counted when handed over: Raft may apply it before this call returns.
        self.metrics
            .snapshots_installed
            .fetch_add(1, Ordering::Relaxed);
        let resp = raft
            .install_full_snapshot(h.vote, snapshot)
            .await
            .map_err(raft_failed)?;
        Ok(to_json(&Some(resp)))
    }
}

/// What the server keeps per connection: the AppendEntries pipeline of that peer.
struct ConnectionState {
    state: Arc<State>,
    peer: PeerInfo,
    /// Started by the first AppendEntries on the connection; ends with it.
    appends: Option<AppendPipeline>,
}

type Reply = Pin<Box<dyn Future<Output = Result<Bytes, RemoteError>> + Send>>;

impl ConnectionState {
    /// Called in the order requests arrive on the connection (see
    /// [`RpcServer::spawn_per_connection`]): AppendEntries are decoded, checked and queued to
    /// Raft right here, so they keep the leader's order however their replies are scheduled.
    fn handle(&mut self, kind: u16, payload: Bytes) -> Reply {
        if kind != KIND_APPEND_STREAM {
            let state = self.state.clone();
            let peer = self.peer.clone();
            return Box::pin(async move { state.handle(peer, kind, payload).await });
        }
        let queued = self.queue_append(&payload);
        let state = self.state.clone();
        Box::pin(async move {
            let reply = queued?.await?;
            state.metrics.served.fetch_add(1, Ordering::Relaxed);
            Ok(reply)
        })
    }

    fn queue_append(
        &mut self,
        payload: &Bytes,
    ) -> Result<impl Future<Output = Result<Bytes, RemoteError>>, RemoteError> {
        let state = &self.state;
        let req = append_codec::decode_request(payload).map_err(|e| state.malformed(e))?;
        state.check_leader(&self.peer, "append-entries", &req.vote)?;
        let pipeline = match &mut self.appends {
            Some(p) if !p.is_closed() => p,
            slot => {
                let state = state.clone();
                slot.insert(AppendPipeline::start(move || {
                    state.raft().map_err(|e| e.message)
                }))
            }
        };
        let reply = pipeline.submit(req);
        Ok(async move {
            match reply.await {
                Ok(Ok(result)) => Ok(append_codec::encode_result(&result)),
                Ok(Err(reason)) => Err(refuse(reason)),
                Err(_) => Err(refuse("the append pipeline stopped".into())),
            }
        })
    }
}

fn describe(peer: &PeerInfo) -> String {
    match peer.node_id {
        Some(id) => format!("node {id}"),
        None if peer.authenticated => "a certificate without a node-<id> name".into(),
        None => format!("nobody (plaintext from {})", peer.addr),
    }
}

fn raft_failed(e: impl std::fmt::Display) -> RemoteError {
    refuse(format!(
        "this node's consensus cannot take the request: {e}"
    ))
}
