//! A cluster of `replicad run` child processes on loopback, with throwaway TLS material: what
//! `replicad demo` and the multi-process tests drive.
//!
//! [`LocalCluster::create`] writes, into one directory, a CA and a certificate per node
//! (`dev-certs`), an ed25519 node key per node, and a config per node listing the others with
//! their public keys; [`LocalCluster::start`] spawns one process per node. Every child is killed
//! with SIGKILL when the cluster is dropped or [`ChildRegistry::kill_all`] runs (the Ctrl-C
//! path), and each child asks the kernel for SIGKILL should this process die first, so no
//! node outlives its driver.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use replication_core::config::{PeerConfig, ReplicationMode};
use replication_core::security::NodeKey;
use replication_core::transport::dev_certs::DevCertificateAuthority;
use replication_core::{NodeId, ReplicationConfig};
use serde_json::Value;

use crate::http::{self, Reply};

/// How long a child may take to print its admin address.
const STARTUP: Duration = Duration::from_secs(60);
/// Timeout of one admin API request (writes wait up to the replication timeout, 10 s).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Timeout of a status or hash poll: a dead node must not stall the poller.
const POLL_TIMEOUT: Duration = Duration::from_secs(2);

/// Consensus timings of the cluster's nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timings {
    pub heartbeat_ms: u64,
    pub election_min_ms: u64,
    pub election_max_ms: u64,
}

impl Timings {
    /// The config defaults (heartbeat 1 s, election 3-3.3 s).
    pub fn defaults() -> Timings {
        let d = ReplicationConfig::default();
        Timings {
            heartbeat_ms: d.heartbeat_interval_ms,
            election_min_ms: d.election_timeout_min_ms,
            election_max_ms: d.election_timeout_max_ms,
        }
    }

    /// `--fast`: heartbeat 100 ms, election 300-600 ms.
    pub fn fast() -> Timings {
        Timings {
            heartbeat_ms: 100,
            election_min_ms: 300,
            election_max_ms: 600,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Setup(String),
    #[error("node {node}: {message}")]
    Node { node: NodeId, message: String },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ClusterError {
    let what = what.into();
    move |source| ClusterError::Io { what, source }
}

/// The running children, shared with whoever must be able to kill them (a signal handler).
#[derive(Clone, Default)]
pub struct ChildRegistry {
    children: Arc<Mutex<BTreeMap<NodeId, Child>>>,
}

impl ChildRegistry {
    /// SIGKILLs and reaps every child still registered.
    pub fn kill_all(&self) {
        let mut children = self.children.lock();
        for (_, mut child) in std::mem::take(&mut *children) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn insert(&self, id: NodeId, child: Child) {
        self.children.lock().insert(id, child);
    }

    /// SIGKILLs node `id` and waits for it; `false` if it was not running.
    fn kill(&self, id: NodeId) -> bool {
        let child = self.children.lock().remove(&id);
        match child {
            Some(mut c) => {
                let _ = c.kill();
                let _ = c.wait();
                true
            }
            None => false,
        }
    }

    /// `Some(status)` if node `id` has exited (it is then forgotten).
    fn exited(&self, id: NodeId) -> Option<std::process::ExitStatus> {
        let mut children = self.children.lock();
        let status = children.get_mut(&id)?.try_wait().ok()??;
        children.remove(&id);
        Some(status)
    }
}

struct NodeFiles {
    config: PathBuf,
    log: PathBuf,
    /// Admin API of the running process (a new port on every start).
    admin: Option<SocketAddr>,
}

/// A 3-node (or n-node) cluster of `replicad run` processes.
pub struct LocalCluster {
    exe: PathBuf,
    dir: PathBuf,
    nodes: BTreeMap<NodeId, NodeFiles>,
    children: ChildRegistry,
}

/// A free TCP port on 127.0.0.1 (bound, then released: another process could take it in
/// between, which on a quiet loopback is rare enough for a demo and tests).
fn free_port() -> Result<u16, ClusterError> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(io("find a free port"))?;
    Ok(l.local_addr().map_err(io("find a free port"))?.port())
}

impl LocalCluster {
    /// Writes the CA, node certificates, node keys and configs for nodes `1..=n` into `dir`.
    /// `exe` is the `replicad` binary to run. Writes use SEMI_SYNC with one replica.
    pub fn create(
        exe: &Path,
        dir: &Path,
        n: u64,
        timings: Timings,
    ) -> Result<LocalCluster, ClusterError> {
        let ids: Vec<NodeId> = (1..=n).collect();
        let certs = dir.join("certs");
        std::fs::create_dir_all(&certs).map_err(io(format!("create {}", certs.display())))?;
        let ca = DevCertificateAuthority::generate("replicad demo CA (throwaway)")
            .map_err(|e| ClusterError::Setup(e.to_string()))?;
        let mut ports = BTreeMap::new();
        let mut public = BTreeMap::new();
        let mut tls = BTreeMap::new();
        for &id in &ids {
            ports.insert(id, free_port()?);
            let cert = ca
                .issue_node_certificate(id, &["localhost", "127.0.0.1"])
                .map_err(|e| ClusterError::Setup(e.to_string()))?;
            tls.insert(
                id,
                cert.write_to(&certs, &ca)
                    .map_err(|e| ClusterError::Setup(e.to_string()))?,
            );
            let key = NodeKey::generate();
            let key_path = certs.join(format!("node-{id}.ed25519"));
            key.save(&key_path)
                .map_err(|e| ClusterError::Setup(e.to_string()))?;
            public.insert(id, (key_path, key.public_key().to_hex()));
        }
        let mut nodes = BTreeMap::new();
        for &id in &ids {
            let t = &tls[&id];
            let config = ReplicationConfig {
                node_id: id,
                listen_address: format!("127.0.0.1:{}", ports[&id]),
                mode: ReplicationMode::SemiSync,
                min_sync_replicas: 1,
                heartbeat_interval_ms: timings.heartbeat_ms,
                election_timeout_min_ms: timings.election_min_ms,
                election_timeout_max_ms: timings.election_max_ms,
                lag_alert_threshold_ms: ReplicationConfig::default()
                    .lag_alert_threshold_ms
                    .max(timings.heartbeat_ms),
                wal_directory: dir.join(format!("node-{id}")),
                cert_path: Some(t.cert_path.clone()),
                key_path: Some(t.key_path.clone()),
                ca_path: Some(t.ca_path.clone()),
                node_key_path: Some(public[&id].0.clone()),
                peers: ids
                    .iter()
                    .filter(|&&p| p != id)
                    .map(|&p| PeerConfig {
                        node_id: p,
                        address: format!("127.0.0.1:{}", ports[&p]),
                        public_key: Some(public[&p].1.clone()),
                    })
                    .collect(),
                ..ReplicationConfig::default()
            };
            config
                .validate_for_network()
                .map_err(|e| ClusterError::Setup(e.to_string()))?;
            let text = config
                .to_toml_string()
                .map_err(|e| ClusterError::Setup(e.to_string()))?;
            let path = dir.join(format!("node-{id}.toml"));
            std::fs::write(&path, text).map_err(io(format!("write {}", path.display())))?;
            nodes.insert(
                id,
                NodeFiles {
                    config: path,
                    log: dir.join(format!("node-{id}.log")),
                    admin: None,
                },
            );
        }
        Ok(LocalCluster {
            exe: exe.to_path_buf(),
            dir: dir.to_path_buf(),
            nodes,
            children: ChildRegistry::default(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn ids(&self) -> Vec<NodeId> {
        self.nodes.keys().copied().collect()
    }

    pub fn children(&self) -> ChildRegistry {
        self.children.clone()
    }

    pub fn log_path(&self, id: NodeId) -> Option<&Path> {
        self.nodes.get(&id).map(|n| n.log.as_path())
    }

    /// The admin address of node `id` while it runs.
    pub fn admin(&self, id: NodeId) -> Option<SocketAddr> {
        self.nodes.get(&id)?.admin
    }

    /// Starts every node.
    pub fn start_all(&mut self) -> Result<(), ClusterError> {
        for id in self.ids() {
            self.start(id)?;
        }
        Ok(())
    }

    /// Spawns `replicad run` for node `id` (appending its log to `node-<id>.log`) and waits
    /// for the line announcing its admin address.
    pub fn start(&mut self, id: NodeId) -> Result<SocketAddr, ClusterError> {
        let node = self.nodes.get_mut(&id).ok_or(ClusterError::Node {
            node: id,
            message: "no such node".into(),
        })?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .map_err(io(format!("open {}", node.log.display())))?;
        let mut cmd = Command::new(&self.exe);
        cmd.args(["run", "--config"])
            .arg(&node.config)
            .args(["--admin-addr", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log);
        die_with_parent(&mut cmd);
        let mut child = cmd
            .spawn()
            .map_err(io(format!("spawn {}", self.exe.display())))?;
        let stdout = child.stdout.take();
        self.children.insert(id, child);
        let (tx, rx) = std::sync::mpsc::channel();
        if let Some(stdout) = stdout {
            // Reads the announcement, then drains stdout so the child never blocks on it.
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if let Some(addr) = line.split("http://").nth(1) {
                        let _ = tx.send(addr.trim().to_string());
                    }
                }
            });
        }
        let deadline = Instant::now() + STARTUP;
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(addr) => {
                    let addr: SocketAddr = addr.parse().map_err(|_| ClusterError::Node {
                        node: id,
                        message: format!("unreadable admin address `{addr}`"),
                    })?;
                    node.admin = Some(addr);
                    return Ok(addr);
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {}
            }
            if let Some(status) = self.children.exited(id) {
                return Err(ClusterError::Node {
                    node: id,
                    message: format!(
                        "exited at start ({status}); last log lines:\n{}",
                        log_tail(&node.log, 20)
                    ),
                });
            }
            if Instant::now() > deadline {
                self.children.kill(id);
                return Err(ClusterError::Node {
                    node: id,
                    message: format!("did not announce its admin API within {STARTUP:?}"),
                });
            }
        }
    }

    /// SIGKILLs node `id` (no shutdown path runs).
    pub fn kill(&mut self, id: NodeId) -> bool {
        if let Some(n) = self.nodes.get_mut(&id) {
            n.admin = None;
        }
        self.children.kill(id)
    }

    /// One admin API request to node `id`.
    pub fn request(
        &self,
        id: NodeId,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Result<Reply, ClusterError> {
        let addr = self.admin(id).ok_or(ClusterError::Node {
            node: id,
            message: "not running".into(),
        })?;
        http::request(addr, method, path, body, REQUEST_TIMEOUT).map_err(|e| ClusterError::Node {
            node: id,
            message: format!("{method} {path}: {e}"),
        })
    }

    /// `GET /v1/status` of node `id`, `None` if it does not answer.
    pub fn status(&self, id: NodeId) -> Option<Value> {
        let r = http::request(self.admin(id)?, "GET", "/v1/status", b"", POLL_TIMEOUT).ok()?;
        (r.status == 200).then(|| r.json().ok()).flatten()
    }

    /// Every answering node's status.
    pub fn statuses(&self) -> BTreeMap<NodeId, Value> {
        self.ids()
            .into_iter()
            .filter_map(|id| Some((id, self.status(id)?)))
            .collect()
    }

    /// The leader with the highest term among the answering nodes, with that term.
    pub fn leader(&self) -> Option<(NodeId, u64)> {
        leader_of(&self.statuses())
    }

    /// Waits for a leader other than `except` (and, if given, in a term above `after_term`).
    pub fn wait_for_leader(
        &self,
        timeout: Duration,
        except: Option<NodeId>,
    ) -> Result<(NodeId, u64), ClusterError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some((id, term)) = self.leader() {
                if Some(id) != except {
                    return Ok((id, term));
                }
            }
            if Instant::now() > deadline {
                return Err(ClusterError::Setup(format!(
                    "no leader elected within {timeout:?}"
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `GET /v1/hash` of node `id`: (content hash, store's applied LSN).
    pub fn hash(&self, id: NodeId) -> Result<(String, Option<u64>), ClusterError> {
        let r = self.request(id, "GET", "/v1/hash", b"")?;
        let v = r.json().map_err(|e| ClusterError::Node {
            node: id,
            message: e.to_string(),
        })?;
        let hash = v["content_hash"].as_str().unwrap_or_default().to_string();
        Ok((hash, v["applied_lsn"].as_u64()))
    }

    /// Waits until every running node has applied the leader's commit LSN (with writes
    /// stopped, that is: every replica holds the same log).
    pub fn wait_converged(&self, timeout: Duration) -> Result<u64, ClusterError> {
        let deadline = Instant::now() + timeout;
        loop {
            let statuses = self.statuses();
            if let Some((leader, _)) = leader_of(&statuses) {
                let commit = statuses[&leader]["commit_lsn"].as_u64().unwrap_or(0);
                let all = self.ids().into_iter().all(|id| {
                    statuses
                        .get(&id)
                        .is_some_and(|s| s["applied_lsn"].as_u64() == Some(commit))
                });
                if all && statuses.len() == self.nodes.len() {
                    return Ok(commit);
                }
            }
            if Instant::now() > deadline {
                let applied: Vec<String> = statuses
                    .iter()
                    .map(|(id, s)| format!("node {id}: applied {}", s["applied_lsn"]))
                    .collect();
                return Err(ClusterError::Setup(format!(
                    "replicas did not converge within {timeout:?} ({})",
                    applied.join(", ")
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        self.children.kill_all();
    }
}

/// The leader with the highest term among `statuses`.
pub fn leader_of(statuses: &BTreeMap<NodeId, Value>) -> Option<(NodeId, u64)> {
    statuses
        .iter()
        .filter(|(_, s)| s["role"] == "leader")
        .map(|(&id, s)| (id, s["term"].as_u64().unwrap_or(0)))
        .max_by_key(|&(_, term)| term)
}

/// The last `n` lines of a log file (for error messages).
pub fn log_tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Asks the kernel to SIGKILL the child when this process dies, so even a SIGKILLed demo
/// leaves no node behind. Linux ties this to the *thread* that spawned the child: start nodes
/// from a thread that outlives them (the demo's main thread, a test's thread).
fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the forked child before exec and only calls prctl, which is
    // async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}
