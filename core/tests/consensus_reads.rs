//! Reads through `ReplicationNode::read` on in-process clusters over `LocalNetwork`:
//! linearizable reads on the lease path and the ReadIndex path, refusal on a cut-off leader,
//! and bounded-staleness follower reads.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use replication_core::config::{PeerConfig, ReplicationMode};
use replication_core::consensus::{
    ClientWrite, ConsensusError, LocalNetwork, MemoryStore, ReadConsistency, ReplicationNode, Role,
};
use replication_core::wal::Operation;
use replication_core::{NodeId, ReplicationConfig};

const WAIT: Duration = Duration::from_secs(10);

fn addr(id: NodeId) -> String {
    format!("127.0.0.1:{}", 18000 + id)
}

struct Timings {
    heartbeat: u64,
    election: (u64, u64),
    replication_timeout: u64,
}

struct Cluster {
    net: LocalNetwork,
    _root: tempfile::TempDir,
    nodes: BTreeMap<NodeId, Arc<ReplicationNode>>,
}

impl Cluster {
    async fn new(n: u64, t: Timings) -> Cluster {
        let net = LocalNetwork::new();
        let root = tempfile::tempdir().unwrap();
        let mut nodes = BTreeMap::new();
        for id in 1..=n {
            let cfg = ReplicationConfig {
                node_id: id,
                listen_address: addr(id),
                mode: ReplicationMode::SemiSync,
                min_sync_replicas: 1,
                heartbeat_interval_ms: t.heartbeat,
                election_timeout_min_ms: t.election.0,
                election_timeout_max_ms: t.election.1,
                replication_timeout_ms: t.replication_timeout,
                wal_directory: root.path().join(format!("n{id}")),
                allow_plaintext_dev: true,
                peers: (1..=n)
                    .filter(|p| *p != id)
                    .map(|p| PeerConfig {
                        node_id: p,
                        address: addr(p),
                        public_key: None,
                    })
                    .collect(),
                ..ReplicationConfig::default()
            };
            let node = ReplicationNode::start(&cfg, Arc::new(MemoryStore::new()), net.factory(id))
                .await
                .unwrap();
            net.register(id, node.raft().clone());
            nodes.insert(id, Arc::new(node));
        }
        nodes[&1]
            .initialize((1..=n).map(|id| (id, addr(id))).collect())
            .await
            .unwrap();
        Cluster {
            net,
            _root: root,
            nodes,
        }
    }

    /// Waits for a leader, other than `not`, that the nodes in `among` agree on and that holds
    /// a quorum lease.
    async fn wait_leader(&self, among: &[NodeId], not: Option<NodeId>) -> NodeId {
        let start = Instant::now();
        loop {
            let views: Vec<Option<NodeId>> =
                among.iter().map(|id| self.nodes[id].leader()).collect();
            if let Some(Some(l)) = views.first().copied() {
                if views.iter().all(|v| *v == Some(l))
                    && Some(l) != not
                    && self.nodes[&l].role() == Role::Leader
                {
                    self.nodes[&l]
                        .raft()
                        .wait(Some(WAIT))
                        .leader_with_quorum_acked(None, "leader lease")
                        .await
                        .unwrap();
                    return l;
                }
            }
            assert!(start.elapsed() < WAIT, "no agreed leader: {views:?}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn followers(&self, leader: NodeId) -> Vec<NodeId> {
        self.nodes
            .keys()
            .copied()
            .filter(|id| *id != leader)
            .collect()
    }
}

fn put(doc: &str, payload: &[u8]) -> ClientWrite {
    ClientWrite::new(Operation::Insert, "docs", doc, payload.to_vec())
}

fn bytes(v: &[u8]) -> Option<bytes::Bytes> {
    Some(bytes::Bytes::copy_from_slice(v))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn linearizable_reads_use_the_lease_then_read_index_and_refuse_without_quorum() {
    // A long election timeout (lease 1.5 s) leaves a window after the leader's lease lapses in
    // which the followers have not yet campaigned.
    let c = Cluster::new(
        3,
        Timings {
            heartbeat: 50,
            election: (1000, 1500),
            replication_timeout: 500,
        },
    )
    .await;
    let leader = c.wait_leader(&[1, 2, 3], None).await;
    let l = c.nodes[&leader].clone();

    // Lease path: a just-acknowledged write is visible.
    l.append(put("x", b"1"), None).await.unwrap();
    let got = l
        .read("docs", "x", ReadConsistency::Linearizable)
        .await
        .unwrap();
    assert_eq!(got, bytes(b"1"));
    let s = l.status().reads;
    assert_eq!((s.linearizable, s.lease_path, s.read_index_path), (1, 1, 0));
    assert_eq!(
        l.read("docs", "missing", ReadConsistency::Linearizable)
            .await
            .unwrap(),
        None
    );

    // Cut both followers off (so neither can campaign) until the leader's lease lapses: the
    // leader must refuse, after trying ReadIndex.
    let followers = c.followers(leader);
    for f in &followers {
        c.net.isolate(*f);
    }
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_eq!(l.role(), Role::Leader, "check-quorum keeps the role");
    let err = l
        .read("docs", "x", ReadConsistency::Linearizable)
        .await
        .unwrap_err();
    assert!(matches!(err, ConsensusError::QuorumUnavailable(_)), "{err}");
    // Heal: the lease is still lapsed, so the read confirms leadership with a fresh quorum
    // round (ReadIndex) and succeeds.
    for f in &followers {
        c.net.heal(*f);
    }
    let got = l
        .read("docs", "x", ReadConsistency::Linearizable)
        .await
        .unwrap();
    assert_eq!(got, bytes(b"1"));
    let s = l.status().reads;
    assert_eq!(
        (s.linearizable, s.lease_path, s.read_index_path),
        (3, 2, 1),
        "{s:?}"
    );
    assert_eq!(s.failed, 1);

    // Followers refuse linearizable and leader-local reads and name the leader.
    let f = c.nodes[&followers[0]].clone();
    for consistency in [ReadConsistency::Linearizable, ReadConsistency::LeaderLocal] {
        let err = f.read("docs", "x", consistency).await.unwrap_err();
        assert!(
            matches!(err, ConsensusError::NotLeader { leader: Some(x) } if x == leader),
            "{err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cut_off_leader_serves_no_stale_linearizable_read() {
    let c = Cluster::new(
        3,
        Timings {
            heartbeat: 50,
            election: (150, 300),
            replication_timeout: 1000,
        },
    )
    .await;
    let old = c.wait_leader(&[1, 2, 3], None).await;
    let o = c.nodes[&old].clone();
    o.append(put("x", b"old"), None).await.unwrap();
    assert_eq!(
        o.read("docs", "x", ReadConsistency::Linearizable)
            .await
            .unwrap(),
        bytes(b"old")
    );

    // Partition the leader away; the others elect a new leader and overwrite x.
    c.net.isolate(old);
    let rest = c.followers(old);
    let new = c.wait_leader(&rest, Some(old)).await;
    c.nodes[&new].append(put("x", b"new"), None).await.unwrap();
    assert_eq!(
        c.nodes[&new]
            .read("docs", "x", ReadConsistency::Linearizable)
            .await
            .unwrap(),
        bytes(b"new")
    );

    // The old leader still has the leader role (check-quorum does not step down) ...
    assert_eq!(o.role(), Role::Leader);
    // ... and a leader-local read shows why the role is no gate: it returns the old value.
    assert_eq!(
        o.read("docs", "x", ReadConsistency::LeaderLocal)
            .await
            .unwrap(),
        bytes(b"old")
    );
    // A linearizable read must fail rather than return that stale value.
    let err = o
        .read("docs", "x", ReadConsistency::Linearizable)
        .await
        .unwrap_err();
    assert!(matches!(err, ConsensusError::QuorumUnavailable(_)), "{err}");
    c.net.heal(old);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn follower_bounded_reads_respect_the_staleness_bound() {
    let c = Cluster::new(
        3,
        Timings {
            heartbeat: 50,
            election: (150, 300),
            replication_timeout: 1000,
        },
    )
    .await;
    let leader = c.wait_leader(&[1, 2, 3], None).await;
    let lsn = c.nodes[&leader].append(put("x", b"1"), None).await.unwrap();
    let fid = c.followers(leader)[0];
    let f = c.nodes[&fid].clone();
    f.wait_for_lsn(lsn, WAIT).await.unwrap();
    let bound = Duration::from_millis(500);
    let fresh = ReadConsistency::FollowerBounded {
        max_staleness: bound,
    };

    // Fresh follower: served locally.
    assert_eq!(f.read("docs", "x", fresh).await.unwrap(), bytes(b"1"));
    // The leader serves bounded reads too (its reference is its last quorum ack).
    assert_eq!(
        c.nodes[&leader].read("docs", "x", fresh).await.unwrap(),
        bytes(b"1")
    );

    // Cut the follower off for longer than the bound: refused, with the staleness.
    c.net.isolate(fid);
    tokio::time::sleep(Duration::from_millis(700)).await;
    let err = f.read("docs", "x", fresh).await.unwrap_err();
    match &err {
        ConsensusError::Stale {
            staleness: Some(s),
            bound: b,
        } => {
            assert!(*s >= Duration::from_millis(600), "{err}");
            assert_eq!(*b, bound);
        }
        other => panic!("expected Stale, got {other}"),
    }
    assert!(err.to_string().contains("too stale"), "{err}");
    // A looser bound still accepts the same state.
    let loose = ReadConsistency::FollowerBounded {
        max_staleness: Duration::from_secs(30),
    };
    assert_eq!(f.read("docs", "x", loose).await.unwrap(), bytes(b"1"));

    // Healed: fresh again once the leader's next heartbeat arrives.
    c.net.heal(fid);
    let start = Instant::now();
    let got = loop {
        match f.read("docs", "x", fresh).await {
            Ok(v) => break v,
            Err(ConsensusError::Stale { .. }) if start.elapsed() < WAIT => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(got, bytes(b"1"));
    let s = f.status().reads;
    assert!(s.refused_stale >= 1, "{s:?}");
    assert!(s.follower_bounded >= 3, "{s:?}");
}

/// Read-your-acknowledged-writes: a linearizable read right after a SEMI_SYNC or SYNC write
/// returned must see it. The acknowledgement can reach the caller a moment before the leader's
/// core moves its commit index (the read index), so reads also wait for the highest write the
/// leader acknowledged; without that, this loop saw the previous value now and then.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn linearizable_reads_see_every_acknowledged_write() {
    let c = Cluster::new(
        3,
        Timings {
            heartbeat: 50,
            election: (150, 300),
            replication_timeout: 2000,
        },
    )
    .await;
    let leader = c.wait_leader(&[1, 2, 3], None).await;
    let n = c.nodes[&leader].clone();
    for i in 0..300u32 {
        let mode = if i % 2 == 0 {
            ReplicationMode::SemiSync
        } else {
            ReplicationMode::Sync
        };
        let value = i.to_string();
        n.append(put("ryw", value.as_bytes()), Some(mode))
            .await
            .unwrap();
        let got = n
            .read("docs", "ryw", ReadConsistency::Linearizable)
            .await
            .unwrap();
        assert_eq!(got, bytes(value.as_bytes()), "write {i}");
    }
}
