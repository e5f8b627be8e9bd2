//! In-process clusters over `LocalNetwork`: election, replication, failover without losing
//! acknowledged writes, one leader per term, restart and catch-up, run-time ack modes,
//! leadership transfer and membership changes.
//!
//! Fast timings (heartbeat 50 ms, election 150-300 ms). Randomised choices use a seed printed
//! at the start of each test; replay with `REPL_TEST_SEED=<seed> cargo test -p replication-core
//! --test consensus_cluster <name>`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use replication_core::config::{PeerConfig, ReplicationMode};
use replication_core::consensus::{
    ClientWrite, ConsensusError, ElectionStart, LocalNetwork, MemoryStore, ReplicationNode, Role,
    SYNC_NEEDS_REPLICAS,
};
use replication_core::wal::Operation;
use replication_core::{Lsn, NodeId, ReplicationConfig};

const WAIT: Duration = Duration::from_secs(10);

fn seed(test: &str) -> u64 {
    let seed = std::env::var("REPL_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    println!("{test}: seed {seed} (replay: REPL_TEST_SEED={seed} cargo test -p replication-core --test consensus_cluster {test})");
    seed
}

fn addr(id: NodeId) -> String {
    format!("127.0.0.1:{}", 17000 + id)
}

struct Cluster {
    net: LocalNetwork,
    root: tempfile::TempDir,
    all_ids: Vec<NodeId>,
    mode: ReplicationMode,
    nodes: Arc<Mutex<BTreeMap<NodeId, Arc<ReplicationNode>>>>,
    stores: BTreeMap<NodeId, Arc<MemoryStore>>,
    /// (heartbeat, election min, election max) in ms.
    timings: (u64, u64, u64),
}

impl Cluster {
    fn config(&self, id: NodeId) -> ReplicationConfig {
        ReplicationConfig {
            node_id: id,
            listen_address: addr(id),
            mode: self.mode,
            min_sync_replicas: 1,
            heartbeat_interval_ms: self.timings.0,
            election_timeout_min_ms: self.timings.1,
            election_timeout_max_ms: self.timings.2,
            replication_timeout_ms: 2000,
            wal_directory: self.root.path().join(format!("n{id}")),
            allow_plaintext_dev: true,
            peers: self
                .all_ids
                .iter()
                .filter(|p| **p != id)
                .map(|p| PeerConfig {
                    node_id: *p,
                    address: addr(*p),
                    public_key: None,
                })
                .collect(),
            ..ReplicationConfig::default()
        }
    }

    /// Starts nodes 1..=n (all of `all_ids` known as peers) and initializes `1..=n` as voters.
    async fn new(n: u64, all: u64, mode: ReplicationMode) -> Cluster {
        Cluster::with_timings(n, all, mode, (50, 150, 300)).await
    }

    async fn with_timings(
        n: u64,
        all: u64,
        mode: ReplicationMode,
        timings: (u64, u64, u64),
    ) -> Cluster {
        let mut c = Cluster {
            timings,
            net: LocalNetwork::new(),
            root: tempfile::tempdir().unwrap(),
            all_ids: (1..=all).collect(),
            mode,
            nodes: Default::default(),
            stores: BTreeMap::new(),
        };
        for id in 1..=n {
            c.start(id, Arc::new(MemoryStore::new())).await;
        }
        let members = (1..=n).map(|id| (id, addr(id))).collect();
        c.node(1).initialize(members).await.unwrap();
        c
    }

    async fn start(&mut self, id: NodeId, store: Arc<MemoryStore>) {
        let node = ReplicationNode::start(&self.config(id), store.clone(), self.net.factory(id))
            .await
            .unwrap();
        self.net.register(id, node.raft().clone());
        self.nodes.lock().insert(id, Arc::new(node));
        self.stores.insert(id, store);
    }

    async fn kill(&mut self, id: NodeId) {
        self.net.unregister(id);
        let node = self.nodes.lock().remove(&id).unwrap();
        node.shutdown().await.unwrap();
    }

    fn node(&self, id: NodeId) -> Arc<ReplicationNode> {
        self.nodes.lock()[&id].clone()
    }

    fn live(&self) -> Vec<NodeId> {
        self.nodes.lock().keys().copied().collect()
    }

    /// Waits until every live node names the same leader (not `not`) and that leader holds a
    /// quorum lease; returns it and the time taken.
    async fn wait_leader(&self, not: Option<NodeId>) -> (NodeId, Duration) {
        let start = Instant::now();
        loop {
            let views: BTreeSet<Option<NodeId>> = self
                .live()
                .iter()
                .map(|id| self.node(*id).leader())
                .collect();
            if let [Some(l)] = views.iter().copied().collect::<Vec<_>>()[..] {
                if Some(l) != not && self.live().contains(&l) && self.node(l).role() == Role::Leader
                {
                    self.node(l)
                        .raft()
                        .wait(Some(WAIT))
                        .leader_with_quorum_acked(None, "leader lease")
                        .await
                        .unwrap();
                    return (l, start.elapsed());
                }
            }
            assert!(
                start.elapsed() < WAIT,
                "no agreed leader within {WAIT:?}: {views:?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn wait_applied(&self, lsn: Lsn) {
        for id in self.live() {
            self.node(id).wait_for_lsn(lsn, WAIT).await.unwrap();
        }
    }

    fn assert_identical(&self) {
        let hashes: BTreeMap<NodeId, u64> = self
            .live()
            .iter()
            .map(|id| (*id, self.stores[id].content_hash()))
            .collect();
        let distinct: BTreeSet<u64> = hashes.values().copied().collect();
        assert_eq!(distinct.len(), 1, "replicas differ: {hashes:?}");
    }
}

fn put(doc: &str, payload: &[u8]) -> ClientWrite {
    ClientWrite::new(Operation::Insert, "docs", doc, payload.to_vec())
}

/// Samples every live node's metrics until stopped; fails if two nodes lead the same term.
fn leader_sampler(
    nodes: Arc<Mutex<BTreeMap<NodeId, Arc<ReplicationNode>>>>,
) -> (
    Arc<std::sync::atomic::AtomicBool>,
    tokio::task::JoinHandle<usize>,
) {
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s = stop.clone();
    let h = tokio::spawn(async move {
        let mut leaders: BTreeMap<u64, BTreeSet<NodeId>> = BTreeMap::new();
        let mut samples = 0;
        while !s.load(std::sync::atomic::Ordering::Relaxed) {
            let snapshot: Vec<_> = nodes.lock().values().cloned().collect();
            for n in snapshot {
                let st = n.status();
                if st.role == Role::Leader {
                    let set = leaders.entry(st.term).or_default();
                    set.insert(n.id());
                    assert!(set.len() <= 1, "two leaders in term {}: {set:?}", st.term);
                }
            }
            samples += 1;
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        samples
    });
    (stop, h)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_elect_and_replicate() {
    let c = Cluster::new(3, 3, ReplicationMode::SemiSync).await;
    let (leader, took) = c.wait_leader(None).await;
    println!("leader {leader} elected in {took:?}");
    let mut last = 0;
    for i in 0..50 {
        last = c
            .node(leader)
            .append(put(&format!("d{i}"), format!("v{i}").as_bytes()), None)
            .await
            .unwrap();
    }
    c.wait_applied(last).await;
    c.assert_identical();
    assert_eq!(c.stores[&leader].len(), 50);
    let st = c.node(leader).status();
    assert_eq!(st.followers.len(), 2);
    assert!(st
        .followers
        .iter()
        .all(|f| f.matched_lsn.is_some() && f.voter));
    assert_eq!(st.last_lsn, Some(last));
    // The Raft log is the WAL: the entry at the last LSN is our last write.
    let rec = c
        .node(leader)
        .wal()
        .read_range(last, last + 1)
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(
        (rec.doc_id.as_str(), &rec.payload[..]),
        ("d49", &b"v49"[..])
    );
    // Reserved operation codes are refused.
    let bad = ClientWrite::new(Operation::Other(250), "docs", "x", b"".to_vec());
    assert!(matches!(
        c.node(leader).append(bad, None).await,
        Err(ConsensusError::Invalid(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_nodes_replicate_sync() {
    let c = Cluster::new(5, 5, ReplicationMode::Sync).await;
    let (leader, _) = c.wait_leader(None).await;
    let mut last = 0;
    for i in 0..30 {
        last = c
            .node(leader)
            .append(put(&format!("d{i}"), b"x"), None)
            .await
            .unwrap();
        // SYNC: every voter already holds it durably when append returns.
        let st = c.node(leader).status();
        assert!(
            st.followers.iter().all(|f| f.matched_lsn >= Some(last)),
            "{st:?}"
        );
    }
    c.wait_applied(last).await;
    c.assert_identical();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leader_kills_lose_no_acked_write_and_terms_have_one_leader() {
    let mut rng = StdRng::seed_from_u64(seed(
        "leader_kills_lose_no_acked_write_and_terms_have_one_leader",
    ));
    let mut c = Cluster::new(5, 5, ReplicationMode::SemiSync).await;
    let (stop, sampler) = leader_sampler(c.nodes.clone());
    let mut acked: BTreeMap<Lsn, (String, Vec<u8>)> = BTreeMap::new();
    let (mut leader, _) = c.wait_leader(None).await;
    for round in 0..3 {
        for i in 0..20 {
            let mode = if rng.random_bool(0.5) {
                ReplicationMode::Sync
            } else {
                ReplicationMode::SemiSync
            };
            let doc = format!("r{round}-{i}");
            let payload: Vec<u8> = (0..rng.random_range(1..64)).map(|_| rng.random()).collect();
            let lsn = c
                .node(leader)
                .append(put(&doc, &payload), Some(mode))
                .await
                .unwrap();
            acked.insert(lsn, (doc, payload));
        }
        let old = leader;
        c.kill(old).await;
        let (new, took) = c.wait_leader(Some(old)).await;
        println!("round {round}: killed {old}, new leader {new} after {took:?}");
        assert!(took < Duration::from_secs(5), "failover took {took:?}");
        leader = new;
        // Every acknowledged write is in the new leader's log with the same content.
        let wal = c.node(leader).wal().clone();
        for (lsn, (doc, payload)) in &acked {
            let rec = wal
                .read_range(*lsn, lsn + 1)
                .unwrap()
                .next()
                .unwrap()
                .unwrap();
            assert_eq!(
                (&rec.doc_id, &rec.payload[..]),
                (doc, &payload[..]),
                "LSN {lsn}"
            );
            // The proposing leader is recorded as the write's origin, on every replica.
            assert!(
                (1..=5).contains(&rec.origin),
                "LSN {lsn}: origin {}",
                rec.origin
            );
        }
        // Bring the dead node back (same WAL directory, empty in-memory store).
        c.start(old, Arc::new(MemoryStore::new())).await;
    }
    let last = c
        .node(leader)
        .append(put("final", b"f"), Some(ReplicationMode::Sync))
        .await
        .unwrap();
    c.wait_applied(last).await;
    c.assert_identical();
    for (lsn, (doc, payload)) in &acked {
        assert_eq!(
            c.stores[&leader].get("docs", doc).as_deref(),
            Some(&payload[..]),
            "LSN {lsn}"
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let samples = sampler.await.unwrap();
    assert!(samples > 10, "sampler ran only {samples} times");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restarted_follower_catches_up() {
    let mut c = Cluster::new(3, 3, ReplicationMode::SemiSync).await;
    let (leader, _) = c.wait_leader(None).await;
    let mut first = 0;
    for i in 0..10 {
        first = c
            .node(leader)
            .append(put(&format!("a{i}"), b"1"), None)
            .await
            .unwrap();
    }
    c.wait_applied(first).await;
    let follower = *c.live().iter().find(|id| **id != leader).unwrap();
    let kept = c.stores[&follower].clone();
    c.kill(follower).await;
    let mut last = 0;
    for i in 0..20 {
        last = c
            .node(leader)
            .append(put(&format!("b{i}"), b"2"), None)
            .await
            .unwrap();
    }
    // Restart on the same WAL directory, keeping the store (a durable host): idempotent
    // re-application must not double-apply.
    let before = kept.applied_count();
    c.start(follower, kept.clone()).await;
    c.node(follower).wait_for_lsn(last, WAIT).await.unwrap();
    assert_eq!(before, 10);
    assert_eq!(kept.applied_count(), 30);
    c.wait_applied(last).await;
    c.assert_identical();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ack_modes_change_at_run_time() {
    let c = Cluster::new(3, 3, ReplicationMode::SemiSync).await;
    let (leader, _) = c.wait_leader(None).await;
    let n = c.node(leader);
    // SYNC with min_sync_replicas = 0 is refused, at config load and at run time.
    let mut cfg = c.config(9);
    cfg.mode = ReplicationMode::Sync;
    cfg.min_sync_replicas = 0;
    assert!(cfg
        .validate()
        .unwrap_err()
        .to_string()
        .contains(SYNC_NEEDS_REPLICAS));
    n.set_mode(ReplicationMode::Sync).unwrap();
    let err = n.set_min_sync_replicas(0).unwrap_err();
    assert!(err.to_string().contains(SYNC_NEEDS_REPLICAS), "{err}");
    n.set_mode(ReplicationMode::SemiSync).unwrap();
    n.set_min_sync_replicas(0).unwrap();
    assert!(n
        .set_mode(ReplicationMode::Sync)
        .unwrap_err()
        .to_string()
        .contains(SYNC_NEEDS_REPLICAS));
    n.set_min_sync_replicas(3).unwrap();
    // 3 > 2 followers: refused before anything is appended.
    let err = n.append(put("x", b"1"), None).await.unwrap_err();
    assert!(matches!(err, ConsensusError::NotDurable { .. }), "{err}");
    n.set_min_sync_replicas(1).unwrap();

    // Cut the leader off. While its lease lasts, ASYNC succeeds (local durable append) and
    // SEMI_SYNC times out with an unknown outcome (appended, acks missing).
    c.net.isolate(leader);
    n.set_mode(ReplicationMode::Async).unwrap();
    let lsn = n.append(put("async", b"1"), None).await.unwrap();
    assert!(n.wal().durable_lsn() >= lsn);
    n.set_mode(ReplicationMode::SemiSync).unwrap();
    let t = Instant::now();
    let err = n.append(put("semi", b"1"), None).await.unwrap_err();
    assert!(
        matches!(err, ConsensusError::Unknown { lsn: Some(_), .. }),
        "{err}"
    );
    assert!(
        t.elapsed() >= Duration::from_millis(1900),
        "{:?}",
        t.elapsed()
    );
    c.net.heal(leader);
    let (leader, _) = c.wait_leader(None).await;
    let lsn = c
        .node(leader)
        .append(put("after", b"1"), None)
        .await
        .unwrap();
    c.wait_applied(lsn).await;
    c.assert_identical();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn start_election_moves_leadership() {
    let c = Cluster::new(3, 3, ReplicationMode::SemiSync).await;
    let (leader, _) = c.wait_leader(None).await;
    let lsn = c.node(leader).append(put("a", b"1"), None).await.unwrap();
    c.wait_applied(lsn).await;
    let follower = *c.live().iter().find(|id| **id != leader).unwrap();
    let err = c.node(follower).start_election().await.unwrap_err();
    assert!(
        matches!(err, ConsensusError::NotLeader { leader: Some(l) } if l == leader),
        "{err}"
    );
    let t = Instant::now();
    let ElectionStart::Transferring { to } = c.node(leader).start_election().await.unwrap() else {
        panic!("the leader should transfer");
    };
    let (new, _) = c.wait_leader(Some(leader)).await;
    println!(
        "leadership {leader} -> {new} (asked for {to}) in {:?}",
        t.elapsed()
    );
    assert_eq!(new, to);
    let lsn = c.node(new).append(put("b", b"2"), None).await.unwrap();
    c.wait_applied(lsn).await;
    c.assert_identical();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn learner_is_added_and_promoted() {
    let mut c = Cluster::new(3, 4, ReplicationMode::Sync).await;
    let (leader, _) = c.wait_leader(None).await;
    for i in 0..10 {
        c.node(leader)
            .append(put(&format!("d{i}"), b"1"), None)
            .await
            .unwrap();
    }
    c.start(4, Arc::new(MemoryStore::new())).await;
    c.node(leader).add_learner(4, addr(4), true).await.unwrap();
    let st = c.node(leader).status();
    assert!(
        st.learners.contains(&4) && !st.voters.contains(&4),
        "{st:?}"
    );
    c.node(leader)
        .change_membership([1, 2, 3, 4].into(), false)
        .await
        .unwrap();
    let st = c.node(leader).status();
    assert_eq!(st.voters, [1, 2, 3, 4].into());
    // SYNC now waits for the new voter too.
    let lsn = c
        .node(leader)
        .append(put("after", b"2"), None)
        .await
        .unwrap();
    assert!(c
        .node(leader)
        .status()
        .followers
        .iter()
        .all(|f| f.matched_lsn >= Some(lsn)));
    c.wait_applied(lsn).await;
    c.assert_identical();
    assert_eq!(c.stores[&4].len(), 11);
}

/// One leader per term is a property of the vote itself: a node that granted term T to one
/// candidate refuses every other candidate in term T. (openraft's default `leader_id_adv`
/// would grant it to any candidate with a higher node id, so two nodes could lead term T in
/// turn; the sampler in `leader_kills_...` once caught exactly that.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vote_granted_in_a_term_is_never_granted_to_another_candidate() {
    use openraft::raft::VoteRequest;
    let root = tempfile::tempdir().unwrap();
    let net = LocalNetwork::new();
    let config = ReplicationConfig {
        node_id: 1,
        listen_address: addr(1),
        heartbeat_interval_ms: 50,
        election_timeout_min_ms: 5_000,
        election_timeout_max_ms: 6_000,
        wal_directory: root.path().to_path_buf(),
        allow_plaintext_dev: true,
        ..ReplicationConfig::default()
    };
    let node = ReplicationNode::start(&config, Arc::new(MemoryStore::new()), net.factory(1))
        .await
        .unwrap();
    let ask = |candidate: NodeId| VoteRequest {
        vote: openraft::Vote::new(5, candidate),
        last_log_id: None,
        leadership_transfer: false,
    };
    let first = node.raft().vote(ask(2)).await.unwrap();
    assert!(first.is_granted_to(&openraft::Vote::new(5, 2)), "{first:?}");
    for other in [3, 1, 0] {
        let r = node.raft().vote(ask(other)).await.unwrap();
        assert!(
            !r.is_granted_to(&openraft::Vote::new(5, other)),
            "term 5 granted to {other} after 2: {r:?}"
        );
    }
    // The same candidate asking again is fine; a higher term is a new election.
    assert!(node
        .raft()
        .vote(ask(2))
        .await
        .unwrap()
        .is_granted_to(&openraft::Vote::new(5, 2)));
    let next = VoteRequest {
        vote: openraft::Vote::new(6, 3),
        last_log_id: None,
        leadership_transfer: false,
    };
    assert!(node
        .raft()
        .vote(next)
        .await
        .unwrap()
        .is_granted_to(&openraft::Vote::new(6, 3)));
    node.shutdown().await.unwrap();
}

/// With one vote per term, two followers campaigning at the same moment split the vote. The
/// split-vote breaker makes the preferred candidate (longest log, then highest id) campaign
/// again at once; without it the next attempt waits a whole election timeout (>= 1 s here).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_split_vote_is_broken_without_waiting_another_election_timeout() {
    // The lease (1.1 s) ends well before the first election timer (>= 2.1 s after the last
    // heartbeat), which leaves a window to make both followers campaign together.
    let mut c = Cluster::with_timings(3, 3, ReplicationMode::SemiSync, (100, 1000, 1100)).await;
    let mut splits = 0;
    for round in 0..3 {
        let (leader, _) = c.wait_leader(None).await;
        let lsn = c
            .node(leader)
            .append(put(&format!("d{round}"), b"x"), None)
            .await
            .unwrap();
        c.wait_applied(lsn).await;
        let followers: Vec<NodeId> = c.live().into_iter().filter(|n| *n != leader).collect();
        let term = c.node(leader).term();
        let broken_before: u64 = followers
            .iter()
            .map(|f| c.node(*f).split_votes_broken())
            .sum();
        c.kill(leader).await;
        tokio::time::sleep(Duration::from_millis(1250)).await;
        let (a, b) = (c.node(followers[0]), c.node(followers[1]));
        let started = Instant::now();
        let (ta, tb) = (a.raft().trigger(), b.raft().trigger());
        let (ra, rb) = tokio::join!(ta.elect(false), tb.elect(false));
        ra.unwrap();
        rb.unwrap();
        let (new_leader, _) = c.wait_leader(Some(leader)).await;
        let took = started.elapsed();
        let new_term = c.node(new_leader).term();
        let broken: u64 = followers
            .iter()
            .map(|f| c.node(*f).split_votes_broken())
            .sum::<u64>()
            - broken_before;
        println!("round {round}: term {term} -> {new_term}, leader {new_leader} after {took:?}, splits broken {broken}");
        if new_term == term + 2 {
            // Term + 1 split; exactly one candidate campaigned again.
            assert_eq!(broken, 1, "one candidate breaks the split");
            assert!(
                took < Duration::from_millis(800),
                "split resolved after {took:?}: that is another election timeout"
            );
            splits += 1;
        } else {
            assert_eq!(new_term, term + 1, "no split: one election");
            assert_eq!(broken, 0);
        }
        // Bring the old leader back with its store (a durable host).
        let store = c.stores[&leader].clone();
        c.start(leader, store).await;
    }
    assert!(
        splits > 0,
        "no split vote happened in 3 rounds: the test proved nothing"
    );
}
