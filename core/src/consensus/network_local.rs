//! In-process network over tokio channels: **for tests and simulation only**.
//!
//! Every node registers its `Raft` handle; each RPC is a message to the target's inbox, handled
//! by a task that calls the matching `Raft` method. Nodes can be isolated (all traffic to and from
//! them is dropped, both ways, until healed) or killed (unregistered). Nothing is signed or
//! encrypted here: the real network is the mutual-TLS transport (`crate::transport`), where vote
//! and pre-vote requests are signed.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use openraft::errors::{
    Fatal, NetworkError, RPCError, RaftError, ReplicationClosed, StreamingError, Timeout,
    Unreachable,
};
use openraft::network::{RPCOption, RPCTypes, RaftNetworkFactory, RaftNetworkV2};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest,
    TransferLeaderResponse, VoteRequest, VoteResponse,
};
use openraft::OptionalSend;
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};

use super::types::{ConsensusRaft, NodeInfo, Snapshot, SnapshotData, Vote, C};

type Reply<T> = oneshot::Sender<T>;

enum Rpc {
    Append(
        AppendEntriesRequest<C>,
        Reply<Result<AppendEntriesResponse<C>, RaftError<C>>>,
    ),
    Vote(VoteRequest<C>, Reply<Result<VoteResponse<C>, RaftError<C>>>),
    PreVote(VoteRequest<C>, Reply<Result<VoteResponse<C>, RaftError<C>>>),
    Snapshot(Vote, Snapshot, Reply<Result<SnapshotResponse<C>, Fatal<C>>>),
    TransferLeader(
        TransferLeaderRequest<C>,
        Reply<Result<TransferLeaderResponse<C>, Fatal<C>>>,
    ),
}

struct Envelope {
    from: u64,
    rpc: Rpc,
}

#[derive(Default)]
struct Switch {
    inboxes: HashMap<u64, mpsc::UnboundedSender<Envelope>>,
    isolated: HashSet<u64>,
}

impl Switch {
    fn blocked(&self, a: u64, b: u64) -> bool {
        self.isolated.contains(&a) || self.isolated.contains(&b)
    }
}

/// The shared in-process "switch". Cheap to clone.
#[derive(Clone, Default)]
pub struct LocalNetwork {
    switch: Arc<Mutex<Switch>>,
}

impl LocalNetwork {
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes `raft` reachable as node `id` (replacing an earlier registration). Must be called
    /// inside a tokio runtime.
    pub fn register(&self, id: u64, raft: ConsensusRaft) {
        let (tx, mut rx) = mpsc::unbounded_channel::<Envelope>();
        self.switch.lock().inboxes.insert(id, tx);
        let net = self.clone();
        tokio::spawn(async move {
            while let Some(env) = rx.recv().await {
                let raft = raft.clone();
                let net = net.clone();
                tokio::spawn(async move { net.handle(id, raft, env).await });
            }
        });
    }

    /// Makes node `id` unreachable for good (a killed process).
    pub fn unregister(&self, id: u64) {
        self.switch.lock().inboxes.remove(&id);
    }

    /// Drops all traffic to and from `id` until [`heal`](Self::heal).
    pub fn isolate(&self, id: u64) {
        self.switch.lock().isolated.insert(id);
    }

    pub fn heal(&self, id: u64) {
        self.switch.lock().isolated.remove(&id);
    }

    /// The network factory node `source` passes to `ReplicationNode::start`.
    pub fn factory(&self, source: u64) -> LocalNetworkFactory {
        LocalNetworkFactory {
            net: self.clone(),
            source,
        }
    }

    fn send(&self, from: u64, to: u64, rpc: Rpc) -> Result<(), String> {
        let switch = self.switch.lock();
        if switch.blocked(from, to) {
            return Err(format!(
                "node {to} is unreachable from node {from} (isolated)"
            ));
        }
        match switch.inboxes.get(&to) {
            Some(tx) => tx
                .send(Envelope { from, rpc })
                .map_err(|_| format!("node {to} is down")),
            None => Err(format!("node {to} is down")),
        }
    }

    async fn handle(&self, me: u64, raft: ConsensusRaft, env: Envelope) {
        // Isolated since the message was sent: drop it (the caller sees the peer vanish).
        if self.switch.lock().blocked(env.from, me) {
            return;
        }
        match env.rpc {
            Rpc::Append(req, tx) => {
                let _ = tx.send(raft.append_entries(req).await);
            }
            Rpc::Vote(req, tx) => {
                let _ = tx.send(raft.vote(req).await);
            }
            Rpc::PreVote(req, tx) => {
                let _ = tx.send(raft.pre_vote(req).await);
            }
            Rpc::Snapshot(vote, snapshot, tx) => {
                let _ = tx.send(raft.install_full_snapshot(vote, snapshot).await);
            }
            Rpc::TransferLeader(req, tx) => {
                let _ = tx.send(raft.handle_transfer_leader(req).await);
            }
        }
    }
}

/// `RaftNetworkFactory` of one node on a [`LocalNetwork`].
#[derive(Clone)]
pub struct LocalNetworkFactory {
    net: LocalNetwork,
    source: u64,
}

impl RaftNetworkFactory<C> for LocalNetworkFactory {
    type Network = LocalConnection;

    async fn new_client(&mut self, target: u64, _node: &NodeInfo) -> Self::Network {
        LocalConnection {
            net: self.net.clone(),
            source: self.source,
            target,
        }
    }
}

/// One node's client to one peer.
pub struct LocalConnection {
    net: LocalNetwork,
    source: u64,
    target: u64,
}

impl LocalConnection {
    async fn call<T>(
        &self,
        action: RPCTypes,
        ttl: Duration,
        make: impl FnOnce(Reply<T>) -> Rpc,
    ) -> Result<T, RPCError<C>> {
        let (tx, rx) = oneshot::channel();
        self.net
            .send(self.source, self.target, make(tx))
            .map_err(|e| RPCError::Unreachable(Unreachable::from_string(e)))?;
        match tokio::time::timeout(ttl, rx).await {
            Err(_) => Err(RPCError::Timeout(Timeout {
                action,
                id: self.source,
                target: self.target,
                timeout: ttl,
            })),
            Ok(Err(_)) => Err(RPCError::Unreachable(Unreachable::from_string(format!(
                "node {} dropped the request",
                self.target
            )))),
            Ok(Ok(v)) => Ok(v),
        }
    }
}

fn remote<E: std::error::Error + 'static>(e: E) -> RPCError<C> {
    // The remote `Raft` fails these calls only when it is shutting down.
    RPCError::Unreachable(Unreachable::new(&e))
}

impl RaftNetworkV2<C> for LocalConnection {
    type SnapshotData = SnapshotData;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<C>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<C>, RPCError<C>> {
        self.call(RPCTypes::AppendEntries, option.hard_ttl(), |tx| {
            Rpc::Append(rpc, tx)
        })
        .await?
        .map_err(remote)
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<C>,
        option: RPCOption,
    ) -> Result<VoteResponse<C>, RPCError<C>> {
        self.call(RPCTypes::Vote, option.hard_ttl(), |tx| Rpc::Vote(rpc, tx))
            .await?
            .map_err(remote)
    }

    // openraft's default grants the pre-vote locally, which would turn pre-vote off.
    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<C>,
        option: RPCOption,
    ) -> Result<VoteResponse<C>, RPCError<C>> {
        self.call(RPCTypes::Vote, option.hard_ttl(), |tx| {
            Rpc::PreVote(rpc, tx)
        })
        .await?
        .map_err(remote)
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<C>, StreamingError<C>> {
        let call = self.call(RPCTypes::InstallSnapshot, option.hard_ttl(), |tx| {
            Rpc::Snapshot(vote, snapshot, tx)
        });
        let res = tokio::select! {
            closed = cancel => return Err(StreamingError::Closed(closed)),
            r = call => r,
        };
        match res {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(fatal)) => Err(StreamingError::Unreachable(Unreachable::new(&fatal))),
            Err(RPCError::Timeout(t)) => Err(StreamingError::Timeout(t)),
            Err(RPCError::Unreachable(u)) => Err(StreamingError::Unreachable(u)),
            Err(RPCError::Network(n)) => Err(StreamingError::Network(n)),
            Err(RPCError::RemoteError(r)) => Err(StreamingError::Network(
                NetworkError::from_string(r.to_string()),
            )),
        }
    }

    // openraft's default fails, which would make leadership transfer hang until an election.
    async fn transfer_leader(
        &mut self,
        req: TransferLeaderRequest<C>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<C>, RPCError<C>> {
        self.call(RPCTypes::TransferLeader, option.hard_ttl(), |tx| {
            Rpc::TransferLeader(req, tx)
        })
        .await?
        .map_err(remote)
    }
}
