//! `ReplicationNode`: the public Rust API of one cluster member.
//!
//! Acknowledgement modes (`append`):
//! - ASYNC: the entry is durable in the leader's own log (the log store's flush).
//! - SEMI_SYNC: additionally, at least `min_sync_replicas` voter followers have durably appended
//!   it (their matched log id on the leader is at or past its LSN; a follower acknowledges only
//!   after its flush).
//! - SYNC: every voter follower has, and at least `min_sync_replicas` (>= 1) of them.
//!
//! A write that cannot be acknowledged within `replication_timeout_ms` fails with
//! [`ConsensusError::NotDurable`] when it certainly never entered the log (safe to retry) or
//! [`ConsensusError::Unknown`] when it did and may still commit (a retry needs deduplication).
//!
//! Reads are in `reads.rs` ([`ReplicationNode::read`]), follower health and the lag alert in
//! `health.rs`.
//!
//! Safety choices: pre-vote is on; leader restore is off (a restarted leader must win an election
//! like anyone else, because the state machine re-derives its state from the log on start).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use openraft::async_runtime::watch::WatchReceiver;
use openraft::errors::{ClientWriteError, ForwardReason};
use openraft::impls::ProgressResponder;
use openraft::network::{NetSnapshot, RaftNetworkFactory};
use openraft::{RaftMetrics, ServerState};
use parking_lot::RwLock;
use tokio::time::Instant;

use super::ack_waiters::AckWaiters;
use super::health::{self, FollowerStatus, Health, LagAlert, LagAlertCounts, LagThresholds};
use super::log_store::WalLogStore;
use super::reads::{ReadCounters, ReadStats};
use super::split_vote::SplitVoteBreaker;
use super::state_machine::{ApplyHandler, StateMachine};
use super::types::{
    ClientWrite, ConsensusRaft, LogId, NodeInfo, SnapshotData, C, RESERVED_OP_FIRST,
};
use crate::clock::HlcClock;
use crate::config::{ReplicationConfig, ReplicationMode};
use crate::wal::{Durability, Wal};
use crate::{Lsn, NodeId};

/// The message config validation gives for this mistake; run-time changes use the same words.
pub const SYNC_NEEDS_REPLICAS: &str =
    "min_sync_replicas = 0 is not allowed in SYNC mode; set it to at least 1";

/// Pause between retries of a write refused because a new leader has no quorum lease yet.
const LEASE_RETRY: Duration = Duration::from_millis(10);

#[derive(Debug, thiserror::Error)]
pub enum ConsensusError {
    /// The write never entered the log; retrying (on the leader) is safe.
    #[error("the write was not appended: {reason}{}; it is safe to retry", leader_hint(*.leader))]
    NotDurable {
        reason: String,
        leader: Option<NodeId>,
    },
    /// The write entered the log but its acknowledgement was not gathered; it may or may not
    /// survive. A retry must be deduplicated by the caller.
    #[error("the outcome of the write{} is unknown: {reason}; it may still commit, so \
             deduplicate before retrying", lsn.map(|l| format!(" at LSN {l}")).unwrap_or_default())]
    Unknown { lsn: Option<Lsn>, reason: String },
    /// This operation must run on the leader.
    #[error("this node is not the leader{}; send the request there", leader_hint(*.leader))]
    NotLeader { leader: Option<NodeId> },
    #[error("invalid request: {0}")]
    Invalid(String),
    /// A bounded-staleness read could not be served within its bound. `staleness` is how far
    /// behind the leader this node is known to be, `None` if it knows of no leader.
    #[error("this node's state is too stale for the read: {}, the bound is {bound:?}; read \
             from the leader or allow more staleness", staleness.map(|s| format!("{s:?} behind the leader")).unwrap_or_else(|| "no contact with a leader".into()))]
    Stale {
        staleness: Option<Duration>,
        bound: Duration,
    },
    /// A linearizable read on a leader that could not confirm its leadership with a quorum
    /// (its lease lapsed and a quorum did not answer in time). Nothing was read.
    #[error(
        "this leader could not confirm its leadership with a quorum ({0}); the read was \
             refused rather than risk stale data; retry, possibly on another node"
    )]
    QuorumUnavailable(String),
    #[error("timed out after {0:?}: {1}")]
    Timeout(Duration, String),
    #[error("storage error: {0}")]
    Storage(String),
    #[error("consensus error: {0}")]
    Raft(String),
}

fn leader_hint(leader: Option<NodeId>) -> String {
    leader
        .map(|l| format!(" (the leader is node {l})"))
        .unwrap_or_default()
}

/// A node's role, from its latest metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Leader,
    Follower,
    Candidate,
    Learner,
    Shutdown,
}

/// What `append` waits for. Changed at run time by `set_mode` / `set_min_sync_replicas`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckPolicy {
    pub mode: ReplicationMode,
    pub min_sync_replicas: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    pub id: NodeId,
    pub role: Role,
    pub term: u64,
    pub leader: Option<NodeId>,
    /// Last LSN in the local log. Invariant: last >= durable, last >= commit >= applied.
    pub last_lsn: Option<Lsn>,
    pub durable_lsn: Lsn,
    pub commit_lsn: Option<Lsn>,
    pub applied_lsn: Option<Lsn>,
    pub voters: BTreeSet<NodeId>,
    pub learners: BTreeSet<NodeId>,
    pub policy: AckPolicy,
    /// Health of every follower and learner. Empty unless this node is the leader.
    pub followers: Vec<FollowerStatus>,
    /// Read counters (see [`ReplicationNode::read`]).
    pub reads: ReadStats,
    /// Lag alert events (see [`ReplicationNode::on_lag_alert`]).
    pub lag_alerts: LagAlertCounts,
}

/// What `start_election` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElectionStart {
    /// This node was the leader and asked `to` to take over.
    Transferring { to: NodeId },
    /// No leader was known; this node campaigns (pre-vote first).
    Campaigning,
}

/// One member of a replication cluster. Cheap to share behind an `Arc`; all methods take `&self`.
pub struct ReplicationNode {
    pub(super) id: NodeId,
    pub(super) raft: ConsensusRaft,
    log: WalLogStore,
    pub(super) handler: Arc<dyn ApplyHandler>,
    policy: RwLock<AckPolicy>,
    pub(super) timeout: Duration,
    /// The leader lease (`election_timeout_max`).
    pub(super) lease: Duration,
    hlc: HlcClock,
    next_request: AtomicU64,
    pub(super) reads: ReadCounters,
    health: Arc<Health>,
    monitor: tokio::task::JoinHandle<()>,
    /// Writes waiting for SEMI_SYNC / SYNC acknowledgements, and the task releasing them.
    acks: AckWaiters,
    ack_task: tokio::task::JoinHandle<()>,
    /// Campaigns again at once after a split vote (see split_vote.rs).
    breaker: Arc<SplitVoteBreaker>,
    breaker_task: tokio::task::JoinHandle<()>,
    /// (term, LSN) of the highest write this node acknowledged as SEMI_SYNC or SYNC while
    /// leading that term. A linearizable read waits until it has applied that LSN too: the
    /// acknowledgement comes from the followers' matched LSNs and can reach the caller a moment
    /// before openraft's core has counted its own flush and moved the commit index, so the read
    /// index alone could miss a write the caller already saw acknowledged.
    pub(super) acked: parking_lot::Mutex<(u64, Lsn)>,
}

impl Drop for ReplicationNode {
    fn drop(&mut self) {
        self.monitor.abort();
        self.ack_task.abort();
        self.breaker_task.abort();
    }
}

fn check_policy(p: AckPolicy) -> Result<(), ConsensusError> {
    if p.mode == ReplicationMode::Sync && p.min_sync_replicas == 0 {
        return Err(ConsensusError::Invalid(SYNC_NEEDS_REPLICAS.into()));
    }
    Ok(())
}

fn role_of(state: ServerState) -> Role {
    match state {
        ServerState::Leader => Role::Leader,
        ServerState::Follower => Role::Follower,
        ServerState::Candidate => Role::Candidate,
        ServerState::Learner => Role::Learner,
        ServerState::Shutdown => Role::Shutdown,
    }
}

fn raft_err(e: impl std::fmt::Display) -> ConsensusError {
    ConsensusError::Raft(e.to_string())
}

impl ReplicationNode {
    /// Opens the WAL (`config.wal_directory`; consensus state in its `raft/` subdirectory) and
    /// starts the Raft node. Must be called inside a tokio multi-thread runtime.
    pub async fn start<N>(
        config: &ReplicationConfig,
        apply: Arc<dyn ApplyHandler>,
        network: N,
    ) -> Result<Self, ConsensusError>
    where
        N: RaftNetworkFactory<C>,
        N::Network: NetSnapshot<C, SnapshotData = SnapshotData>,
    {
        config
            .validate()
            .map_err(|e| ConsensusError::Invalid(e.to_string()))?;
        for w in config.warnings() {
            tracing::warn!(node = config.node_id, "{w}");
        }
        let raft_config = openraft::Config {
            cluster_name: "replication".into(),
            heartbeat_interval: config.heartbeat_interval_ms,
            election_timeout_min: config.election_timeout_min_ms,
            election_timeout_max: config.election_timeout_max_ms,
            enable_pre_vote: Some(true),
            enable_leader_restore: Some(false),
            install_snapshot_timeout: config.replication_timeout_ms.max(1000),
            ..Default::default()
        }
        .validate()
        .map_err(|e| ConsensusError::Invalid(format!("consensus timings: {e}")))?;

        let mut opts = config.wal_options();
        // The log store fsyncs each group of appends itself (see log_store.rs).
        opts.durability = Durability::None;
        let state_dir = opts.dir.join("raft");
        let wal = Wal::open(opts).map_err(|e| ConsensusError::Storage(e.to_string()))?;
        let log = WalLogStore::open(wal, &state_dir)
            .map_err(|e| ConsensusError::Storage(e.to_string()))?;
        log.set_retention_segments(config.wal_retention_segments);
        let sm = StateMachine::open(apply.clone(), &state_dir)
            .map_err(|e| ConsensusError::Storage(e.to_string()))?;
        let breaker = SplitVoteBreaker::new(config.node_id);
        let raft = ConsensusRaft::new(
            config.node_id,
            Arc::new(raft_config),
            breaker.watch(network),
            log.clone(),
            sm,
        )
        .await
        .map_err(raft_err)?;
        let health = Arc::new(Health::new(
            config.node_id,
            LagThresholds {
                entries: config.lag_alert_threshold_entries,
                ms: config.lag_alert_threshold_ms,
            },
            log.appends().clone(),
        ));
        // Half a heartbeat interval: an alert fires well within two intervals of the crossing.
        let period = (config.heartbeat_interval() / 2).max(Duration::from_millis(1));
        let monitor = tokio::spawn(health::monitor(health.clone(), raft.clone(), period));
        let acks = AckWaiters::default();
        let ack_task = tokio::spawn(acks.clone().follow(raft.clone(), config.node_id));
        let breaker_task = tokio::spawn(breaker.clone().run(raft.clone()));
        tracing::info!(node = config.node_id, mode = %config.mode, "replication node started");
        Ok(ReplicationNode {
            id: config.node_id,
            raft,
            log,
            handler: apply,
            lease: Duration::from_millis(config.election_timeout_max_ms),
            reads: ReadCounters::default(),
            health,
            monitor,
            acks,
            ack_task,
            breaker,
            breaker_task,
            acked: parking_lot::Mutex::new((0, 0)),
            policy: RwLock::new(AckPolicy {
                mode: config.mode,
                min_sync_replicas: config.min_sync_replicas,
            }),
            timeout: config.replication_timeout(),
            hlc: HlcClock::new(Duration::from_secs(60)),
            next_request: AtomicU64::new(1),
        })
    }

    pub fn id(&self) -> NodeId {
        self.id
    }

    /// Split votes this node broke by campaigning again at once (see split_vote.rs).
    pub fn split_votes_broken(&self) -> u64 {
        self.breaker.broken()
    }

    /// The openraft handle (to register with a network, or for advanced use).
    pub fn raft(&self) -> &ConsensusRaft {
        &self.raft
    }

    /// The WAL holding this node's log.
    pub fn wal(&self) -> &Wal {
        self.log.wal()
    }

    /// Forms a new cluster of `members` (node id -> address). Call once, on one node.
    pub async fn initialize(
        &self,
        members: BTreeMap<NodeId, String>,
    ) -> Result<(), ConsensusError> {
        let nodes: BTreeMap<NodeId, NodeInfo> = members
            .into_iter()
            .map(|(id, addr)| (id, NodeInfo::new(addr)))
            .collect();
        self.raft.initialize(nodes).await.map_err(raft_err)
    }

    pub fn policy(&self) -> AckPolicy {
        *self.policy.read()
    }

    /// Changes the acknowledgement mode for later writes. SYNC with min_sync_replicas = 0 is
    /// refused.
    pub fn set_mode(&self, mode: ReplicationMode) -> Result<(), ConsensusError> {
        let mut p = self.policy.write();
        let new = AckPolicy { mode, ..*p };
        check_policy(new)?;
        *p = new;
        tracing::info!(node = self.id, %mode, "acknowledgement mode changed");
        Ok(())
    }

    pub fn set_min_sync_replicas(&self, n: u32) -> Result<(), ConsensusError> {
        let mut p = self.policy.write();
        let new = AckPolicy {
            min_sync_replicas: n,
            ..*p
        };
        check_policy(new)?;
        if new.mode == ReplicationMode::SemiSync && n == 0 {
            tracing::warn!(
                node = self.id,
                "SEMI_SYNC with min_sync_replicas = 0 behaves like ASYNC"
            );
        }
        *p = new;
        Ok(())
    }

    fn metrics(&self) -> RaftMetrics<C> {
        self.raft.metrics().borrow_watched().clone()
    }

    pub fn role(&self) -> Role {
        role_of(self.metrics().state)
    }

    pub fn leader(&self) -> Option<NodeId> {
        self.metrics().current_leader
    }

    pub fn term(&self) -> u64 {
        self.metrics().current_term
    }

    /// Appends a write through consensus and waits for the acknowledgement of `mode` (or the
    /// node's current mode). Returns the write's LSN.
    pub async fn append(
        &self,
        mut write: ClientWrite,
        mode: Option<ReplicationMode>,
    ) -> Result<Lsn, ConsensusError> {
        if write.op.code() >= RESERVED_OP_FIRST {
            return Err(ConsensusError::Invalid(format!(
                "operation code {} is reserved for consensus records ({RESERVED_OP_FIRST}..=255)",
                write.op.code()
            )));
        }
        let policy = AckPolicy {
            mode: mode.unwrap_or(self.policy().mode),
            ..self.policy()
        };
        check_policy(policy)?;
        let deadline = Instant::now() + self.timeout;
        if policy.mode != ReplicationMode::Async {
            // Borrowed, not cloned: this runs for every write.
            let watch = self.raft.metrics();
            let m = watch.borrow_watched();
            let followers = voter_followers(&m, self.id).len();
            if followers < policy.min_sync_replicas as usize {
                return Err(ConsensusError::NotDurable {
                    reason: format!(
                        "{} needs {} follower acknowledgements but the cluster has {followers} \
                         voter follower(s); lower min_sync_replicas or add voters",
                        policy.mode, policy.min_sync_replicas
                    ),
                    leader: m.current_leader,
                });
            }
        }
        write.hlc = self.hlc.now().0;
        write.origin = self.id;
        loop {
            let rid = self.next_request.fetch_add(1, Ordering::Relaxed);
            write.request_id = rid;
            let mut durable_rx = self.log.register_ack(rid);
            let (responder, mut complete_rx) = ProgressResponder::complete_only();
            if let Err(fatal) = self
                .raft
                .client_write_ff(write.clone(), Some(responder))
                .await
            {
                self.log.unregister_ack(rid);
                return Err(ConsensusError::NotDurable {
                    reason: format!("the node is stopping ({fatal})"),
                    leader: None,
                });
            }
            // Phase 1: the entry is durable in this node's log.
            let (log_id, completed): (LogId, bool) = tokio::select! {
                r = &mut durable_rx => match r {
                    Ok(lid) => (lid, false),
                    Err(_) => return Err(ConsensusError::Unknown {
                        lsn: None,
                        reason: "the entry was removed from this node's log by a new leader".into(),
                    }),
                },
                c = &mut complete_rx => {
                    self.log.unregister_ack(rid);
                    match c {
                        Ok(Ok(resp)) => (resp.log_id, true),
                        Ok(Err(ClientWriteError::ForwardToLeader(f))) => {
                            let still_leader = self.raft.is_leader();
                            if f.reason == ForwardReason::LeaseExpired && still_leader
                                && Instant::now() + LEASE_RETRY < deadline {
                                // A new leader refuses writes until a quorum acks it: retry.
                                tokio::time::sleep(LEASE_RETRY).await;
                                continue;
                            }
                            return Err(ConsensusError::NotDurable {
                                reason: format!("refused by this node ({:?})", f.reason),
                                leader: f.leader_id,
                            });
                        }
                        Ok(Err(ClientWriteError::LogEntryDiscarded(f))) => {
                            return Err(ConsensusError::Unknown {
                                lsn: None,
                                reason: format!("the entry was discarded for leader {:?}'s log", f.leader_id),
                            })
                        }
                        Ok(Err(e)) => return Err(ConsensusError::NotDurable {
                            reason: e.to_string(),
                            leader: None,
                        }),
                        Err(_) => return Err(ConsensusError::Unknown {
                            lsn: None,
                            reason: "the node stopped while the write was in flight".into(),
                        }),
                    }
                }
                _ = tokio::time::sleep_until(deadline) => {
                    self.log.unregister_ack(rid);
                    return Err(ConsensusError::Unknown {
                        lsn: None,
                        reason: format!("not durable on the leader within {:?}", self.timeout),
                    });
                }
            };
            if policy.mode == ReplicationMode::Async {
                return Ok(log_id.index);
            }
            return self
                .wait_replicated(log_id, policy, deadline, complete_rx, completed)
                .await;
        }
    }

    /// Phase 2 of SEMI_SYNC / SYNC: wait until enough voter followers matched `log_id`
    /// (released by the node's [`AckWaiters`] task).
    async fn wait_replicated(
        &self,
        log_id: LogId,
        policy: AckPolicy,
        deadline: Instant,
        mut complete_rx: impl std::future::Future<
                Output = Result<
                    Result<openraft::raft::ClientWriteResponse<C>, ClientWriteError<C>>,
                    impl std::fmt::Debug,
                >,
            > + Unpin,
        mut completed: bool,
    ) -> Result<Lsn, ConsensusError> {
        let lsn = log_id.index;
        let unknown = |reason: String| ConsensusError::Unknown {
            lsn: Some(lsn),
            reason,
        };
        let mut wait = self.acks.register(lsn, log_id.leader_id.term, policy);
        loop {
            tokio::select! {
                r = &mut wait.rx => return match r {
                    Ok(Ok(())) => {
                        let term = log_id.leader_id.term;
                        let mut acked = self.acked.lock();
                        if (term, lsn) > *acked {
                            *acked = (term, lsn);
                        }
                        Ok(lsn)
                    }
                    Ok(Err(reason)) => Err(unknown(format!(
                        "{reason} ({} acknowledgements pending)",
                        policy.mode
                    ))),
                    Err(_) => Err(unknown("the node stopped".into())),
                },
                c = &mut complete_rx, if !completed => {
                    completed = true;
                    if let Ok(Err(e)) = c {
                        return Err(unknown(e.to_string()));
                    }
                }
                _ = tokio::time::sleep_until(deadline) => {
                    return Err(unknown(format!(
                        "{} acknowledgements not gathered within {:?}",
                        policy.mode, self.timeout
                    )));
                }
            }
        }
    }

    /// Waits until this node has applied `lsn` to its state machine.
    pub async fn wait_for_lsn(&self, lsn: Lsn, timeout: Duration) -> Result<(), ConsensusError> {
        self.raft
            .wait(Some(timeout))
            .applied_index_at_least(Some(lsn), format!("node {} applies LSN {lsn}", self.id))
            .await
            .map(|_| ())
            .map_err(|e| ConsensusError::Timeout(timeout, e.to_string()))
    }

    pub fn status(&self) -> NodeStatus {
        let m = self.metrics();
        let membership = m.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let learners: BTreeSet<NodeId> = membership.learner_ids().collect();
        let followers =
            health::follower_health(&m, self.id, self.log.appends(), &self.health.alerted());
        NodeStatus {
            id: self.id,
            role: role_of(m.state),
            term: m.current_term,
            leader: m.current_leader,
            last_lsn: m.last_log_index,
            durable_lsn: self.log.wal().durable_lsn(),
            commit_lsn: m.local_committed.map(|l| l.index),
            applied_lsn: m.last_applied.map(|l| l.index),
            voters,
            learners,
            policy: self.policy(),
            followers,
            reads: self.reads.snapshot(),
            lag_alerts: self.health.counts(),
        }
    }

    /// Registers `callback` for lag alert events (see [`health`](super::health)). It runs on a
    /// tokio worker thread of the node's monitor task, with no lock held: it may call this
    /// node's non-async methods, but must not block (hand slow work to another task).
    pub fn on_lag_alert(&self, callback: impl Fn(&LagAlert) + Send + Sync + 'static) {
        self.health.add_callback(Arc::new(callback));
    }

    /// For an operator or HA watchdog. On the leader: hand leadership to the most caught-up
    /// voter. With no known leader: campaign (pre-vote first). On a follower with a live leader
    /// the request belongs to the leader, so this returns `NotLeader`.
    pub async fn start_election(&self) -> Result<ElectionStart, ConsensusError> {
        let m = self.metrics();
        match m.current_leader {
            Some(l) if l == self.id && m.state == ServerState::Leader => {
                let status = self.status();
                let best = status
                    .followers
                    .iter()
                    .filter(|f| f.voter)
                    .max_by_key(|f| (f.matched_lsn, std::cmp::Reverse(f.last_ack)))
                    .map(|f| f.id)
                    .ok_or_else(|| {
                        ConsensusError::Invalid(
                            "there is no other voter to hand leadership to".into(),
                        )
                    })?;
                self.transfer_leadership(best).await?;
                Ok(ElectionStart::Transferring { to: best })
            }
            Some(l) if l != self.id => Err(ConsensusError::NotLeader { leader: Some(l) }),
            _ => {
                tracing::info!(node = self.id, term = m.current_term, "campaign requested");
                self.raft.trigger().elect(true).await.map_err(raft_err)?;
                Ok(ElectionStart::Campaigning)
            }
        }
    }

    /// On the leader: asks voter `to` to take over leadership.
    pub async fn transfer_leadership(&self, to: NodeId) -> Result<(), ConsensusError> {
        if !self.raft.is_leader() {
            return Err(ConsensusError::NotLeader {
                leader: self.leader(),
            });
        }
        tracing::info!(node = self.id, to, "transferring leadership");
        self.raft
            .trigger()
            .transfer_leader(to)
            .await
            .map_err(raft_err)
    }

    /// Adds a non-voting member. With `wait_caught_up`, returns once it has caught up.
    pub async fn add_learner(
        &self,
        id: NodeId,
        address: impl Into<String>,
        wait_caught_up: bool,
    ) -> Result<Lsn, ConsensusError> {
        self.raft
            .add_learner(id, NodeInfo::new(address.into()), wait_caught_up)
            .await
            .map(|r| r.log_id.index)
            .map_err(raft_err)
    }

    /// Replaces the voter set through joint consensus. Voters must already be members (add
    /// them as learners first). With `retain`, removed voters stay as learners.
    pub async fn change_membership(
        &self,
        voters: BTreeSet<NodeId>,
        retain: bool,
    ) -> Result<Lsn, ConsensusError> {
        self.raft
            .change_membership(voters, retain)
            .await
            .map(|r| r.log_id.index)
            .map_err(raft_err)
    }

    /// Builds a snapshot of the state machine now ([`ApplyHandler::snapshot`], covering every
    /// entry applied so far) and purges the log up to it, so that a follower behind that point
    /// catches up by installing the snapshot ([`ApplyHandler::restore`]). Returns the snapshot's
    /// LSN. For operators and tests: openraft also snapshots by itself (every 5000 entries).
    ///
    /// The purge may wait while a replication request still uses those entries; `timeout`
    /// bounds the whole call. A failing `snapshot` stops the node (as a failing `apply` does)
    /// and is reported as [`ConsensusError::Storage`].
    pub async fn trigger_snapshot(&self, timeout: Duration) -> Result<Lsn, ConsensusError> {
        let Some(applied) = self.metrics().last_applied else {
            return Err(ConsensusError::Invalid(
                "nothing is applied yet, so there is nothing to snapshot".into(),
            ));
        };
        // The node's fatal error, if it stopped (e.g. the host's snapshot failed).
        let stopped = |m: &RaftMetrics<C>| match &m.running_state {
            Err(fatal) => Some(ConsensusError::Storage(fatal.to_string())),
            Ok(()) => None,
        };
        let waited = |what: &str, e: openraft::metrics::WaitError| match stopped(&self.metrics()) {
            Some(fatal) => fatal,
            None => ConsensusError::Timeout(timeout, format!("{what}: {e}")),
        };
        let deadline = Instant::now() + timeout;
        let left = || deadline.saturating_duration_since(Instant::now());
        self.raft.trigger().snapshot().await.map_err(raft_err)?;
        let m = self
            .raft
            .wait(Some(left()))
            .metrics(
                |m| {
                    m.running_state.is_err() || m.snapshot.is_some_and(|s| s.index >= applied.index)
                },
                format!("node {} snapshots up to LSN {}", self.id, applied.index),
            )
            .await
            .map_err(|e| waited("building the snapshot", e))?;
        if let Some(fatal) = stopped(&m) {
            return Err(fatal);
        }
        let snap = m.snapshot.expect("the wait condition saw a snapshot");
        self.raft
            .trigger()
            .purge_log(snap.index)
            .await
            .map_err(raft_err)?;
        let m = self
            .raft
            .wait(Some(left()))
            .metrics(
                |m| m.running_state.is_err() || m.purged.is_some_and(|p| p.index >= snap.index),
                format!("node {} purges its log up to LSN {}", self.id, snap.index),
            )
            .await
            .map_err(|e| waited("purging the log", e))?;
        if let Some(fatal) = stopped(&m) {
            return Err(fatal);
        }
        tracing::info!(
            node = self.id,
            lsn = snap.index,
            "snapshot built, log purged up to it"
        );
        Ok(snap.index)
    }

    /// Stops the node and closes its WAL (after a final sync).
    pub async fn shutdown(&self) -> Result<(), ConsensusError> {
        self.monitor.abort();
        self.breaker_task.abort();
        // The ack task ends by itself once the Raft has stopped: its last metrics release
        // the waiting writes.
        self.raft.shutdown().await.map_err(raft_err)?;
        let log = self.log.clone();
        tokio::task::spawn_blocking(move || log.close())
            .await
            .map_err(raft_err)?
            .map_err(|e| ConsensusError::Storage(e.to_string()))
    }
}

fn voter_followers(m: &RaftMetrics<C>, me: NodeId) -> Vec<NodeId> {
    m.membership_config
        .membership()
        .voter_ids()
        .filter(|id| *id != me)
        .collect()
}
