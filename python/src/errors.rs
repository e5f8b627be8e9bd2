//! The exception hierarchy and the conversion of every core error into it.
//!
//! ```text
//! ReplicationError(Exception)
//! ├── WalError                     .path (I/O errors; the OSError is the __cause__)
//! │   ├── CorruptionError          .path .offset .reason
//! │   ├── WalClosedError
//! │   ├── LsnOutOfRangeError       .lsn .first .last
//! │   └── InvalidRecordError       (also a ValueError)
//! ├── ConfigError                  (also a ValueError) .problems .line .column .path
//! ├── ClockDriftError              .remote_ms .local_ms .max_drift_ms
//! └── ClusterError                 a consensus node (`Node`) operation failed
//!     ├── NotDurableError          .leader   the write never entered the log; safe to retry
//!     │   └── NotLeaderError       .leader   sent to a node that is not the leader
//!     ├── CommitUnknownError       .lsn      the write may still commit; deduplicate a retry
//!     ├── InvalidRequestError      (also a ValueError)
//!     ├── StaleReadError           .staleness_ms .bound_ms
//!     ├── QuorumUnavailableError
//!     ├── ClusterTimeoutError      (also a TimeoutError)
//!     └── NodeStoppedError         shut down, or stopped by the apply callback (the __cause__)
//! ```
//!
//! The types are built once at import with Python's `type()` rather than `create_exception!`,
//! because two of them have two bases (like pydantic's `ValidationError(ValueError)`), which the
//! macro cannot express; building all of them the same way keeps the table in one place.

use pyo3::exceptions::{PyBaseException, PyException, PyTimeoutError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};
use replication_core::clock::{ClockError, DuplicateNode};
use replication_core::config::ConfigError;
use replication_core::consensus::ConsensusError;
use replication_core::{NodeId, WalError};

/// One exception class of the hierarchy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exc {
    Replication,
    Wal,
    Corruption,
    WalClosed,
    LsnOutOfRange,
    InvalidRecord,
    Config,
    ClockDrift,
    Cluster,
    NotDurable,
    NotLeader,
    CommitUnknown,
    InvalidRequest,
    StaleRead,
    QuorumUnavailable,
    ClusterTimeout,
    NodeStopped,
}

/// One row of the hierarchy: how to build the class.
struct Spec {
    exc: Exc,
    name: &'static str,
    parents: &'static [Parent],
    doc: &'static str,
    /// Attributes that default to `None` on the class, so reading them never fails even on an
    /// instance that does not set them.
    none_attrs: &'static [&'static str],
}

/// Every class, parents before children, in the order of [`Exc`].
const TABLE: [Spec; 17] = [
    Spec {
        exc: Exc::Replication,
        name: "ReplicationError",
        parents: &[Parent::Builtin(Builtin::Exception)],
        doc: "Base class of every error raised by the replication package.",
        none_attrs: &[],
    },
    Spec {
        exc: Exc::Wal,
        name: "WalError",
        parents: &[Parent::Own(Exc::Replication)],
        doc: "A WAL operation failed: an I/O error (`.path` names the file, the OSError is the \
              __cause__), or a write refused after an earlier I/O failure.",
        none_attrs: &["path"],
    },
    Spec {
        exc: Exc::Corruption,
        name: "CorruptionError",
        parents: &[Parent::Own(Exc::Wal)],
        doc: "Bytes on disk fail their checksum or structure. `.path` and `.offset` locate the \
              damage, `.reason` says what is wrong.",
        none_attrs: &["offset", "reason"],
    },
    Spec {
        exc: Exc::WalClosed,
        name: "WalClosedError",
        parents: &[Parent::Own(Exc::Wal)],
        doc: "The WAL, or the WAL an iterator reads from, was closed.",
        none_attrs: &[],
    },
    Spec {
        exc: Exc::LsnOutOfRange,
        name: "LsnOutOfRangeError",
        parents: &[Parent::Own(Exc::Wal)],
        doc: "An LSN outside the WAL was asked for. `.lsn` is the offending LSN, `.first` and \
              `.last` what the WAL holds (first > last means it is empty).",
        none_attrs: &["lsn", "first", "last"],
    },
    Spec {
        exc: Exc::InvalidRecord,
        name: "InvalidRecordError",
        parents: &[Parent::Own(Exc::Wal), Parent::Builtin(Builtin::ValueError)],
        doc: "A record cannot be stored: unknown operation, empty batch, field too long, ...",
        none_attrs: &[],
    },
    Spec {
        exc: Exc::Config,
        name: "ConfigError",
        parents: &[
            Parent::Own(Exc::Replication),
            Parent::Builtin(Builtin::ValueError),
        ],
        doc: "A configuration or option is unusable. The message lists every problem and \
              `.problems` holds them one per item; `.line`/`.column` locate a TOML syntax \
              error, `.path` names a file that could not be read.",
        none_attrs: &["path", "line", "column"],
    },
    Spec {
        exc: Exc::ClockDrift,
        name: "ClockDriftError",
        parents: &[Parent::Own(Exc::Replication)],
        doc: "A remote HLC timestamp is further ahead of the local clock than max_drift_ms \
              allows; the clock was not advanced.",
        none_attrs: &["remote_ms", "local_ms", "max_drift_ms"],
    },
    Spec {
        exc: Exc::Cluster,
        name: "ClusterError",
        parents: &[Parent::Own(Exc::Replication)],
        doc: "An operation of a cluster member (`Node`) failed.",
        none_attrs: &[],
    },
    Spec {
        exc: Exc::NotDurable,
        name: "NotDurableError",
        parents: &[Parent::Own(Exc::Cluster)],
        doc: "The write certainly never entered the log, so retrying it is safe. `.leader` is \
              the leader's node id when known.",
        none_attrs: &["leader"],
    },
    Spec {
        exc: Exc::NotLeader,
        name: "NotLeaderError",
        parents: &[Parent::Own(Exc::NotDurable)],
        doc: "The request must run on the leader and this node is not it; nothing was done. \
              `.leader` is the leader's node id when known: send the request there.",
        none_attrs: &[],
    },
    Spec {
        exc: Exc::CommitUnknown,
        name: "CommitUnknownError",
        parents: &[Parent::Own(Exc::Cluster)],
        doc: "The write entered the log but its acknowledgement was not gathered: it may or may \
              not survive. `.lsn` is its LSN when known. Deduplicate before retrying.",
        none_attrs: &["lsn"],
    },
    Spec {
        exc: Exc::InvalidRequest,
        name: "InvalidRequestError",
        parents: &[
            Parent::Own(Exc::Cluster),
            Parent::Builtin(Builtin::ValueError),
        ],
        doc: "The request or setting is not allowed (e.g. SYNC with min_sync_replicas = 0, \
              missing TLS material); the message says what to change.",
        none_attrs: &[],
    },
    Spec {
        exc: Exc::StaleRead,
        name: "StaleReadError",
        parents: &[Parent::Own(Exc::Cluster)],
        doc: "A bounded-staleness read could not be served within its bound. `.staleness_ms` \
              is how far behind the leader this node is known to be (None: no leader contact), \
              `.bound_ms` the bound asked for.",
        none_attrs: &["staleness_ms", "bound_ms"],
    },
    Spec {
        exc: Exc::QuorumUnavailable,
        name: "QuorumUnavailableError",
        parents: &[Parent::Own(Exc::Cluster)],
        doc: "A linearizable read was refused: the leader could not confirm its leadership \
              with a quorum. Nothing was read; retry, possibly on another node.",
        none_attrs: &[],
    },
    Spec {
        exc: Exc::ClusterTimeout,
        name: "ClusterTimeoutError",
        parents: &[
            Parent::Own(Exc::Cluster),
            Parent::Builtin(Builtin::TimeoutError),
        ],
        doc: "A wait (e.g. `Node.wait_for_lsn`) did not complete in time.",
        none_attrs: &[],
    },
    Spec {
        exc: Exc::NodeStopped,
        name: "NodeStoppedError",
        parents: &[Parent::Own(Exc::Cluster)],
        doc: "The node is shut down, or stopped because the apply callback raised (that \
              exception is the __cause__).",
        none_attrs: &[],
    },
];

#[derive(Clone, Copy)]
enum Builtin {
    Exception,
    ValueError,
    TimeoutError,
}

#[derive(Clone, Copy)]
enum Parent {
    Own(Exc),
    Builtin(Builtin),
}

struct Types([Py<PyType>; TABLE.len()]);

static TYPES: PyOnceLock<Types> = PyOnceLock::new();

fn types(py: Python<'_>) -> PyResult<&Types> {
    TYPES.get_or_try_init(py, || {
        let mut built: Vec<Py<PyType>> = Vec::with_capacity(TABLE.len());
        for (i, spec) in TABLE.iter().enumerate() {
            debug_assert_eq!(spec.exc as usize, i, "TABLE is in the order of Exc");
            let bases = spec
                .parents
                .iter()
                .map(|p| match p {
                    Parent::Own(own) => built[*own as usize].bind(py).clone(),
                    Parent::Builtin(Builtin::Exception) => py.get_type::<PyException>(),
                    Parent::Builtin(Builtin::ValueError) => py.get_type::<PyValueError>(),
                    Parent::Builtin(Builtin::TimeoutError) => py.get_type::<PyTimeoutError>(),
                })
                .collect::<Vec<_>>();
            let namespace = PyDict::new(py);
            namespace.set_item("__module__", "replication")?;
            namespace.set_item("__doc__", spec.doc)?;
            for attr in spec.none_attrs {
                namespace.set_item(*attr, py.None())?;
            }
            let ty = py
                .get_type::<PyType>()
                .call1((spec.name, PyTuple::new(py, bases)?, namespace))?
                .cast_into::<PyType>()?;
            built.push(ty.unbind());
        }
        let array: [Py<PyType>; TABLE.len()] = built
            .try_into()
            .map_err(|_| PyValueError::new_err("exception table size mismatch"))?;
        Ok(Types(array))
    })
}

/// Adds every exception class to the module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let types = types(py)?;
    for spec in &TABLE {
        m.add(spec.name, types.0[spec.exc as usize].bind(py))?;
    }
    Ok(())
}

/// A new exception of class `exc` with message `msg`.
pub(crate) fn new_err(py: Python<'_>, exc: Exc, msg: impl Into<String>) -> PyErr {
    match types(py) {
        Ok(types) => PyErr::from_type(types.0[exc as usize].bind(py).clone(), msg.into()),
        Err(e) => e,
    }
}

/// A `ConfigError` for `Wal(...)` options the bindings reject before they reach the core; worded
/// like the core's `WalError::InvalidOptions`.
pub(crate) fn wal_options_err(py: Python<'_>, problem: String) -> PyErr {
    let err = new_err(py, Exc::Config, format!("invalid WAL options: {problem}"));
    with_attrs(py, err, |e| e.setattr("problems", vec![problem]))
}

/// Sets attributes on the exception instance; a failure to do so replaces the error.
pub(crate) fn with_attrs(
    py: Python<'_>,
    err: PyErr,
    set: impl FnOnce(&Bound<'_, PyBaseException>) -> PyResult<()>,
) -> PyErr {
    match set(err.value(py)) {
        Ok(()) => err,
        Err(e) => e,
    }
}

/// Conversion of a Rust error into a Python exception (a local trait: both sides are foreign).
pub(crate) trait IntoPyErr {
    fn into_pyerr(self, py: Python<'_>) -> PyErr;
}

impl IntoPyErr for PyErr {
    fn into_pyerr(self, _py: Python<'_>) -> PyErr {
        self
    }
}

impl IntoPyErr for WalError {
    fn into_pyerr(self, py: Python<'_>) -> PyErr {
        let msg = self.to_string();
        match self {
            WalError::Io { path, source } => {
                let err = new_err(py, Exc::Wal, msg);
                err.set_cause(py, Some(PyErr::from(source)));
                with_attrs(py, err, |e| e.setattr("path", path.to_string_lossy()))
            }
            WalError::Corrupt {
                path,
                offset,
                reason,
            } => with_attrs(py, new_err(py, Exc::Corruption, msg), |e| {
                e.setattr("path", path.to_string_lossy())?;
                e.setattr("offset", offset)?;
                e.setattr("reason", reason)
            }),
            WalError::InvalidRecord(_) => new_err(py, Exc::InvalidRecord, msg),
            WalError::LsnOutOfRange { lsn, first, last } => {
                with_attrs(py, new_err(py, Exc::LsnOutOfRange, msg), |e| {
                    e.setattr("lsn", lsn)?;
                    e.setattr("first", first)?;
                    e.setattr("last", last)
                })
            }
            WalError::Poisoned(_) => new_err(py, Exc::Wal, msg),
            WalError::Locked { dir } => with_attrs(py, new_err(py, Exc::Wal, msg), |e| {
                e.setattr("path", dir.to_string_lossy())
            }),
            WalError::Closed => new_err(py, Exc::WalClosed, msg),
            WalError::InvalidOptions(reason) => {
                with_attrs(py, new_err(py, Exc::Config, msg), |e| {
                    e.setattr("problems", vec![reason])
                })
            }
        }
    }
}

impl IntoPyErr for ConfigError {
    fn into_pyerr(self, py: Python<'_>) -> PyErr {
        let msg = self.to_string();
        match self {
            ConfigError::Io { path, source } => {
                let err = new_err(py, Exc::Config, msg.clone());
                err.set_cause(py, Some(PyErr::from(source)));
                with_attrs(py, err, |e| {
                    e.setattr("path", path.to_string_lossy())?;
                    e.setattr("problems", vec![msg])
                })
            }
            ConfigError::Parse {
                line,
                column,
                message,
            } => with_attrs(py, new_err(py, Exc::Config, msg.clone()), |e| {
                e.setattr("line", line)?;
                e.setattr("column", column)?;
                e.setattr("problems", vec![format!("not valid TOML: {message}")])
            }),
            ConfigError::Invalid { problems } => {
                let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
                with_attrs(py, new_err(py, Exc::Config, msg), |e| {
                    e.setattr("problems", list)
                })
            }
            ConfigError::Serialize { message } => {
                with_attrs(py, new_err(py, Exc::Config, msg), |e| {
                    e.setattr("problems", vec![message])
                })
            }
        }
    }
}

impl IntoPyErr for ClockError {
    fn into_pyerr(self, py: Python<'_>) -> PyErr {
        let msg = self.to_string();
        match self {
            ClockError::DriftExceeded {
                remote_ms,
                local_ms,
                max_drift_ms,
            } => with_attrs(py, new_err(py, Exc::ClockDrift, msg), |e| {
                e.setattr("remote_ms", remote_ms)?;
                e.setattr("local_ms", local_ms)?;
                e.setattr("max_drift_ms", max_drift_ms)
            }),
        }
    }
}

impl IntoPyErr for DuplicateNode {
    fn into_pyerr(self, _py: Python<'_>) -> PyErr {
        PyValueError::new_err(self.to_string())
    }
}

/// The exception for a node error. `me` is the node that raised it: a write refused with a
/// known leader other than `me` is a [`Exc::NotLeader`] (still a `NotDurableError`: nothing was
/// appended).
pub(crate) fn consensus_err(py: Python<'_>, err: ConsensusError, me: NodeId) -> PyErr {
    let msg = err.to_string();
    match err {
        ConsensusError::NotDurable { leader, .. } => {
            let exc = match leader {
                Some(l) if l != me => Exc::NotLeader,
                _ => Exc::NotDurable,
            };
            with_attrs(py, new_err(py, exc, msg), |e| e.setattr("leader", leader))
        }
        ConsensusError::NotLeader { leader } => {
            with_attrs(py, new_err(py, Exc::NotLeader, msg), |e| {
                e.setattr("leader", leader)
            })
        }
        ConsensusError::Unknown { lsn, .. } => {
            with_attrs(py, new_err(py, Exc::CommitUnknown, msg), |e| {
                e.setattr("lsn", lsn)
            })
        }
        ConsensusError::Invalid(_) => new_err(py, Exc::InvalidRequest, msg),
        ConsensusError::Stale { staleness, bound } => {
            with_attrs(py, new_err(py, Exc::StaleRead, msg), |e| {
                e.setattr("staleness_ms", staleness.map(|s| s.as_millis() as u64))?;
                e.setattr("bound_ms", bound.as_millis() as u64)
            })
        }
        ConsensusError::QuorumUnavailable(_) => new_err(py, Exc::QuorumUnavailable, msg),
        ConsensusError::Timeout(..) => new_err(py, Exc::ClusterTimeout, msg),
        ConsensusError::Storage(_) | ConsensusError::Raft(_) => new_err(py, Exc::Cluster, msg),
    }
}
