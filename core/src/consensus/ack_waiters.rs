//! Writes waiting for SEMI_SYNC / SYNC acknowledgements, released by one task.
//!
//! Each waiting write used to watch the node's metrics itself, so every metrics change (once
//! per Raft core loop) woke every waiting write to re-check its count: thousands of wake-ups per
//! change under load. Here one task follows the metrics, works out for each acknowledgement
//! policy the highest LSN it covers, and completes exactly the waiters at or below it.
//!
//! A policy's watermark: SEMI_SYNC with k replicas is the k-th highest matched LSN among the
//! voter followers; SYNC is the lowest matched LSN of all voter followers (when there are at
//! least max(k, 1) of them). A follower's matched LSN on the leader is durable on that follower
//! (it acknowledges only after its flush). Waiters fail when the node stops leading the term
//! their entry was proposed in: their outcome is then unknown.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use openraft::async_runtime::watch::WatchReceiver;
use openraft::{RaftMetrics, ServerState};
use parking_lot::Mutex;
use tokio::sync::oneshot;

use super::node::AckPolicy;
use super::types::{ConsensusRaft, C};
use crate::config::ReplicationMode;
use crate::{Lsn, NodeId};

/// Why a waiter was released without its acknowledgements.
pub(crate) type AckFailure = String;

/// What the latest metrics say about replication, as the waiters need it.
#[derive(Debug, Clone, Default)]
struct Progress {
    /// The term this node leads, or `None` when it is not the leader.
    leading_term: Option<u64>,
    /// Matched LSN of every voter follower (0 if none matched yet), highest first.
    matched: Vec<Lsn>,
    /// True once the node has stopped.
    stopped: bool,
}

impl Progress {
    fn from_metrics(m: &RaftMetrics<C>, me: NodeId) -> Progress {
        let leading_term = (m.state == ServerState::Leader).then_some(m.current_term);
        let mut matched: Vec<Lsn> = m
            .membership_config
            .membership()
            .voter_ids()
            .filter(|id| *id != me)
            .map(|id| {
                m.replication
                    .as_ref()
                    .and_then(|r| r.get(&id).copied().flatten())
                    .map_or(0, |l| l.index)
            })
            .collect();
        matched.sort_unstable_by(|a, b| b.cmp(a));
        Progress {
            leading_term,
            matched,
            stopped: m.state == ServerState::Shutdown,
        }
    }

    /// The highest LSN `policy` considers acknowledged (0: none).
    fn watermark(&self, policy: PolicyKey) -> Lsn {
        let k = policy.min_sync_replicas as usize;
        match policy.mode {
            ReplicationMode::Async => Lsn::MAX,
            ReplicationMode::SemiSync if k == 0 => Lsn::MAX,
            ReplicationMode::SemiSync => self.matched.get(k - 1).copied().unwrap_or(0),
            ReplicationMode::Sync if self.matched.len() < k.max(1) => 0,
            ReplicationMode::Sync => self.matched.last().copied().unwrap_or(0),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct PolicyKey {
    mode: ReplicationMode,
    min_sync_replicas: u32,
}

struct Waiter {
    term: u64,
    tx: oneshot::Sender<Result<(), AckFailure>>,
}

#[derive(Default)]
struct State {
    progress: Progress,
    /// Per policy, the waiters by (LSN, registration number).
    waiting: HashMap<PolicyKey, BTreeMap<(Lsn, u64), Waiter>>,
    next_seq: u64,
}

/// The waiters of one node. Cheap to clone.
#[derive(Clone, Default)]
pub(crate) struct AckWaiters {
    state: Arc<Mutex<State>>,
}

/// Removes its waiter if the write stops waiting first (a timeout).
pub(crate) struct Registration {
    waiters: AckWaiters,
    key: PolicyKey,
    slot: (Lsn, u64),
    pub rx: oneshot::Receiver<Result<(), AckFailure>>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut st = self.waiters.state.lock();
        if let Some(map) = st.waiting.get_mut(&self.key) {
            map.remove(&self.slot);
        }
    }
}

impl AckWaiters {
    /// Waits until `lsn`, proposed in `term`, is acknowledged under `policy`. Completes at once
    /// if it already is.
    pub(crate) fn register(&self, lsn: Lsn, term: u64, policy: AckPolicy) -> Registration {
        let key = PolicyKey {
            mode: policy.mode,
            min_sync_replicas: policy.min_sync_replicas,
        };
        let (tx, rx) = oneshot::channel();
        let mut st = self.state.lock();
        let seq = st.next_seq;
        st.next_seq += 1;
        let p = &st.progress;
        if p.stopped || p.leading_term != Some(term) {
            let _ = tx.send(Err(lost_leadership(p)));
        } else if lsn <= p.watermark(key) {
            let _ = tx.send(Ok(()));
        } else {
            st.waiting
                .entry(key)
                .or_default()
                .insert((lsn, seq), Waiter { term, tx });
        }
        drop(st);
        Registration {
            waiters: self.clone(),
            key,
            slot: (lsn, seq),
            rx,
        }
    }

    /// Takes in new progress and releases every waiter it decides.
    fn update(&self, progress: Progress) {
        let mut st = self.state.lock();
        let st = &mut *st;
        for (key, map) in st.waiting.iter_mut() {
            // Entries of an earlier term (this node lost and regained leadership, or never
            // led it) can no longer be acknowledged through this node.
            let failed: Vec<(Lsn, u64)> = map
                .iter()
                .filter(|(_, w)| progress.stopped || progress.leading_term != Some(w.term))
                .map(|(k, _)| *k)
                .collect();
            for k in failed {
                if let Some(w) = map.remove(&k) {
                    let _ = w.tx.send(Err(lost_leadership(&progress)));
                }
            }
            let mark = progress.watermark(*key);
            while let Some(entry) = map.first_entry() {
                if entry.key().0 > mark {
                    break;
                }
                let _ = entry.remove().tx.send(Ok(()));
            }
        }
        st.waiting.retain(|_, m| !m.is_empty());
        st.progress = progress;
    }

    /// Follows `raft`'s metrics until the node stops. Spawn it once per node.
    pub(crate) async fn follow(self, raft: ConsensusRaft, me: NodeId) {
        let mut watch = raft.metrics();
        loop {
            let progress = Progress::from_metrics(&watch.borrow_watched(), me);
            self.update(progress);
            if watch.changed().await.is_err() {
                self.update(Progress {
                    stopped: true,
                    ..Progress::default()
                });
                return;
            }
        }
    }
}

fn lost_leadership(p: &Progress) -> AckFailure {
    if p.stopped {
        "the node stopped".into()
    } else {
        "this node lost leadership before the acknowledgements arrived".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(mode: ReplicationMode, k: u32) -> AckPolicy {
        AckPolicy {
            mode,
            min_sync_replicas: k,
        }
    }

    fn progress(term: u64, matched: &[Lsn]) -> Progress {
        let mut matched = matched.to_vec();
        matched.sort_unstable_by(|a, b| b.cmp(a));
        Progress {
            leading_term: Some(term),
            matched,
            stopped: false,
        }
    }

    #[test]
    fn watermarks_follow_the_policies() {
        let p = progress(1, &[10, 7, 3]);
        let mark = |mode, k| {
            p.watermark(PolicyKey {
                mode,
                min_sync_replicas: k,
            })
        };
        assert_eq!(mark(ReplicationMode::SemiSync, 1), 10);
        assert_eq!(mark(ReplicationMode::SemiSync, 2), 7);
        assert_eq!(mark(ReplicationMode::SemiSync, 3), 3);
        assert_eq!(mark(ReplicationMode::SemiSync, 4), 0);
        assert_eq!(mark(ReplicationMode::Sync, 1), 3);
        assert_eq!(mark(ReplicationMode::Sync, 3), 3);
        assert_eq!(mark(ReplicationMode::Sync, 4), 0);
        let alone = progress(1, &[]);
        assert_eq!(
            alone.watermark(PolicyKey {
                mode: ReplicationMode::Sync,
                min_sync_replicas: 1
            }),
            0
        );
    }

    #[test]
    fn waiters_are_released_in_order_and_only_when_covered() {
        let w = AckWaiters::default();
        w.update(progress(2, &[0, 0]));
        let semi = policy(ReplicationMode::SemiSync, 1);
        let sync = policy(ReplicationMode::Sync, 1);
        let mut a = w.register(5, 2, semi);
        let mut b = w.register(9, 2, semi);
        let mut c = w.register(5, 2, sync);
        w.update(progress(2, &[6, 1]));
        assert_eq!(a.rx.try_recv().unwrap(), Ok(()));
        assert!(b.rx.try_recv().is_err(), "9 is not covered yet");
        assert!(c.rx.try_recv().is_err(), "SYNC needs both followers");
        w.update(progress(2, &[9, 5]));
        assert_eq!(b.rx.try_recv().unwrap(), Ok(()));
        assert_eq!(c.rx.try_recv().unwrap(), Ok(()));
        // Already covered: completes at registration.
        let mut d = w.register(4, 2, semi);
        assert_eq!(d.rx.try_recv().unwrap(), Ok(()));
    }

    #[test]
    fn losing_the_term_fails_the_waiters() {
        let w = AckWaiters::default();
        w.update(progress(3, &[0, 0]));
        let mut a = w.register(5, 3, policy(ReplicationMode::SemiSync, 1));
        let mut stale = w.register(5, 2, policy(ReplicationMode::SemiSync, 1));
        assert!(stale.rx.try_recv().unwrap().is_err());
        w.update(Progress {
            leading_term: None,
            ..progress(3, &[9, 9])
        });
        assert!(a.rx.try_recv().unwrap().is_err());
    }

    #[test]
    fn a_dropped_registration_leaves_nothing_behind() {
        let w = AckWaiters::default();
        w.update(progress(1, &[0]));
        drop(w.register(5, 1, policy(ReplicationMode::SemiSync, 1)));
        assert!(w.state.lock().waiting.values().all(|m| m.is_empty()));
    }
}
