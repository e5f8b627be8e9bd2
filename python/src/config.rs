//! `replication.ReplicationConfig` (read-only view of a validated configuration) and
//! `replication.PeerConfig`.

use std::path::PathBuf;

use pyo3::prelude::*;
use replication_core::config::{
    CompressionAlgorithm, ConfigError, PeerConfig, ReplicationConfig, WalRecoveryMode,
};

use crate::errors::IntoPyErr;
use crate::gil::blocking;

/// A node's replication configuration, loaded from TOML and validated. Read-only.
///
/// Build it with `ReplicationConfig.from_toml(text)` or `ReplicationConfig.from_file(path)`;
/// both raise `ConfigError` listing every problem at once.
#[pyclass(module = "replication", name = "ReplicationConfig", frozen, eq)]
#[derive(PartialEq)]
pub(crate) struct PyReplicationConfig {
    inner: ReplicationConfig,
}

#[pymethods]
impl PyReplicationConfig {
    #[getter]
    fn node_id(&self) -> u64 {
        self.inner.node_id
    }

    #[getter]
    fn listen_address(&self) -> String {
        self.inner.listen_address.clone()
    }

    #[getter]
    fn min_sync_replicas(&self) -> u32 {
        self.inner.min_sync_replicas
    }

    #[getter]
    fn heartbeat_interval_ms(&self) -> u64 {
        self.inner.heartbeat_interval_ms
    }

    #[getter]
    fn election_timeout_min_ms(&self) -> u64 {
        self.inner.election_timeout_min_ms
    }

    #[getter]
    fn election_timeout_max_ms(&self) -> u64 {
        self.inner.election_timeout_max_ms
    }

    #[getter]
    fn replication_timeout_ms(&self) -> u64 {
        self.inner.replication_timeout_ms
    }

    #[getter]
    fn batch_size(&self) -> u64 {
        self.inner.batch_size
    }

    #[getter]
    fn batch_timeout_ms(&self) -> u64 {
        self.inner.batch_timeout_ms
    }

    #[getter]
    fn wal_directory(&self) -> PathBuf {
        self.inner.wal_directory.clone()
    }

    #[getter]
    fn wal_segment_size_bytes(&self) -> u64 {
        self.inner.wal_segment_size_bytes
    }

    #[getter]
    fn wal_retention_segments(&self) -> u64 {
        self.inner.wal_retention_segments
    }

    #[getter]
    fn wal_sync_on_commit(&self) -> bool {
        self.inner.wal_sync_on_commit
    }

    #[getter]
    fn wal_sync_interval_ms(&self) -> u64 {
        self.inner.wal_sync_interval_ms
    }

    #[getter]
    fn wal_zero_fill_ahead(&self) -> bool {
        self.inner.wal_zero_fill_ahead
    }

    #[getter]
    fn enable_wal_compression(&self) -> bool {
        self.inner.enable_wal_compression
    }

    #[getter]
    fn compression_level(&self) -> i32 {
        self.inner.compression_level
    }

    #[getter]
    fn compression_min_batch_bytes(&self) -> u64 {
        self.inner.compression_min_batch_bytes
    }

    #[getter]
    fn cert_path(&self) -> Option<PathBuf> {
        self.inner.cert_path.clone()
    }

    #[getter]
    fn key_path(&self) -> Option<PathBuf> {
        self.inner.key_path.clone()
    }

    #[getter]
    fn ca_path(&self) -> Option<PathBuf> {
        self.inner.ca_path.clone()
    }

    #[getter]
    fn require_mtls(&self) -> bool {
        self.inner.require_mtls
    }

    #[getter]
    fn allow_plaintext_dev(&self) -> bool {
        self.inner.allow_plaintext_dev
    }

    /// Parses and validates a TOML document.
    #[staticmethod]
    fn from_toml(py: Python<'_>, text: &str) -> PyResult<Self> {
        ReplicationConfig::from_toml_str(text)
            .map(|inner| PyReplicationConfig { inner })
            .map_err(|e| e.into_pyerr(py))
    }

    /// Reads, parses and validates a TOML file.
    #[staticmethod]
    fn from_file(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        blocking(py, || ReplicationConfig::from_toml_file(&path))
            .map(|inner| PyReplicationConfig { inner })
    }

    /// Legal but risky settings worth logging at startup.
    fn warnings(&self) -> Vec<String> {
        self.inner.warnings()
    }

    /// The configuration as TOML that `from_toml` reads back to an equal value.
    fn to_toml(&self, py: Python<'_>) -> PyResult<String> {
        self.inner
            .to_toml_string()
            .map_err(|e: ConfigError| e.into_pyerr(py))
    }

    /// `"SYNC"`, `"SEMI_SYNC"` or `"ASYNC"`.
    #[getter]
    fn mode(&self) -> &'static str {
        self.inner.mode.as_str()
    }

    /// `"tolerate_torn_tail"` or `"absolute_consistency"`.
    #[getter]
    fn wal_recovery_mode(&self) -> &'static str {
        match self.inner.wal_recovery_mode {
            WalRecoveryMode::TolerateTornTail => "tolerate_torn_tail",
            WalRecoveryMode::AbsoluteConsistency => "absolute_consistency",
        }
    }

    /// `"zstd"` or `"none"`.
    #[getter]
    fn compression_algorithm(&self) -> &'static str {
        match self.inner.compression_algorithm {
            CompressionAlgorithm::Zstd => "zstd",
            CompressionAlgorithm::None => "none",
        }
    }

    /// The other members of the cluster.
    #[getter]
    fn peers(&self) -> Vec<PyPeerConfig> {
        self.inner
            .peers
            .iter()
            .cloned()
            .map(|inner| PyPeerConfig { inner })
            .collect()
    }

    fn __repr__(&self) -> String {
        format!(
            "ReplicationConfig(node_id={}, mode={:?}, listen_address={:?}, peers={}, \
             wal_directory={:?})",
            self.inner.node_id,
            self.inner.mode.as_str(),
            self.inner.listen_address,
            self.inner.peers.len(),
            self.inner.wal_directory.display().to_string(),
        )
    }
}

impl PyReplicationConfig {
    pub(crate) fn inner(&self) -> &ReplicationConfig {
        &self.inner
    }
}

/// One other member of the cluster.
#[pyclass(module = "replication", name = "PeerConfig", frozen, eq, hash)]
#[derive(PartialEq, Hash)]
pub(crate) struct PyPeerConfig {
    inner: PeerConfig,
}

#[pymethods]
impl PyPeerConfig {
    #[getter]
    fn node_id(&self) -> u64 {
        self.inner.node_id
    }

    #[getter]
    fn address(&self) -> &str {
        &self.inner.address
    }

    fn __repr__(&self) -> String {
        format!(
            "PeerConfig(node_id={}, address={:?})",
            self.inner.node_id, self.inner.address
        )
    }
}
