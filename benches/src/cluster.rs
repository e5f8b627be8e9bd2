//! An in-process cluster for the `cluster-lag` and `cluster-max` scenarios: `n`
//! [`NetworkedNode`]s in this process, each on its own 127.0.0.1 port, talking Raft over the
//! real mutual-TLS 1.3 transport (throwaway certificates from `dev-certs`, signed votes). All
//! nodes share one tokio runtime (this process), but every byte between them goes through TLS
//! and the loopback TCP stack, and every node has its own WAL with fsync on commit.
//!
//! Each node's state machine is an [`ApplyTimes`]: it keeps no data, only the instant at which
//! each LSN was applied, so replication lag can be measured per entry.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use replication_core::config::{PeerConfig, ReplicationMode};
use replication_core::consensus::{
    AppliedEntry, ApplyError, ApplyHandler, NetworkedNode, ReplicationNode, Role,
};
use replication_core::security::{NodeKey, NodePublicKey};
use replication_core::transport::dev_certs::DevCertificateAuthority;
use replication_core::transport::Listener;
use replication_core::{Lsn, NodeId, ReplicationConfig};
use std::sync::Mutex;

use crate::BenchError;

/// A state machine that records when each LSN was applied (nanoseconds since `epoch`).
pub struct ApplyTimes {
    epoch: Instant,
    applied: Mutex<Vec<(Lsn, u64)>>,
}

impl ApplyTimes {
    pub fn new(epoch: Instant) -> Self {
        ApplyTimes {
            epoch,
            applied: Mutex::new(Vec::with_capacity(1 << 20)),
        }
    }

    /// Takes the recorded (LSN, ns since epoch) pairs, leaving none.
    pub fn take(&self) -> Vec<(Lsn, u64)> {
        std::mem::take(&mut *self.applied.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl ApplyHandler for ApplyTimes {
    fn apply(&self, entry: &AppliedEntry<'_>) -> Result<(), ApplyError> {
        let t = self.epoch.elapsed().as_nanos() as u64;
        self.applied
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((entry.lsn, t));
        Ok(())
    }

    fn snapshot(&self) -> Result<Vec<u8>, ApplyError> {
        Ok(Vec::new())
    }

    fn restore(&self, _data: &[u8]) -> Result<(), ApplyError> {
        Ok(())
    }

    /// This host keeps no state to snapshot (`snapshot` returns nothing), so it says so: with
    /// the default `true`, openraft would build and persist an empty snapshot every 5,000
    /// entries on every node, file and directory fsyncs that compete with the log's.
    fn supports_snapshots(&self) -> bool {
        false
    }
}

/// Consensus timings and ack mode of the benchmark cluster.
#[derive(Debug, Clone, Copy)]
pub struct ClusterSettings {
    pub nodes: u64,
    pub heartbeat_ms: u64,
    pub election_min_ms: u64,
    pub election_max_ms: u64,
    pub mode: ReplicationMode,
    pub min_sync_replicas: u32,
    /// `enable_wal_compression` of every node (the config default is on).
    pub wal_compression: bool,
    /// `compression_level` of every node.
    pub compression_level: i32,
    /// `wal_zero_fill_ahead` of every node (the config default is on).
    pub wal_zero_fill: bool,
}

impl ClusterSettings {
    /// The defaults with the command line's cluster options applied.
    pub fn from_options(opts: &crate::scenarios::Options) -> Self {
        let d = ClusterSettings::default();
        ClusterSettings {
            compression_level: opts
                .cluster_compression_level
                .unwrap_or(d.compression_level),
            wal_compression: opts.cluster_wal_compression == crate::scenarios::Switch::On,
            wal_zero_fill: opts.cluster_wal_zero_fill == crate::scenarios::Switch::On,
            ..d
        }
    }
}

impl Default for ClusterSettings {
    /// 3 nodes, SEMI_SYNC with one replica, the config's default timings.
    fn default() -> Self {
        let d = ReplicationConfig::default();
        ClusterSettings {
            nodes: 3,
            heartbeat_ms: d.heartbeat_interval_ms,
            election_min_ms: d.election_timeout_min_ms,
            election_max_ms: d.election_timeout_max_ms,
            mode: ReplicationMode::SemiSync,
            min_sync_replicas: 1,
            wal_compression: d.enable_wal_compression,
            wal_zero_fill: d.wal_zero_fill_ahead,
            compression_level: d.compression_level,
        }
    }
}

pub struct InProcessCluster {
    pub nodes: BTreeMap<NodeId, NetworkedNode>,
    pub apply: BTreeMap<NodeId, Arc<ApplyTimes>>,
    pub leader: NodeId,
    _dir: tempfile::TempDir,
}

fn node_key(id: NodeId) -> NodeKey {
    NodeKey::from_seed([id as u8; 32])
}

fn invalid(what: &str) -> impl FnOnce(String) -> BenchError + '_ {
    move |e| BenchError::Invalid(format!("{what}: {e}"))
}

impl InProcessCluster {
    /// Starts the cluster with WALs under a new directory in `base`, forms it from node 1 and
    /// waits for a leader holding a quorum lease. `epoch` is the time base of [`ApplyTimes`].
    pub async fn start(
        base: &Path,
        settings: ClusterSettings,
        epoch: Instant,
    ) -> Result<InProcessCluster, BenchError> {
        let dir = tempfile::Builder::new()
            .prefix("repl-bench-cluster-")
            .tempdir_in(base)
            .map_err(|e| BenchError::io(base, e))?;
        let ca = DevCertificateAuthority::generate("repl-bench CA (throwaway)")
            .map_err(|e| invalid("dev CA")(e.to_string()))?;
        let ids: Vec<NodeId> = (1..=settings.nodes).collect();
        let mut prepared = BTreeMap::new();
        let mut addrs = BTreeMap::new();
        let certs = dir.path().join("certs");
        std::fs::create_dir_all(&certs).map_err(|e| BenchError::io(&certs, e))?;
        for &id in &ids {
            // Written to files and loaded through the config, as a deployed node does.
            let tls = ca
                .issue_node_certificate(id, &["localhost", "127.0.0.1"])
                .and_then(|c| c.write_to(&certs, &ca))
                .map_err(|e| invalid("node certificate")(e.to_string()))?;
            let probe = ReplicationConfig {
                node_id: id,
                cert_path: Some(tls.cert_path.clone()),
                key_path: Some(tls.key_path.clone()),
                ca_path: Some(tls.ca_path.clone()),
                ..ReplicationConfig::default()
            };
            let security = NetworkedNode::security_from_config(&probe)
                .map_err(|e| invalid("TLS material")(e.to_string()))?;
            let listener =
                Listener::bind("127.0.0.1:0".parse().expect("address"), security.clone())
                    .await
                    .map_err(|e| invalid("bind")(e.to_string()))?;
            addrs.insert(id, listener.local_addr());
            prepared.insert(id, (listener, security, tls));
        }
        let mut nodes = BTreeMap::new();
        let mut apply = BTreeMap::new();
        for (id, (listener, security, tls)) in prepared {
            let config = ReplicationConfig {
                node_id: id,
                listen_address: addrs[&id].to_string(),
                mode: settings.mode,
                min_sync_replicas: settings.min_sync_replicas,
                heartbeat_interval_ms: settings.heartbeat_ms,
                election_timeout_min_ms: settings.election_min_ms,
                election_timeout_max_ms: settings.election_max_ms,
                lag_alert_threshold_ms: ReplicationConfig::default()
                    .lag_alert_threshold_ms
                    .max(settings.heartbeat_ms),
                wal_directory: dir.path().join(format!("node-{id}")),
                enable_wal_compression: settings.wal_compression,
                wal_zero_fill_ahead: settings.wal_zero_fill,
                compression_level: settings.compression_level,
                cert_path: Some(tls.cert_path),
                key_path: Some(tls.key_path),
                ca_path: Some(tls.ca_path),
                peers: ids
                    .iter()
                    .filter(|&&p| p != id)
                    .map(|&p| PeerConfig {
                        node_id: p,
                        address: addrs[&p].to_string(),
                        public_key: None,
                    })
                    .collect(),
                ..ReplicationConfig::default()
            };
            let peer_keys: Vec<(NodeId, NodePublicKey)> = ids
                .iter()
                .filter(|&&p| p != id)
                .map(|&p| (p, node_key(p).public_key()))
                .collect();
            let times = Arc::new(ApplyTimes::new(epoch));
            let node = NetworkedNode::start_on(
                listener,
                &config,
                times.clone(),
                security,
                node_key(id),
                peer_keys,
            )
            .await
            .map_err(|e| invalid("start node")(e.to_string()))?;
            nodes.insert(id, node);
            apply.insert(id, times);
        }
        let members = addrs.iter().map(|(id, a)| (*id, a.to_string())).collect();
        nodes[&1]
            .node()
            .initialize(members)
            .await
            .map_err(|e| invalid("initialize")(e.to_string()))?;
        let mut c = InProcessCluster {
            nodes,
            apply,
            leader: 0,
            _dir: dir,
        };
        c.leader = c.wait_leader(Duration::from_secs(30)).await?;
        Ok(c)
    }

    /// Waits until every node names the same leader and it holds a quorum lease.
    async fn wait_leader(&self, timeout: Duration) -> Result<NodeId, BenchError> {
        let start = Instant::now();
        loop {
            let views: Vec<Option<NodeId>> =
                self.nodes.values().map(|n| n.node().leader()).collect();
            if let Some(Some(l)) = views.first().copied() {
                if views.iter().all(|v| *v == Some(l)) && self.node(l).role() == Role::Leader {
                    self.node(l)
                        .raft()
                        .wait(Some(timeout))
                        .leader_with_quorum_acked(None, "leader lease")
                        .await
                        .map_err(|e| invalid("leader lease")(e.to_string()))?;
                    return Ok(l);
                }
            }
            if start.elapsed() > timeout {
                return Err(BenchError::Invalid(format!(
                    "no agreed leader within {timeout:?}: {views:?}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    pub fn node(&self, id: NodeId) -> &Arc<ReplicationNode> {
        self.nodes[&id].node()
    }

    pub fn leader_node(&self) -> &Arc<ReplicationNode> {
        self.node(self.leader)
    }

    pub fn followers(&self) -> Vec<NodeId> {
        self.nodes
            .keys()
            .copied()
            .filter(|&id| id != self.leader)
            .collect()
    }

    /// Waits until every node has applied `lsn`.
    pub async fn wait_applied(&self, lsn: Lsn, timeout: Duration) -> Result<(), BenchError> {
        for n in self.nodes.values() {
            n.node()
                .wait_for_lsn(lsn, timeout)
                .await
                .map_err(|e| invalid("wait for apply")(e.to_string()))?;
        }
        Ok(())
    }

    pub async fn shutdown(self) -> Result<(), BenchError> {
        for (_, n) in self.nodes {
            n.shutdown()
                .await
                .map_err(|e| invalid("shutdown")(e.to_string()))?;
        }
        Ok(())
    }
}

/// A tokio runtime for the cluster and its clients (one worker per CPU).
pub fn runtime() -> Result<tokio::runtime::Runtime, BenchError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| BenchError::io(Path::new("tokio runtime"), e))
}

/// `n` distinct JSON-like payloads of `bytes` bytes each, from the fixed seed.
///
/// As `Bytes`, so a write shares its payload instead of copying it: the harness should spend
/// as little CPU as possible on the cores the cluster needs (a host that keeps its documents
/// in `Bytes` can do the same).
pub fn payloads(n: usize, bytes: usize) -> Arc<Vec<bytes::Bytes>> {
    let mut g = crate::payload::PayloadGen::new(crate::workload::SEED);
    Arc::new((0..n).map(|_| g.next_payload(bytes).into()).collect())
}

/// Write number `i` of a run: an insert of document `d<i>` with one of `payloads`.
pub fn write_no(i: u64, payloads: &[bytes::Bytes]) -> replication_core::consensus::ClientWrite {
    replication_core::consensus::ClientWrite::new(
        replication_core::wal::Operation::Insert,
        "bench",
        format!("d{i}"),
        payloads[i as usize % payloads.len()].clone(),
    )
}

/// A latency histogram in microseconds, 1 us to 10 min.
pub fn histogram() -> hdrhistogram::Histogram<u64> {
    hdrhistogram::Histogram::new_with_bounds(1, 600_000_000, 3).expect("histogram bounds")
}

/// p50, p99 and max of a microsecond histogram, in milliseconds.
pub fn quantiles_ms(h: &hdrhistogram::Histogram<u64>) -> (f64, f64, f64) {
    let ms = |us: u64| us as f64 / 1e3;
    (
        ms(h.value_at_quantile(0.50)),
        ms(h.value_at_quantile(0.99)),
        ms(h.max()),
    )
}
