//! openraft snapshots on its own schedule (every 5000 entries). A host that cannot snapshot
//! (`ApplyHandler::supports_snapshots` false, like a C node without snapshot callbacks) must
//! never get one: its log stays whole, and a restart re-applies it instead of failing to
//! restore an empty snapshot. A host that can snapshot gets one (the same run, other handler),
//! so the test would see the schedule if the opt-out were ignored.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use replication_core::config::ReplicationMode;
use replication_core::consensus::{
    AppliedEntry, ApplyError, ApplyHandler, ClientWrite, LocalNetwork, MemoryStore, ReplicationNode,
};
use replication_core::wal::Operation;
use replication_core::ReplicationConfig;

/// More than openraft's default snapshot interval (5000 entries since the last snapshot).
const WRITES: u64 = 5300;
const WAIT: Duration = Duration::from_secs(30);

/// Counts applies; cannot snapshot.
#[derive(Default)]
struct Counter {
    applied: AtomicU64,
}

impl ApplyHandler for Counter {
    fn apply(&self, _entry: &AppliedEntry<'_>) -> Result<(), ApplyError> {
        self.applied.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
    fn supports_snapshots(&self) -> bool {
        false
    }
    fn snapshot(&self) -> Result<Vec<u8>, ApplyError> {
        Ok(Vec::new())
    }
    fn restore(&self, _data: &[u8]) -> Result<(), ApplyError> {
        Err(ApplyError("this host cannot restore snapshots".into()))
    }
}

fn config(dir: &std::path::Path) -> ReplicationConfig {
    ReplicationConfig {
        node_id: 1,
        listen_address: "127.0.0.1:17901".into(),
        mode: ReplicationMode::Async,
        heartbeat_interval_ms: 50,
        election_timeout_min_ms: 150,
        election_timeout_max_ms: 300,
        wal_directory: dir.to_path_buf(),
        allow_plaintext_dev: true,
        ..ReplicationConfig::default()
    }
}

async fn start(
    dir: &std::path::Path,
    net: &LocalNetwork,
    handler: Arc<dyn ApplyHandler>,
) -> Arc<ReplicationNode> {
    let node = ReplicationNode::start(&config(dir), handler, net.factory(1))
        .await
        .unwrap();
    net.register(1, node.raft().clone());
    Arc::new(node)
}

/// Forms a one-node cluster and writes `WRITES` documents; returns the last LSN.
async fn write_all(node: &Arc<ReplicationNode>) -> u64 {
    node.initialize([(1, "127.0.0.1:17901".to_string())].into())
        .await
        .unwrap();
    let deadline = Instant::now() + WAIT;
    while node.leader() != Some(1) {
        assert!(Instant::now() < deadline, "no leader");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut tasks = Vec::new();
    for t in 0..32u64 {
        let node = node.clone();
        tasks.push(tokio::spawn(async move {
            let mut last = 0;
            for i in (t..WRITES).step_by(32) {
                let w =
                    ClientWrite::new(Operation::Insert, "docs", format!("d{i}"), b"{}".to_vec());
                last = last.max(node.append(w, None).await.unwrap());
            }
            last
        }));
    }
    let mut last = 0;
    for t in tasks {
        last = last.max(t.await.unwrap());
    }
    node.wait_for_lsn(last, WAIT).await.unwrap();
    last
}

/// Gives the state machine worker time to act on the snapshot schedule.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(500)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_without_snapshots_keeps_its_log_and_restarts_by_re_applying_it() {
    let dir = tempfile::tempdir().unwrap();
    let net = LocalNetwork::new();
    let counter = Arc::new(Counter::default());
    let node = start(dir.path(), &net, counter.clone()).await;
    let last = write_all(&node).await;
    settle().await;
    assert!(
        !dir.path().join("raft").join("snapshot").exists(),
        "a snapshot was taken although the host cannot restore it"
    );
    assert_eq!(node.wal().first_lsn(), 1, "the log was purged");
    let status = node.status();
    assert_eq!(status.applied_lsn, Some(last));
    node.shutdown().await.unwrap();
    net.unregister(1);

    // Restart with an empty host: every write comes back from the log.
    let fresh = Arc::new(Counter::default());
    let node = start(dir.path(), &net, fresh.clone()).await;
    node.raft()
        .wait(Some(WAIT))
        .applied_index_at_least(Some(last), "re-applied after restart")
        .await
        .unwrap();
    assert_eq!(
        fresh.applied.load(Ordering::Relaxed),
        counter.applied.load(Ordering::Relaxed)
    );
    assert_eq!(fresh.applied.load(Ordering::Relaxed), WRITES);
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_with_snapshots_gets_them_on_schedule() {
    let dir = tempfile::tempdir().unwrap();
    let net = LocalNetwork::new();
    let node = start(dir.path(), &net, Arc::new(MemoryStore::new())).await;
    write_all(&node).await;
    let deadline = Instant::now() + WAIT;
    while !dir.path().join("raft").join("snapshot").exists() {
        assert!(
            Instant::now() < deadline,
            "no snapshot after {WRITES} writes"
        );
        settle().await;
    }
    node.shutdown().await.unwrap();
}
