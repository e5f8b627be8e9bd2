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
}

impl Cluster {
    fn config(&self, id: NodeId) -> ReplicationConfig {
        ReplicationConfig {
            node_id: id,
            listen_address: addr(id),
            mode: self.mode,
            min_sync_replicas: 1,
            heartbeat_interval_ms: 50,
            election_timeout_min_ms: 150,
            election_timeout_max_ms: 300,
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
        let mut c = Cluster {
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
