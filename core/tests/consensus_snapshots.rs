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

/// openraft purges its log behind each snapshot; the WAL keeps the records as
/// `wal_retention_segments` says: 0 keeps every segment, N keeps N segments behind the purge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_purges_after_snapshots_honour_wal_retention_segments() {
    for retention in [0u64, 2] {
        let dir = tempfile::tempdir().unwrap();
        let net = LocalNetwork::new();
        let mut cfg = config(dir.path());
        cfg.wal_segment_size_bytes = 4096;
        cfg.wal_retention_segments = retention;
        let node = ReplicationNode::start(&cfg, Arc::new(MemoryStore::new()), net.factory(1))
            .await
            .unwrap();
        net.register(1, node.raft().clone());
        let node = Arc::new(node);
        write_all(&node).await;
        let purged = node
            .raft()
            .wait(Some(WAIT))
            .metrics(|m| m.purged.is_some(), "the log is purged after a snapshot")
            .await
            .unwrap()
            .purged
            .unwrap()
            .index;
        // The purge's file work runs after the metric moves; give it a moment.
        settle().await;
        let first = node.wal().first_lsn();
        let segments = node.wal().segment_count().unwrap();
        if retention == 0 {
            assert_eq!(first, 1, "retention 0 deleted records below {purged}");
        } else {
            // A 4 KiB segment holds about 80 of these records: two whole segments kept behind
            // the purge point put the first LSN well over 100 below it (without retention it
            // would be inside the segment holding the purge point).
            assert!(
                first > 1 && first + 100 <= purged,
                "retention {retention}: first LSN {first}, purged up to {purged}"
            );
        }
        assert!(segments > 2, "{segments} segments");
        node.shutdown().await.unwrap();
        net.unregister(1);
    }
}
