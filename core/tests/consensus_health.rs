//! Follower health and the lag alert on an in-process cluster over `LocalNetwork`: a cut-off
//! follower's lag in entries, bytes and ms grows, the alert fires within two heartbeat
//! intervals of the follower passing the threshold, and a recovery event follows the heal.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use replication_core::config::{PeerConfig, ReplicationMode};
use replication_core::consensus::{
    ClientWrite, LagAlert, LagAlertKind, LocalNetwork, MemoryStore, ReplicationNode, Role,
};
use replication_core::wal::Operation;
use replication_core::{NodeId, ReplicationConfig};

const WAIT: Duration = Duration::from_secs(10);
const HEARTBEAT_MS: u64 = 100;
const THRESHOLD_ENTRIES: u64 = 20;

fn addr(id: NodeId) -> String {
    format!("127.0.0.1:{}", 19000 + id)
}

fn config(root: &std::path::Path, id: NodeId) -> ReplicationConfig {
    ReplicationConfig {
        node_id: id,
        listen_address: addr(id),
        mode: ReplicationMode::SemiSync,
        min_sync_replicas: 1,
        heartbeat_interval_ms: HEARTBEAT_MS,
        election_timeout_min_ms: 400,
        election_timeout_max_ms: 700,
        replication_timeout_ms: 2000,
        lag_alert_threshold_entries: THRESHOLD_ENTRIES,
        // Time threshold off: this test is about the entry threshold.
        lag_alert_threshold_ms: 0,
        wal_directory: root.join(format!("n{id}")),
        allow_plaintext_dev: true,
        peers: (1..=3)
            .filter(|p| *p != id)
            .map(|p| PeerConfig {
                node_id: p,
                address: addr(p),
                public_key: None,
            })
            .collect(),
        ..ReplicationConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lag_alert_fires_within_two_heartbeats_and_recovers() {
    let root = tempfile::tempdir().unwrap();
    let net = LocalNetwork::new();
    let events: Arc<Mutex<Vec<(Instant, LagAlert)>>> = Arc::default();
    let mut nodes = Vec::new();
    for id in 1..=3 {
        let node = ReplicationNode::start(
            &config(root.path(), id),
            Arc::new(MemoryStore::new()),
            net.factory(id),
        )
        .await
        .unwrap();
        net.register(id, node.raft().clone());
        let ev = events.clone();
        node.on_lag_alert(move |a| ev.lock().push((Instant::now(), a.clone())));
        nodes.push(Arc::new(node));
    }
    nodes[0]
        .initialize((1..=3).map(|id| (id, addr(id))).collect())
        .await
        .unwrap();
    let start = Instant::now();
    let leader = loop {
        if let Some(n) = nodes.iter().find(|n| n.role() == Role::Leader) {
            n.raft()
                .wait(Some(WAIT))
                .leader_with_quorum_acked(None, "leader lease")
                .await
                .unwrap();
            break n.clone();
        }
        assert!(start.elapsed() < WAIT, "no leader");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let lagging = nodes.iter().find(|n| n.id() != leader.id()).unwrap().id();

    // Healthy: every follower caught up, recently contacted, no alert.
    let lsn = leader.append(put(0), None).await.unwrap();
    for n in &nodes {
        n.wait_for_lsn(lsn, WAIT).await.unwrap();
    }
    let st = leader.status();
    assert_eq!(st.followers.len(), 2);
    for f in &st.followers {
        assert!(f.voter, "{f:?}");
        assert!(
            f.last_ack.is_some_and(|a| a < Duration::from_secs(1)),
            "{f:?}"
        );
        assert!(!f.lag_alert, "{f:?}");
    }

    // Cut one follower off and write (SEMI_SYNC: the other follower acknowledges) until its
    // lag passes the threshold.
    net.isolate(lagging);
    let mut i = 1;
    // The crossing happens inside the `append` call that makes the lag pass the threshold;
    // measuring from the start of that call makes the guard strict.
    let crossed = loop {
        let before = Instant::now();
        leader.append(put(i), None).await.unwrap();
        i += 1;
        let f = follower(&leader, lagging);
        if f.lag_entries > THRESHOLD_ENTRIES {
            break before;
        }
        assert!(i < 1000, "lag never passed the threshold: {f:?}");
    };
    let raised = wait_event(&events, lagging, LagAlertKind::Raised).await;
    let delay = raised.0.saturating_duration_since(crossed);
    println!("alert {delay:?} after the crossing: {:?}", raised.1);
    assert!(
        delay <= Duration::from_millis(2 * HEARTBEAT_MS),
        "alert came {delay:?} after the crossing"
    );
    let alert = raised.1;
    assert_eq!(alert.leader, leader.id());
    assert!(alert.follower.lag_entries > THRESHOLD_ENTRIES, "{alert:?}");
    assert_eq!(alert.thresholds.entries, THRESHOLD_ENTRIES);

    // Lag in bytes and ms while cut off; the other follower is healthy.
    tokio::time::sleep(Duration::from_millis(2 * HEARTBEAT_MS)).await;
    let f = follower(&leader, lagging);
    assert!(f.lag_alert, "{f:?}");
    // Each write is one record: 34 fixed bytes + "docs" + "d<i>" + 16 bytes of payload.
    assert!(f.lag_bytes >= f.lag_entries * (34 + 4 + 2 + 16), "{f:?}");
    assert!(f.lag_ms >= 2 * HEARTBEAT_MS, "{f:?}");
    assert!(f
        .last_ack
        .is_some_and(|a| a >= Duration::from_millis(2 * HEARTBEAT_MS)));
    let healthy = leader
        .status()
        .followers
        .into_iter()
        .find(|f| f.id != lagging)
        .unwrap();
    assert_eq!(
        (healthy.lag_entries, healthy.lag_ms, healthy.lag_bytes),
        (0, 0, 0)
    );
    assert!(!healthy.lag_alert);
    assert_eq!(leader.status().lag_alerts.raised, 1);

    // Heal: the follower catches up and the alert recovers.
    net.heal(lagging);
    wait_event(&events, lagging, LagAlertKind::Recovered).await;
    let f = follower(&leader, lagging);
    assert!(!f.lag_alert, "{f:?}");
    assert!(f.lag_entries <= THRESHOLD_ENTRIES, "{f:?}");
    let counts = leader.status().lag_alerts;
    assert_eq!((counts.raised, counts.recovered, counts.ended), (1, 1, 0));
    // Only the cut-off follower ever alerted.
    assert!(events.lock().iter().all(|(_, a)| a.follower.id == lagging));
}

fn put(i: u64) -> ClientWrite {
    ClientWrite::new(
        Operation::Insert,
        "docs",
        format!("d{i}"),
        [7u8; 16].to_vec(),
    )
}

fn follower(leader: &ReplicationNode, id: NodeId) -> replication_core::consensus::FollowerStatus {
    leader
        .status()
        .followers
        .into_iter()
        .find(|f| f.id == id)
        .expect("follower in status")
}

async fn wait_event(
    events: &Mutex<Vec<(Instant, LagAlert)>>,
    id: NodeId,
    kind: LagAlertKind,
) -> (Instant, LagAlert) {
    let start = Instant::now();
    loop {
        if let Some(e) = events
            .lock()
            .iter()
            .find(|(_, a)| a.follower.id == id && a.kind == kind)
        {
            return e.clone();
        }
        assert!(start.elapsed() < WAIT, "no {kind:?} alert for node {id}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
