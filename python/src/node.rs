//! `replication.Node` (one cluster member over mutual TLS) and `replication.AppliedEntry`.
//!
//! A `Node` wraps a core `NetworkedNode` running on the process's shared tokio runtime
//! ([`runtime`](crate::runtime)). Its state machine is either the host's Python callables
//! ([`PyHandler`]) or the core's in-memory `MemoryStore`.
//!
//! Threads: the apply callback runs on a `replication-rt` runtime thread, holding the GIL for the
//! duration of the call. Blocking methods wait on the calling thread with the GIL released, so a
//! callback can run while a Python thread waits in `append`.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::{PyBytes, PyDict, PyTuple};
use replication_core::config::ReplicationMode;
use replication_core::consensus::{
    AppliedEntry, ApplyError, ApplyHandler, ClientWrite, ConsensusError, ElectionStart,
    MemoryStore, NetworkedNode, ReadConsistency, ReplicationNode, Role,
};
use replication_core::security::{NodeKey, NodePublicKey};
use replication_core::NodeId;

use crate::config::PyReplicationConfig;
use crate::enums;
use crate::errors::{consensus_err, new_err, Exc, IntoPyErr};
use crate::gil::blocking;
use crate::record::parse_op;
use crate::runtime;

/// The exception the apply, snapshot or restore callback raised, which stopped the node.
type Failure = Arc<Mutex<Option<PyErr>>>;

/// One committed write, as handed to the `on_apply` callback (in LSN order).
#[pyclass(module = "replication", name = "AppliedEntry", frozen, get_all)]
pub(crate) struct PyAppliedEntry {
    lsn: u64,
    term: u64,
    hlc: u64,
    op: Py<PyAny>,
    collection: String,
    doc_id: String,
    txn_id: Option<u64>,
    payload: Py<PyBytes>,
}

#[pymethods]
impl PyAppliedEntry {
    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "AppliedEntry(lsn={}, term={}, op={}, collection={:?}, doc_id={:?}, {} bytes)",
            self.lsn,
            self.term,
            self.op.bind(py),
            self.collection,
            self.doc_id,
            self.payload.bind(py).as_bytes().len()
        )
    }
}

impl PyAppliedEntry {
    fn new(py: Python<'_>, e: &AppliedEntry<'_>) -> PyResult<Self> {
        Ok(PyAppliedEntry {
            lsn: e.lsn,
            term: e.term,
            hlc: e.hlc.0,
            op: enums::operation(py, e.op)?.unbind(),
            collection: e.collection.to_owned(),
            doc_id: e.doc_id.to_owned(),
            txn_id: e.txn_id,
            payload: PyBytes::new(py, e.payload).unbind(),
        })
    }
}

/// The host's state machine as Python callables.
struct PyHandler {
    on_apply: Py<PyAny>,
    on_snapshot: Option<Py<PyAny>>,
    on_restore: Option<Py<PyAny>>,
    on_read: Option<Py<PyAny>>,
    failure: Failure,
}

impl PyHandler {
    /// Records the first exception that stops the node and describes it for the core's log.
    fn stop(&self, what: &str, err: PyErr) -> ApplyError {
        let msg = format!("the {what} callback raised {err}");
        let mut slot = self.failure.lock();
        if slot.is_none() {
            *slot = Some(err);
        }
        ApplyError(msg)
    }
}

impl ApplyHandler for PyHandler {
    fn apply(&self, e: &AppliedEntry<'_>) -> Result<(), ApplyError> {
        Python::attach(|py| {
            let entry = Py::new(py, PyAppliedEntry::new(py, e)?)?;
            self.on_apply.call1(py, (entry,)).map(drop)
        })
        .map_err(|err| self.stop("on_apply", err))
    }

    /// Without both snapshot callbacks the node never snapshots on openraft's schedule, so its
    /// log is kept and a restart re-applies it.
    fn supports_snapshots(&self) -> bool {
        self.on_snapshot.is_some() && self.on_restore.is_some()
    }

    /// Without `on_snapshot` the snapshot is empty: openraft builds snapshots on its own
    /// schedule, and failing here would stop a healthy node. Such a snapshot can never be
    /// installed silently: `restore` without `on_restore` fails (see below).
    fn snapshot(&self) -> Result<Vec<u8>, ApplyError> {
        let Some(cb) = &self.on_snapshot else {
            return Ok(Vec::new());
        };
        Python::attach(|py| {
            let out = cb.call0(py)?;
            let bytes: PyBackedBytes = out.bind(py).extract().map_err(PyErr::from)?;
            Ok(bytes.to_vec())
        })
        .map_err(|err| self.stop("on_snapshot", err))
    }

    fn restore(&self, data: &[u8]) -> Result<(), ApplyError> {
        let Some(cb) = &self.on_restore else {
            let msg = "this node must restore a snapshot to catch up, but the Node has no \
                       on_restore callback; pass on_snapshot and on_restore";
            *self.failure.lock() = Some(PyValueError::new_err(msg));
            return Err(ApplyError(msg.into()));
        };
        Python::attach(|py| cb.call1(py, (PyBytes::new(py, data),)).map(drop))
            .map_err(|err| self.stop("on_restore", err))
    }

    fn read(&self, collection: &str, doc_id: &str) -> Result<Option<Bytes>, ApplyError> {
        let Some(cb) = &self.on_read else {
            return Err(ApplyError(
                "the Node was created without an on_read callback, so its state machine cannot \
                 serve reads"
                    .into(),
            ));
        };
        Python::attach(|py| {
            let out = cb.call1(py, (collection, doc_id))?;
            let bytes: Option<PyBackedBytes> = out.bind(py).extract().map_err(PyErr::from)?;
            Ok::<_, PyErr>(bytes.map(|b| Bytes::copy_from_slice(&b)))
        })
        .map_err(|err| ApplyError(format!("the on_read callback raised {err}")))
    }
}

/// A core error with what is needed to turn it into the right exception.
struct NodeErr {
    err: ConsensusError,
    me: NodeId,
    failure: Failure,
}

impl IntoPyErr for NodeErr {
    fn into_pyerr(self, py: Python<'_>) -> PyErr {
        if let Some(cause) = self.failure.lock().as_ref() {
            let err = new_err(
                py,
                Exc::NodeStopped,
                format!(
                    "node {} has stopped because its state machine callback raised {cause}; \
                     fix the callback and start the node again",
                    self.me
                ),
            );
            err.set_cause(py, Some(cause.clone_ref(py)));
            return err;
        }
        consensus_err(py, self.err, self.me)
    }
}

/// One member of a replication cluster: Raft consensus on the WAL, mutual TLS to its peers.
///
/// Blocking methods release the GIL. The `on_apply` callback (and `on_snapshot`, `on_restore`,
/// `on_read`) runs on a `replication-rt` thread with the GIL held; it must not call the
/// blocking methods of a `Node` (they raise `InvalidRequestError` there). An exception in
/// `on_apply` stops the node: later calls raise `NodeStoppedError` with it as the `__cause__`.
#[pyclass(module = "replication", name = "Node", frozen)]
pub(crate) struct PyNode {
    id: NodeId,
    local_addr: SocketAddr,
    /// Kept after shutdown so that role / term / status still answer.
    node: Arc<ReplicationNode>,
    /// `None` once shut down.
    running: Mutex<Option<NetworkedNode>>,
    failure: Failure,
}

impl Drop for PyNode {
    /// A node that was not shut down is stopped in the background: waiting here could deadlock
    /// on a callback that needs the GIL this thread may hold.
    fn drop(&mut self) {
        if let Some(nn) = self.running.get_mut().take() {
            if let Ok(rt) = runtime::runtime() {
                rt.spawn(async move {
                    if let Err(e) = nn.shutdown().await {
                        tracing::warn!(error = %e, "background shutdown of a dropped Node failed");
                    }
                });
            }
        }
    }
}

fn invalid(msg: impl Into<String>) -> ConsensusError {
    ConsensusError::Invalid(msg.into())
}

fn parse_public_key(id: NodeId, text: &str) -> Result<NodePublicKey, ConsensusError> {
    let parsed = if text.contains("-----BEGIN") {
        NodePublicKey::from_pem(text)
    } else {
        NodePublicKey::from_hex(text)
    };
    parsed.map_err(|e| invalid(format!("public key of node {id}: {e}")))
}

fn parse_mode(mode: &str) -> PyResult<ReplicationMode> {
    match mode.to_ascii_uppercase().as_str() {
        "SYNC" => Ok(ReplicationMode::Sync),
        "SEMI_SYNC" => Ok(ReplicationMode::SemiSync),
        "ASYNC" => Ok(ReplicationMode::Async),
        _ => Err(PyValueError::new_err(format!(
            "unknown replication mode {mode:?}; use \"SYNC\", \"SEMI_SYNC\" or \"ASYNC\""
        ))),
    }
}

fn parse_consistency(obj: &Bound<'_, PyAny>) -> PyResult<ReadConsistency> {
    const HELP: &str = "consistency must be \"linearizable\", \"leader_local\" or \
                        (\"follower_bounded\", max_staleness_ms)";
    if let Ok(s) = obj.extract::<String>() {
        return match s.as_str() {
            "linearizable" => Ok(ReadConsistency::Linearizable),
            "leader_local" => Ok(ReadConsistency::LeaderLocal),
            _ => Err(PyValueError::new_err(format!("{HELP}, not {s:?}"))),
        };
    }
    if let Ok(t) = obj.cast::<PyTuple>() {
        if let Ok((kind, ms)) = t.extract::<(String, u64)>() {
            if kind == "follower_bounded" {
                return Ok(ReadConsistency::FollowerBounded {
                    max_staleness: Duration::from_millis(ms),
                });
            }
        }
    }
    Err(PyValueError::new_err(HELP))
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Leader => "leader",
        Role::Follower => "follower",
        Role::Candidate => "candidate",
        Role::Learner => "learner",
        Role::Shutdown => "shutdown",
    }
}

fn check_callable(name: &str, cb: &Option<Py<PyAny>>, py: Python<'_>) -> PyResult<()> {
    match cb {
        Some(cb) if !cb.bind(py).is_callable() => Err(PyTypeError::new_err(format!(
            "{name} must be callable, not {}",
            cb.bind(py).get_type().name()?
        ))),
        _ => Ok(()),
    }
}

impl PyNode {
    /// Runs the future `make()` builds on the shared runtime, waiting with the GIL released.
    fn wait<T, F, Fut>(&self, py: Python<'_>, make: F) -> PyResult<T>
    where
        T: Send,
        F: FnOnce(Arc<ReplicationNode>) -> Fut + Send,
        Fut: Future<Output = Result<T, ConsensusError>>,
    {
        let node = self.live()?;
        let (me, failure) = (self.id, self.failure.clone());
        blocking(py, move || {
            runtime::block_on(make(node)).map_err(|err| NodeErr { err, me, failure })
        })
    }

    /// The node, if it still runs; `NodeStoppedError` otherwise.
    fn live(&self) -> PyResult<Arc<ReplicationNode>> {
        if self.running.lock().is_none() {
            return Err(Python::attach(|py| {
                new_err(
                    py,
                    Exc::NodeStopped,
                    format!("node {} has been shut down", self.id),
                )
            }));
        }
        Ok(self.node.clone())
    }

    fn err(&self, py: Python<'_>, err: ConsensusError) -> PyErr {
        NodeErr {
            err,
            me: self.id,
            failure: self.failure.clone(),
        }
        .into_pyerr(py)
    }
}

#[pymethods]
impl PyNode {
    #[new]
    #[pyo3(signature = (
        config,
        *,
        node_key_path,
        peer_public_keys = None,
        on_apply = None,
        on_snapshot = None,
        on_restore = None,
        on_read = None,
    ))]
    #[allow(clippy::too_many_arguments)] // mirrors the Python signature; all keyword-only
    fn new(
        py: Python<'_>,
        config: &PyReplicationConfig,
        node_key_path: PathBuf,
        peer_public_keys: Option<BTreeMap<NodeId, String>>,
        on_apply: Option<Py<PyAny>>,
        on_snapshot: Option<Py<PyAny>>,
        on_restore: Option<Py<PyAny>>,
        on_read: Option<Py<PyAny>>,
    ) -> PyResult<Self> {
        for (name, cb) in [
            ("on_apply", &on_apply),
            ("on_snapshot", &on_snapshot),
            ("on_restore", &on_restore),
            ("on_read", &on_read),
        ] {
            check_callable(name, cb, py)?;
        }
        let config = config.inner().clone();
        let id = config.node_id;
        let failure: Failure = Arc::default();
        let handler: Arc<dyn ApplyHandler> = match on_apply {
            Some(on_apply) => Arc::new(PyHandler {
                on_apply,
                on_snapshot,
                on_restore,
                on_read,
                failure: failure.clone(),
            }),
            None if on_snapshot.is_some() || on_restore.is_some() || on_read.is_some() => {
                return Err(PyValueError::new_err(
                    "on_snapshot, on_restore and on_read belong to an on_apply state machine; \
                     without on_apply the node uses its built-in in-memory store",
                ))
            }
            None => Arc::new(MemoryStore::new()),
        };
        let to_err = {
            let failure = failure.clone();
            move |err| NodeErr {
                err,
                me: id,
                failure: failure.clone(),
            }
        };
        let peers = peer_public_keys.unwrap_or_default();
        let nn = blocking(py, move || {
            let key = NodeKey::load(&node_key_path)
                .map_err(|e| to_err(invalid(format!("node key: {e}"))))?;
            let peer_keys = peers
                .iter()
                .map(|(id, text)| Ok((*id, parse_public_key(*id, text)?)))
                .collect::<Result<Vec<_>, ConsensusError>>()
                .map_err(&to_err)?;
            runtime::block_on(async {
                let security = NetworkedNode::security_from_config(&config)?;
                NetworkedNode::start(&config, handler, security, key, peer_keys).await
            })
            .map_err(&to_err)
        })?;
        Ok(PyNode {
            id,
            local_addr: nn.local_addr(),
            node: nn.node().clone(),
            running: Mutex::new(Some(nn)),
            failure,
        })
    }

    /// This node's id.
    #[getter]
    fn id(&self) -> NodeId {
        self.id
    }

    /// The address the consensus listener is bound to (`host:port`), useful with port 0.
    #[getter]
    fn local_addr(&self) -> String {
        self.local_addr.to_string()
    }

    #[getter]
    fn role(&self) -> &'static str {
        if self.running.lock().is_none() {
            return role_name(Role::Shutdown);
        }
        role_name(self.node.role())
    }

    #[getter]
    fn leader(&self) -> Option<NodeId> {
        self.node.leader()
    }

    #[getter]
    fn term(&self) -> u64 {
        self.node.term()
    }

    /// Forms a new cluster of `members` (node id -> `host:port`). Call once, on one node.
    fn initialize(&self, py: Python<'_>, members: BTreeMap<NodeId, String>) -> PyResult<()> {
        self.wait(py, |n| async move { n.initialize(members).await })
    }

    /// Appends a write through consensus and returns its LSN once acknowledged per `mode`
    /// (default: the node's current mode).
    #[pyo3(signature = (op, collection, doc_id, payload, mode = None, *, txn_id = None))]
    #[allow(clippy::too_many_arguments)] // mirrors the Python signature
    fn append(
        &self,
        py: Python<'_>,
        op: &Bound<'_, PyAny>,
        collection: String,
        doc_id: String,
        payload: PyBackedBytes,
        mode: Option<&str>,
        txn_id: Option<u64>,
    ) -> PyResult<u64> {
        let op = parse_op(op)?;
        let mode = mode.map(parse_mode).transpose()?;
        let mut write = ClientWrite::new(op, collection, doc_id, payload.to_vec());
        write.txn_id = txn_id;
        self.wait(py, |n| async move { n.append(write, mode).await })
    }

    /// Waits until this node has applied `lsn`; `ClusterTimeoutError` after `timeout_s`.
    fn wait_for_lsn(&self, py: Python<'_>, lsn: u64, timeout_s: f64) -> PyResult<()> {
        let timeout = Duration::try_from_secs_f64(timeout_s)
            .map_err(|e| PyValueError::new_err(format!("timeout_s: {e}")))?;
        self.wait(py, |n| async move { n.wait_for_lsn(lsn, timeout).await })
    }

    /// Reads a document from the state machine (`None`: no such document).
    #[pyo3(signature = (collection, doc_id, consistency = None))]
    fn read(
        &self,
        py: Python<'_>,
        collection: String,
        doc_id: String,
        consistency: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Option<Py<PyBytes>>> {
        let consistency = match consistency {
            Some(c) => parse_consistency(c)?,
            None => ReadConsistency::Linearizable,
        };
        let out = self.wait(py, |n| async move {
            n.read(&collection, &doc_id, consistency).await
        })?;
        Ok(out.map(|b| PyBytes::new(py, &b).unbind()))
    }

    /// The node's state as a dict (see the stubs for the keys).
    fn status<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.node.status();
        let d = PyDict::new(py);
        d.set_item("id", s.id)?;
        d.set_item("role", self.role())?;
        d.set_item("term", s.term)?;
        d.set_item("leader", s.leader)?;
        d.set_item("last_lsn", s.last_lsn)?;
        d.set_item("durable_lsn", s.durable_lsn)?;
        d.set_item("commit_lsn", s.commit_lsn)?;
        d.set_item("applied_lsn", s.applied_lsn)?;
        d.set_item("voters", s.voters.iter().copied().collect::<Vec<_>>())?;
        d.set_item("learners", s.learners.iter().copied().collect::<Vec<_>>())?;
        d.set_item("mode", s.policy.mode.as_str())?;
        d.set_item("min_sync_replicas", s.policy.min_sync_replicas)?;
        let followers = s
            .followers
            .iter()
            .map(|f| {
                let fd = PyDict::new(py);
                fd.set_item("id", f.id)?;
                fd.set_item("voter", f.voter)?;
                fd.set_item("matched_lsn", f.matched_lsn)?;
                fd.set_item("lag_entries", f.lag_entries)?;
                fd.set_item("lag_bytes", f.lag_bytes)?;
                fd.set_item("lag_ms", f.lag_ms)?;
                fd.set_item("last_ack_ms", f.last_ack.map(|d| d.as_millis() as u64))?;
                fd.set_item("lag_alert", f.lag_alert)?;
                Ok(fd)
            })
            .collect::<PyResult<Vec<_>>>()?;
        d.set_item("followers", followers)?;
        Ok(d)
    }

    /// On the leader: hands leadership to the most caught-up voter and returns its id. With no
    /// known leader: campaigns and returns `None`. On a follower: `NotLeaderError`.
    fn start_election(&self, py: Python<'_>) -> PyResult<Option<NodeId>> {
        let started = self.wait(py, |n| async move { n.start_election().await })?;
        Ok(match started {
            ElectionStart::Transferring { to } => Some(to),
            ElectionStart::Campaigning => None,
        })
    }

    /// Changes the acknowledgement mode for later writes, at run time.
    fn set_mode(&self, py: Python<'_>, mode: &str) -> PyResult<()> {
        let mode = parse_mode(mode)?;
        let node = self.live()?;
        node.set_mode(mode).map_err(|e| self.err(py, e))
    }

    fn set_min_sync_replicas(&self, py: Python<'_>, n: u32) -> PyResult<()> {
        let node = self.live()?;
        node.set_min_sync_replicas(n).map_err(|e| self.err(py, e))
    }

    /// Adds a non-voting member; returns the LSN of the membership entry.
    #[pyo3(signature = (node_id, address, wait_caught_up = true))]
    fn add_learner(
        &self,
        py: Python<'_>,
        node_id: NodeId,
        address: String,
        wait_caught_up: bool,
    ) -> PyResult<u64> {
        self.wait(py, |n| async move {
            n.add_learner(node_id, address, wait_caught_up).await
        })
    }

    /// Replaces the voter set through joint consensus (voters must be members already; add
    /// them as learners first). With `retain`, removed voters stay as learners.
    #[pyo3(signature = (voters, retain = false))]
    fn change_membership(
        &self,
        py: Python<'_>,
        voters: Vec<NodeId>,
        retain: bool,
    ) -> PyResult<u64> {
        let voters: BTreeSet<NodeId> = voters.into_iter().collect();
        self.wait(
            py,
            |n| async move { n.change_membership(voters, retain).await },
        )
    }

    /// Stops the node and closes its WAL. Idempotent.
    fn shutdown(&self, py: Python<'_>) -> PyResult<()> {
        let Some(nn) = self.running.lock().take() else {
            return Ok(());
        };
        let (me, failure) = (self.id, self.failure.clone());
        let stopped_by_callback = failure.lock().is_some();
        blocking(py, move || match runtime::block_on(nn.shutdown()) {
            // The node already stopped itself; the callback's exception was reported.
            Err(_) if stopped_by_callback => Ok(()),
            r => r.map_err(|err| NodeErr { err, me, failure }),
        })
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc_info))]
    fn __exit__(&self, py: Python<'_>, _exc_info: &Bound<'_, PyTuple>) -> PyResult<()> {
        // Returns None: an exception raised in the `with` body propagates.
        self.shutdown(py)
    }

    fn __repr__(&self) -> String {
        format!(
            "Node(id={}, addr={}, role={}, term={})",
            self.id,
            self.local_addr,
            self.role(),
            self.term()
        )
    }
}
