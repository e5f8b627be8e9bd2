//! Reads through a [`ReplicationNode`]: linearizable, leader-local and bounded-staleness
//! follower reads of the host's state machine ([`ApplyHandler::read`]).
//!
//! - [`ReadConsistency::Linearizable`] (leader only). The leader first tries its lease
//!   (openraft `ReadPolicy::LeaseRead`: a quorum acknowledged it within `election_timeout_max`,
//!   so no other leader can exist yet). When the lease is not valid it falls back to ReadIndex:
//!   it sends a heartbeat round and needs a quorum to acknowledge it. Either way it gets a read
//!   index (the last committed LSN, at least its own first entry), waits until it has applied
//!   that far, and also past every write it acknowledged as SEMI_SYNC / SYNC in this term
//!   (such an ack can precede the commit index by a moment), and then reads. A leader that cannot reach a quorum refuses with
//!   [`ConsensusError::QuorumUnavailable`]: with check-quorum a cut-off leader keeps the leader
//!   role, so the gate is the lease / quorum round, never `is_leader()`.
//! - [`ReadConsistency::LeaderLocal`] (leader only). No quorum round: waits until the leader has
//!   applied what it knows to be committed, then reads. Cheap, but a leader cut off from the
//!   cluster can return data a newer leader has already overwritten.
//! - [`ReadConsistency::FollowerBounded`] (any node). Reads the local state when it is known to
//!   be at most `max_staleness` behind the leader. On a follower or learner, "known" comes from
//!   openraft's `RaftState`: `vote_last_modified()` is when the current leader's vote was last
//!   confirmed, which openraft refreshes on every AppendEntries from that leader, heartbeats
//!   included (`update_vote` → `touch`), and `cluster_committed()` is the commit index that leader
//!   last reported. The local state reflects everything the leader had committed at that contact
//!   once the follower has applied that index; its staleness is then the time since the contact.
//!   This needs no change to any transport (the metrics have no last-contact time, and the log
//!   store does not see empty heartbeats). On the leader, the reference point is its last quorum
//!   acknowledgement (no newer leader can exist before the lease after it runs out). Refused
//!   with [`ConsensusError::Stale`] when the bound cannot be met.
//!
//! Every read is counted by consistency, and linearizable reads by the path they took
//! ([`ReadStats`], in [`NodeStatus`](super::NodeStatus)).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use openraft::async_runtime::watch::WatchReceiver;
use openraft::errors::{LinearizableReadError, RaftError};
use openraft::raft::linearizable_read::{Linearizer, LinearizerOption};
use openraft::raft::ReadPolicy;
use openraft::{Instant as _, ServerState};
use tokio::time::Instant;
use tracing::Instrument;

use super::node::{ConsensusError, ReplicationNode};
use super::types::C;
use crate::Lsn;

/// How fresh a read must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadConsistency {
    /// Sees every write acknowledged before the read started, cluster-wide. Leader only.
    Linearizable,
    /// The leader's applied state, without confirming leadership. Leader only.
    LeaderLocal,
    /// The local state, if it is at most `max_staleness` behind the leader. Any node.
    FollowerBounded { max_staleness: Duration },
}

/// How a linearizable read confirmed leadership.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadPath {
    /// The leader lease was valid: no network round.
    Lease,
    /// The lease had lapsed: a quorum acknowledged a heartbeat sent after the read arrived.
    ReadIndex,
}

/// Read counters since the node started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadStats {
    /// Linearizable reads served.
    pub linearizable: u64,
    /// Leader-local reads served.
    pub leader_local: u64,
    /// Bounded-staleness reads served.
    pub follower_bounded: u64,
    /// Linearizable reads served on the lease path.
    pub lease_path: u64,
    /// Linearizable reads served on the ReadIndex path.
    pub read_index_path: u64,
    /// Bounded-staleness reads refused as too stale.
    pub refused_stale: u64,
    /// Reads that failed for any other reason (not leader, no quorum, timeout, host error).
    pub failed: u64,
}

#[derive(Default)]
pub(crate) struct ReadCounters {
    linearizable: AtomicU64,
    leader_local: AtomicU64,
    follower_bounded: AtomicU64,
    lease_path: AtomicU64,
    read_index_path: AtomicU64,
    refused_stale: AtomicU64,
    failed: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl ReadCounters {
    pub(crate) fn snapshot(&self) -> ReadStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ReadStats {
            linearizable: get(&self.linearizable),
            leader_local: get(&self.leader_local),
            follower_bounded: get(&self.follower_bounded),
            lease_path: get(&self.lease_path),
            read_index_path: get(&self.read_index_path),
            refused_stale: get(&self.refused_stale),
            failed: get(&self.failed),
        }
    }
}

/// The instant `elapsed` ago (now, if the clock does not reach back that far).
fn ago(elapsed: Duration) -> Instant {
    let now = Instant::now();
    now.checked_sub(elapsed).unwrap_or(now)
}

fn linearize_err(e: RaftError<C, LinearizableReadError<C>>) -> ConsensusError {
    match e {
        RaftError::APIError(LinearizableReadError::ForwardToLeader(f)) => {
            ConsensusError::NotLeader {
                leader: f.leader_id,
            }
        }
        RaftError::APIError(LinearizableReadError::QuorumNotEnough(q)) => {
            ConsensusError::QuorumUnavailable(q.to_string())
        }
        RaftError::Fatal(f) => ConsensusError::Raft(f.to_string()),
    }
}

impl ReplicationNode {
    /// Reads document `doc_id` of `collection` from this node's state machine with the given
    /// consistency (see the [`reads`](super::reads) module). `Ok(None)`: no such document.
    pub async fn read(
        &self,
        collection: &str,
        doc_id: &str,
        consistency: ReadConsistency,
    ) -> Result<Option<Bytes>, ConsensusError> {
        let span = tracing::debug_span!("consensus_read", node = self.id, ?consistency);
        self.read_inner(collection, doc_id, consistency)
            .instrument(span)
            .await
    }

    async fn read_inner(
        &self,
        collection: &str,
        doc_id: &str,
        consistency: ReadConsistency,
    ) -> Result<Option<Bytes>, ConsensusError> {
        let reads = &self.reads;
        let result = match consistency {
            ReadConsistency::Linearizable => self.linearize().await.map(|path| {
                bump(&reads.linearizable);
                bump(match path {
                    ReadPath::Lease => &reads.lease_path,
                    ReadPath::ReadIndex => &reads.read_index_path,
                });
            }),
            ReadConsistency::LeaderLocal => self
                .leader_local()
                .await
                .map(|()| bump(&reads.leader_local)),
            ReadConsistency::FollowerBounded { max_staleness } => self
                .bounded(max_staleness)
                .await
                .map(|()| bump(&reads.follower_bounded)),
        };
        let result = result.and_then(|()| {
            self.handler
                .read(collection, doc_id)
                .map_err(|e| ConsensusError::Storage(format!("the state machine read failed: {e}")))
        });
        if let Err(e) = &result {
            bump(match e {
                ConsensusError::Stale { .. } => &reads.refused_stale,
                _ => &reads.failed,
            });
        }
        result
    }

    /// Confirms leadership (lease, else ReadIndex) and waits until the read index is applied.
    async fn linearize(&self) -> Result<ReadPath, ConsensusError> {
        let deadline = Instant::now() + self.timeout;
        let (lin, path) = match self.raft.get_read_linearizer(ReadPolicy::LeaseRead).await {
            Ok(lin) => (lin, ReadPath::Lease),
            Err(RaftError::APIError(LinearizableReadError::QuorumNotEnough(_))) => {
                // The lease lapsed. Wait for a fresh quorum round, but no longer than the lease
                // (after that a new leader may exist anyway) nor the caller's timeout.
                let wait = deadline
                    .saturating_duration_since(Instant::now())
                    .min(self.lease);
                let opt = LinearizerOption::new(Some(Duration::ZERO), true).with_wait_timeout(wait);
                let lin = self
                    .raft
                    .get_read_linearizer(opt)
                    .await
                    .map_err(linearize_err)?;
                (lin, ReadPath::ReadIndex)
            }
            Err(e) => return Err(linearize_err(e)),
        };
        let term = lin.read_log_id().log_id().leader_id.term;
        let read_index = lin.read_log_id().log_id().index;
        self.await_applied(lin, deadline).await?;
        // Writes this leader acknowledged in this term may be ahead of the read index for a
        // moment (see `ReplicationNode::acked`): include them.
        let (acked_term, acked_lsn) = *self.acked.lock();
        if acked_term == term && acked_lsn > read_index {
            self.wait_applied_until(acked_lsn, deadline)
                .await
                .map_err(|_| {
                    ConsensusError::Timeout(
                        self.timeout,
                        format!(
                            "node {} did not apply acknowledged LSN {acked_lsn} in time",
                            self.id
                        ),
                    )
                })?;
        }
        Ok(path)
    }

    async fn await_applied(
        &self,
        lin: Linearizer<C>,
        deadline: Instant,
    ) -> Result<(), ConsensusError> {
        let index = lin.read_log_id().log_id().index;
        let wait = deadline.saturating_duration_since(Instant::now());
        match lin.try_await_ready(&self.raft, Some(wait)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(ConsensusError::Timeout(
                self.timeout,
                format!(
                    "node {} did not apply the read index {index} in time",
                    self.id
                ),
            )),
            Err(fatal) => Err(ConsensusError::Raft(fatal.to_string())),
        }
    }

    async fn leader_local(&self) -> Result<(), ConsensusError> {
        let m = self.raft.metrics().borrow_watched().clone();
        if m.state != ServerState::Leader {
            return Err(ConsensusError::NotLeader {
                leader: m.current_leader,
            });
        }
        if let Some(c) = m.local_committed {
            self.wait_applied_until(c.index, Instant::now() + self.timeout)
                .await
                .map_err(|_| {
                    ConsensusError::Timeout(
                        self.timeout,
                        format!("node {} did not apply LSN {} in time", self.id, c.index),
                    )
                })?;
        }
        Ok(())
    }

    /// The newest point in time the local state is known to match the leader's commit, and
    /// the commit index to reach for that. `None` when no leader is known.
    async fn freshness_reference(&self) -> Result<Option<(Instant, Option<Lsn>)>, ConsensusError> {
        let m = self.raft.metrics().borrow_watched().clone();
        if m.state == ServerState::Leader {
            let alone = m
                .membership_config
                .membership()
                .voter_ids()
                .all(|v| v == self.id);
            let at = if alone {
                Some(Instant::now())
            } else {
                m.last_quorum_acked.map(|t| ago(t.elapsed()))
            };
            return Ok(at.map(|at| (at, m.local_committed.map(|c| c.index))));
        }
        let me = self.id;
        let (contact, vote, committed) = self
            .raft
            .with_raft_state(|st| {
                (
                    st.vote_last_modified(),
                    *st.vote_ref(),
                    st.cluster_committed().copied(),
                )
            })
            .await
            .map_err(|e| ConsensusError::Raft(e.to_string()))?;
        // An uncommitted vote is a candidate's, not an established leader's.
        if !vote.committed || vote.leader_id.voted_for == me {
            return Ok(None);
        }
        Ok(contact.map(|t| (ago(t.elapsed()), committed.map(|c| c.index))))
    }

    async fn bounded(&self, bound: Duration) -> Result<(), ConsensusError> {
        let stale = |at: Option<Instant>| ConsensusError::Stale {
            staleness: at.map(|t| t.elapsed()),
            bound,
        };
        let Some((at, committed)) = self.freshness_reference().await? else {
            return Err(stale(None));
        };
        let deadline = at + bound;
        if Instant::now() > deadline {
            return Err(stale(Some(at)));
        }
        if let Some(c) = committed {
            // Staleness grows while we wait, so wait only as long as the bound allows.
            self.wait_applied_until(c, deadline)
                .await
                .map_err(|_| stale(Some(at)))?;
        }
        if Instant::now() > deadline {
            return Err(stale(Some(at)));
        }
        Ok(())
    }

    /// Waits until this node has applied `lsn`, or fails at `deadline`.
    async fn wait_applied_until(&self, lsn: Lsn, deadline: Instant) -> Result<(), ()> {
        let mut rx = self.raft.metrics();
        loop {
            if rx
                .borrow_watched()
                .last_applied
                .is_some_and(|a| a.index >= lsn)
            {
                return Ok(());
            }
            tokio::select! {
                r = rx.changed() => if r.is_err() { return Err(()) },
                _ = tokio::time::sleep_until(deadline) => return Err(()),
            }
        }
    }
}
