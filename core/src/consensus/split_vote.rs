//! Breaking split votes at once instead of after another election timeout.
//!
//! With standard Raft leader ids (one vote per node per term, see `types.rs`), two followers
//! whose election timers fire within a round trip of each other each vote for themselves in the
//! same term and refuse the other: nobody wins, and openraft waits a fresh election timeout
//! (3.0-3.3 s by default, plus 2 x election_timeout_max if it saw a longer log) before trying
//! again. At default timings that doubled failover's tail (p99 13.5 s with splits, 6.7 s without).
//!
//! The breaker watches the answers to this node's vote requests. When they show that the
//! election cannot be won because of a split, and this node is the candidate every other
//! candidate it heard from would vote for (the longest log, then the highest node id), it
//! campaigns again at once (`Raft::trigger().elect(false)`); the others do not, and grant it.
//!
//! Safety is untouched: this only decides *when* to campaign; voters still apply every Raft
//! rule, including the leader lease (a voter that hears from a live leader refuses). Term
//! inflation by a partitioned node is ruled out because the breaker acts only when a quorum
//! (itself included) actually answered and every refusal was a same-term vote for another
//! candidate; a node that cannot reach a quorum never sees that. It acts at most once per term.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use openraft::async_runtime::watch::WatchReceiver;
use openraft::errors::{RPCError, ReplicationClosed, StreamingError};
use openraft::network::{
    Backoff, NetBackoff, NetSnapshot, NetStreamAppend, NetTransferLeader, NetVote, RPCOption,
    RaftNetworkFactory,
};
use openraft::raft::{
    AppendEntriesRequest, SnapshotResponse, StreamAppendResult, TransferLeaderRequest,
    TransferLeaderResponse, VoteRequest, VoteResponse,
};
use openraft::{OptionalSend, RaftMetrics, ServerState};
use parking_lot::Mutex;

use super::types::{ConsensusRaft, LogId, NodeInfo, Vote, C};
use crate::NodeId;

/// How one voter answered this node's vote request for the current round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    Granted,
    /// Refused because it already voted, in the same term, for another candidate
    /// (`voted_for`); `last_log` is the voter's own last log id.
    Split {
        voted_for: NodeId,
        last_log: Option<LogId>,
    },
    /// Refused for any other reason: a higher term, a live leader, a longer log.
    Refused,
    /// No answer (unreachable, timed out).
    Unreachable,
}

impl Answer {
    fn of(me: NodeId, term: u64, result: &Result<VoteResponse<C>, RPCError<C>>) -> Answer {
        let Ok(resp) = result else {
            return Answer::Unreachable;
        };
        if resp.vote_granted {
            return Answer::Granted;
        }
        let v = &resp.vote;
        if v.leader_id.term == term && !v.committed && v.leader_id.voted_for != me {
            Answer::Split {
                voted_for: v.leader_id.voted_for,
                last_log: resp.last_log_id,
            }
        } else {
            Answer::Refused
        }
    }
}

/// Whether candidate `me` (log ending at `my_last_log`) should campaign again at once, given
/// the answers so far from the single-configuration voter set `voters`.
pub(crate) fn should_recampaign(
    me: NodeId,
    my_last_log: Option<LogId>,
    answers: &BTreeMap<NodeId, Answer>,
    voters: &BTreeSet<NodeId>,
) -> bool {
    if !voters.contains(&me) {
        return false;
    }
    let quorum = voters.len() / 2 + 1;
    let (mut granted, mut pending, mut split) = (1usize, 0usize, 0usize);
    for v in voters.iter().filter(|v| **v != me) {
        match answers.get(v) {
            None => pending += 1,
            Some(Answer::Granted) => granted += 1,
            Some(Answer::Split {
                voted_for,
                last_log,
            }) => {
                // Every candidate that split this term must prefer us: otherwise it is the
                // one to retry (or the normal timeout sorts it out).
                if (my_last_log, me) <= (*last_log, *voted_for) {
                    return false;
                }
                split += 1;
            }
            Some(Answer::Refused) => return false,
            Some(Answer::Unreachable) => {}
        }
    }
    let cannot_win = granted + pending < quorum;
    let quorum_answered = granted + split >= quorum;
    split > 0 && cannot_win && quorum_answered
}

#[derive(Default)]
struct Round {
    term: u64,
    last_log: Option<LogId>,
    answers: BTreeMap<NodeId, Answer>,
    acted: bool,
}

/// Collects vote answers (through [`VoteWatch`]) and campaigns again when a split is seen.
pub struct SplitVoteBreaker {
    me: NodeId,
    round: Mutex<Round>,
    changed: tokio::sync::Notify,
    broken: AtomicU64,
}

impl SplitVoteBreaker {
    pub fn new(me: NodeId) -> Arc<Self> {
        Arc::new(SplitVoteBreaker {
            me,
            round: Mutex::new(Round::default()),
            changed: tokio::sync::Notify::new(),
            broken: AtomicU64::new(0),
        })
    }

    /// Split votes this node broke by campaigning again at once.
    pub fn broken(&self) -> u64 {
        self.broken.load(Ordering::Relaxed)
    }

    /// Wraps a network factory so that this breaker sees the answers to vote requests.
    pub fn watch<N>(self: &Arc<Self>, inner: N) -> VoteWatch<N> {
        VoteWatch {
            inner,
            breaker: self.clone(),
        }
    }

    fn record(&self, target: NodeId, term: u64, last_log: Option<LogId>, answer: Answer) {
        let mut r = self.round.lock();
        if term < r.term {
            return;
        }
        if term > r.term {
            *r = Round {
                term,
                last_log,
                ..Round::default()
            };
        }
        r.answers.insert(target, answer);
        drop(r);
        self.changed.notify_one();
    }

    /// Runs until the Raft node shuts down: after each recorded answer, campaigns again if
    /// [`should_recampaign`] says so and the node is still the candidate of that round.
    pub async fn run(self: Arc<Self>, raft: ConsensusRaft) {
        let mut metrics = raft.metrics();
        loop {
            self.changed.notified().await;
            // The answers can race ahead of the metrics that show this node as the round's
            // candidate: give them a moment to catch up.
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(200);
            let fire = loop {
                let decision = {
                    let m = metrics.borrow_watched();
                    if m.state == ServerState::Shutdown {
                        return;
                    }
                    self.decide(&m)
                };
                if let Some(fire) = decision {
                    break fire;
                }
                let changed = tokio::time::timeout_at(deadline, metrics.changed()).await;
                if !matches!(changed, Ok(Ok(()))) {
                    break false;
                }
            };
            if fire {
                self.broken.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    node = self.me,
                    "split vote: campaigning again at once as the preferred candidate"
                );
                if raft.trigger().elect(false).await.is_err() {
                    return;
                }
            }
        }
    }

    /// Whether to campaign again now, given the node's metrics; `None` while the metrics have
    /// not yet caught up with the round the answers belong to. Marks the round acted upon.
    fn decide(&self, m: &RaftMetrics<C>) -> Option<bool> {
        let mut r = self.round.lock();
        if m.current_term < r.term {
            return None;
        }
        let candidate_of_round = m.state == ServerState::Candidate
            && m.current_term == r.term
            && m.vote.leader_id.voted_for == self.me
            && !m.vote.committed;
        // Joint configurations have two quorums: leave them to openraft's timer.
        let configs = m.membership_config.membership().get_joint_config();
        let fire = candidate_of_round
            && !r.acted
            && configs.len() == 1
            && should_recampaign(self.me, r.last_log, &r.answers, &configs[0]);
        r.acted |= fire;
        Some(fire)
    }
}

/// A network factory whose clients report vote answers to a [`SplitVoteBreaker`].
pub struct VoteWatch<N> {
    inner: N,
    breaker: Arc<SplitVoteBreaker>,
}

/// A network client that forwards everything and reports vote answers.
pub struct VoteWatchPeer<P> {
    inner: P,
    target: NodeId,
    breaker: Arc<SplitVoteBreaker>,
}

impl<N> VoteWatch<N> {
    fn peer<P>(&self, target: NodeId, inner: P) -> VoteWatchPeer<P> {
        VoteWatchPeer {
            inner,
            target,
            breaker: self.breaker.clone(),
        }
    }
}

impl<N: RaftNetworkFactory<C>> RaftNetworkFactory<C> for VoteWatch<N> {
    type Network = VoteWatchPeer<N::Network>;

    async fn new_client(&mut self, target: NodeId, node: &NodeInfo) -> Self::Network {
        let inner = self.inner.new_client(target, node).await;
        self.peer(target, inner)
    }

    async fn new_heartbeat_client(&mut self, target: NodeId, node: &NodeInfo) -> Self::Network {
        let inner = self.inner.new_heartbeat_client(target, node).await;
        self.peer(target, inner)
    }

    async fn new_snapshot_client(&mut self, target: NodeId, node: &NodeInfo) -> Self::Network {
        let inner = self.inner.new_snapshot_client(target, node).await;
        self.peer(target, inner)
    }
}

impl<P: NetVote<C>> NetVote<C> for VoteWatchPeer<P> {
    async fn vote(
        &mut self,
        rpc: VoteRequest<C>,
        option: RPCOption,
    ) -> Result<VoteResponse<C>, RPCError<C>> {
        let term = rpc.vote.leader_id.term;
        let last_log = rpc.last_log_id;
        let result = self.inner.vote(rpc, option).await;
        let answer = Answer::of(self.breaker.me, term, &result);
        self.breaker.record(self.target, term, last_log, answer);
        result
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<C>,
        option: RPCOption,
    ) -> Result<VoteResponse<C>, RPCError<C>> {
        self.inner.pre_vote(rpc, option).await
    }
}

impl<P: NetBackoff<C>> NetBackoff<C> for VoteWatchPeer<P> {
    fn backoff(&self) -> Option<Backoff> {
        self.inner.backoff()
    }
}

impl<P: NetStreamAppend<C>> NetStreamAppend<C> for VoteWatchPeer<P> {
    fn stream_append<'s, S>(
        &'s mut self,
        input: S,
        option: RPCOption,
    ) -> BoxFuture<'s, Result<BoxStream<'s, Result<StreamAppendResult<C>, RPCError<C>>>, RPCError<C>>>
    where
        S: futures_util::Stream<Item = AppendEntriesRequest<C>> + OptionalSend + Unpin + 'static,
    {
        self.inner.stream_append(input, option)
    }
}

impl<P: NetSnapshot<C>> NetSnapshot<C> for VoteWatchPeer<P> {
    type SnapshotData = P::SnapshotData;

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: openraft::type_config::alias::SnapshotOf<C, Self::SnapshotData>,
        cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<C>, StreamingError<C>> {
        self.inner
            .full_snapshot(vote, snapshot, cancel, option)
            .await
    }
}

impl<P: NetTransferLeader<C>> NetTransferLeader<C> for VoteWatchPeer<P> {
    async fn transfer_leader(
        &mut self,
        req: TransferLeaderRequest<C>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<C>, RPCError<C>> {
        self.inner.transfer_leader(req, option).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::types::log_id;

    fn voters(ids: &[NodeId]) -> BTreeSet<NodeId> {
        ids.iter().copied().collect()
    }

    fn split(voted_for: NodeId, term: u64, index: u64) -> Answer {
        Answer::Split {
            voted_for,
            last_log: Some(log_id(term, index)),
        }
    }

    #[test]
    fn of_two_split_candidates_exactly_one_campaigns_again() {
        // Leader 1 is dead; 2 and 3 both campaigned in the same term with equal logs.
        let v = voters(&[1, 2, 3]);
        let log = Some(log_id(4, 100));
        let answers_of_2 = BTreeMap::from([(1, Answer::Unreachable), (3, split(3, 4, 100))]);
        let answers_of_3 = BTreeMap::from([(1, Answer::Unreachable), (2, split(2, 4, 100))]);
        assert!(!should_recampaign(2, log, &answers_of_2, &v));
        assert!(should_recampaign(3, log, &answers_of_3, &v));
    }

    #[test]
    fn the_longer_log_wins_over_the_higher_node_id() {
        let v = voters(&[1, 2, 3]);
        let answers_of_2 = BTreeMap::from([(1, Answer::Unreachable), (3, split(3, 4, 90))]);
        let answers_of_3 = BTreeMap::from([(1, Answer::Unreachable), (2, split(2, 4, 100))]);
        assert!(should_recampaign(
            2,
            Some(log_id(4, 100)),
            &answers_of_2,
            &v
        ));
        assert!(!should_recampaign(
            3,
            Some(log_id(4, 90)),
            &answers_of_3,
            &v
        ));
    }

    #[test]
    fn waits_while_the_election_can_still_be_won() {
        // Node 1 has not answered yet: its grant would still win the election.
        let v = voters(&[1, 2, 3]);
        let answers = BTreeMap::from([(2, split(2, 4, 100))]);
        assert!(!should_recampaign(3, Some(log_id(4, 100)), &answers, &v));
    }

    #[test]
    fn a_node_that_cannot_reach_a_quorum_never_campaigns_again() {
        // Partitioned: every peer unreachable. No split evidence, and no quorum answered.
        let v = voters(&[1, 2, 3, 4, 5]);
        let answers: BTreeMap<_, _> = [1, 2, 3, 4]
            .into_iter()
            .map(|n| (n, Answer::Unreachable))
            .collect();
        assert!(!should_recampaign(5, Some(log_id(4, 100)), &answers, &v));
        // Five voters, one split answer: self + 1 is not a quorum of 3.
        let mut answers = answers;
        answers.insert(1, split(1, 4, 1));
        assert!(!should_recampaign(5, Some(log_id(4, 100)), &answers, &v));
    }

    #[test]
    fn any_other_refusal_leaves_the_retry_to_openraft() {
        let v = voters(&[1, 2, 3]);
        let answers = BTreeMap::from([(1, Answer::Refused), (2, split(2, 4, 100))]);
        assert!(!should_recampaign(3, Some(log_id(4, 100)), &answers, &v));
    }

    #[test]
    fn five_voters_three_way_split() {
        // 1 and 2 voted for 3 isn't a split for 3; here 5 got one grant (4), 1 and 2 voted for
        // candidate 2 (2 is a candidate, 1 voted for it), 3 voted for itself.
        let v = voters(&[1, 2, 3, 4, 5]);
        let log = Some(log_id(4, 100));
        let answers = BTreeMap::from([
            (1, split(2, 4, 100)),
            (2, split(2, 4, 100)),
            (3, split(3, 4, 100)),
            (4, Answer::Granted),
        ]);
        assert!(should_recampaign(5, log, &answers, &v));
        // Candidate 3 sees 5 split against it with the same log: 5 is preferred.
        let answers_of_3 = BTreeMap::from([
            (1, split(2, 4, 100)),
            (2, split(2, 4, 100)),
            (4, split(5, 4, 100)),
            (5, split(5, 4, 100)),
        ]);
        assert!(!should_recampaign(3, log, &answers_of_3, &v));
    }
}
