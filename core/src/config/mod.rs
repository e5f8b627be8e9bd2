//! `ReplicationConfig`: every knob of a replication node, loaded from TOML and validated.
//!
//! Field names and defaults follow ThemisDB's `ReplicationConfig`, so an operator's existing
//! configuration carries over. Loading is strict: unknown keys, wrong types and inconsistent
//! values are all errors, and they are reported together (see [`ConfigError::Invalid`]) so that
//! fixing a config file takes one round trip, not one per mistake.
//!
//! ```toml
//! node_id = 1
//! mode = "SEMI_SYNC"
//! cert_path = "/etc/repl/node1.pem"
//! key_path = "/etc/repl/node1.key"
//! ca_path = "/etc/repl/ca.pem"
//!
//! [[peers]]
//! node_id = 2
//! address = "10.0.0.2:7400"
//! ```

mod load;
mod validate;

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::wal::{Compression, Durability, RecoveryMode, WalOptions};

/// How many replicas must confirm a write before the leader acknowledges it to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReplicationMode {
    /// Acknowledge once every voter has durably appended the write: no acknowledged write is
    /// lost while any voter survives, at the cost of waiting for the slowest one.
    Sync,
    /// Acknowledge once `min_sync_replicas` followers have durably appended the write (or fail
    /// with a timeout after `replication_timeout_ms`): survives the leader's loss as long as one
    /// of those followers survives.
    SemiSync,
    /// Acknowledge after the leader's local durable append; followers catch up in the
    /// background. Lowest latency, but writes acknowledged just before a failover can be lost.
    #[default]
    Async,
}

impl ReplicationMode {
    /// The configuration spelling: `"SYNC"`, `"SEMI_SYNC"` or `"ASYNC"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Sync => "SYNC",
            Self::SemiSync => "SEMI_SYNC",
            Self::Async => "ASYNC",
        }
    }
}

impl fmt::Display for ReplicationMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Compression applied to WAL batches, on disk and when shipped to followers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompressionAlgorithm {
    /// Zstandard: the best ratio at a speed that keeps up with WAL shipping.
    #[default]
    Zstd,
    /// Store and ship batches uncompressed.
    None,
}

/// What WAL recovery does when it finds a damaged record (mirrors [`RecoveryMode`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WalRecoveryMode {
    /// Truncate a torn write at the end of the last segment (the expected result of a crash
    /// mid-append); corruption anywhere else is still an error.
    #[default]
    TolerateTornTail,
    /// Any damaged record, even a torn tail, stops recovery with an error.
    AbsoluteConsistency,
}

/// One other member of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    /// The peer's `node_id`; unique in the cluster and different from ours.
    pub node_id: u64,
    /// Where the peer listens for replication traffic, as `host:port` (`[v6addr]:port` for
    /// IPv6).
    pub address: String,
    /// The peer's ed25519 vote-signing public key: 64 hex digits (what `replicad keygen`
    /// prints) or a `PUBLIC KEY` PEM (what `openssl pkey -pubout` writes). A vote request from
    /// this peer is accepted only with a valid signature under this key. Optional when the
    /// config is only loaded; a node that runs over the network requires it for every voter
    /// (see [`ReplicationConfig::validate_for_network`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
}

impl PeerConfig {
    /// The peer's `public_key`, decoded (hex, or PEM when it starts with `-----BEGIN`);
    /// `None` when it is not set.
    ///
    /// # Errors
    ///
    /// The key is neither 64 hex digits nor a PEM ed25519 public key.
    pub fn parsed_public_key(
        &self,
    ) -> Option<Result<crate::security::NodePublicKey, crate::security::SecurityError>> {
        self.public_key.as_deref().map(validate::parse_public_key)
    }
}

/// Configuration of one replication node.
///
/// Build it with [`from_toml_str`](Self::from_toml_str) / [`from_toml_file`](Self::from_toml_file)
/// (which validate), or in code from [`Default`] followed by [`validate`](Self::validate).
/// The derived `Deserialize` accepts the same documents but stops at the first error and does
/// not validate; prefer the constructors above.
///
/// `peers` is declared last because TOML requires arrays of tables (`[[peers]]`) to follow all
/// plain keys, and serialisation writes fields in declaration order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicationConfig {
    /// This node's id: required, non-zero (0 means "no node" in votes and on the wire) and
    /// unique in the cluster.
    pub node_id: u64,
    /// Address the replication server binds, `host:port`. Port 0 picks a free port (tests).
    #[serde(default = "defaults::listen_address")]
    pub listen_address: String,
    /// When a write counts as committed; see [`ReplicationMode`].
    #[serde(default)]
    pub mode: ReplicationMode,
    /// Replicas that must confirm a write in SYNC and SEMI_SYNC mode (ignored in ASYNC). Must be
    /// at least 1 in SYNC mode: 0 would acknowledge writes that no replica holds, which is how
    /// split brain loses data.
    #[serde(default = "defaults::min_sync_replicas")]
    pub min_sync_replicas: u32,

    /// How often the leader sends heartbeats. Must be well below `election_timeout_min_ms`.
    #[serde(default = "defaults::heartbeat_interval_ms")]
    pub heartbeat_interval_ms: u64,
    /// Lower bound of the randomised election timeout.
    ///
    /// Failover arithmetic, which the defaults are chosen for: the leader lease lasts
    /// `election_timeout_max_ms`, and a follower campaigns once it has heard nothing for the
    /// lease plus a random delay in `[election_timeout_min_ms, election_timeout_max_ms)`.
    /// Counting from the last heartbeat a new leader is elected after 3.3 s + [3.0 s, 3.3 s),
    /// i.e. 6.3-6.6 s plus a round trip and the pre-vote and vote rounds: well inside the 10 s
    /// failover target and, measured, under 7 s at p99 (BENCHMARKS.md, `failover`). The max is
    /// 3300 rather than 3500 because the lease counts twice: 3500 measured 7.15 s at p99. A much
    /// larger `election_timeout_max_ms` breaks the 10 s target.
    #[serde(default = "defaults::election_timeout_min_ms")]
    pub election_timeout_min_ms: u64,
    /// Upper bound (exclusive) of the randomised election timeout, and the leader lease. See
    /// `election_timeout_min_ms` for the failover arithmetic. The spread between min and max is
    /// what keeps followers from campaigning at the same moment and splitting the vote; when
    /// they do split, the preferred candidate campaigns again at once (consensus/split_vote.rs)
    /// rather than after another election timeout.
    #[serde(default = "defaults::election_timeout_max_ms")]
    pub election_timeout_max_ms: u64,
    /// How long the leader waits for replica confirmations before a SYNC write fails (or a
    /// SEMI_SYNC write degrades to asynchronous).
    #[serde(default = "defaults::replication_timeout_ms")]
    pub replication_timeout_ms: u64,
    /// Most records shipped to a follower in one message.
    #[serde(default = "defaults::batch_size")]
    pub batch_size: u64,
    /// Longest a partial batch waits for more records before it is shipped; trades a little
    /// latency for fewer, larger messages. 0 ships immediately.
    #[serde(default = "defaults::batch_timeout_ms")]
    pub batch_timeout_ms: u64,
    /// The leader raises a lag alert for a follower more than this many entries behind its
    /// last LSN. 0 turns the entry threshold off.
    #[serde(default = "defaults::lag_alert_threshold_entries")]
    pub lag_alert_threshold_entries: u64,
    /// The leader raises a lag alert for a follower whose oldest missing entry has waited
    /// longer than this. 0 turns the time threshold off; otherwise it must be at least
    /// `heartbeat_interval_ms`, because lag is checked on the heartbeat cadence.
    #[serde(default = "defaults::lag_alert_threshold_ms")]
    pub lag_alert_threshold_ms: u64,

    /// Directory holding the WAL segments.
    #[serde(default = "defaults::wal_directory")]
    pub wal_directory: PathBuf,
    /// Size at which a WAL segment is closed and a new one started. At least 4096.
    #[serde(default = "defaults::wal_segment_size_bytes")]
    pub wal_segment_size_bytes: u64,
    /// Closed segments kept after they are no longer needed by any follower or slot. 0 keeps
    /// every segment (the safe default: nothing is deleted until archiving is configured).
    /// In a cluster, openraft purges its log behind each snapshot; that purge deletes WAL
    /// segments only when this is above 0, and then keeps this many behind the purge point.
    #[serde(default = "defaults::wal_retention_segments")]
    pub wal_retention_segments: u64,
    /// fsync the WAL before acknowledging each commit. Turning it off trades durability of the
    /// most recent writes for throughput.
    #[serde(default = "defaults::wal_sync_on_commit")]
    pub wal_sync_on_commit: bool,
    /// Only used when `wal_sync_on_commit = false`: fsync the WAL every this many milliseconds.
    /// 0 means never fsync explicitly (the OS flushes when it likes).
    #[serde(default = "defaults::wal_sync_interval_ms")]
    pub wal_sync_interval_ms: u64,
    /// What recovery does with a damaged record; see [`WalRecoveryMode`].
    #[serde(default)]
    pub wal_recovery_mode: WalRecoveryMode,
    /// Keep the active WAL segment zero-filled a few MiB past its last record, so commit
    /// fdatasyncs overwrite allocated blocks instead of also committing block allocation
    /// (cheaper on ext4/XFS; no gain on copy-on-write filesystems such as btrfs or ZFS).
    #[serde(default = "defaults::wal_zero_fill_ahead")]
    pub wal_zero_fill_ahead: bool,

    /// Compress WAL batches with `compression_algorithm`.
    #[serde(default = "defaults::enable_wal_compression")]
    pub enable_wal_compression: bool,
    /// `"zstd"` or `"none"`; more algorithms may be added later.
    #[serde(default)]
    pub compression_algorithm: CompressionAlgorithm,
    /// zstd level, 1..=22. The default is 1, not zstd's own 3: every frame is compressed on
    /// the commit path of every node, and on this project's reference machine level 1
    /// compresses the generated documents 4.11x at 423 MB/s against level 3's 4.39x at
    /// 281 MB/s; in the 3-node `cluster-max` benchmark it cut CPU per write by ~15 %
    /// (BENCHMARKS.md). Raise it where disk or archive space costs more than CPU.
    #[serde(default = "defaults::compression_level")]
    pub compression_level: i32,
    /// Batches smaller than this are stored uncompressed: compressing a few hundred bytes costs
    /// more CPU than it saves bandwidth.
    #[serde(default = "defaults::compression_min_batch_bytes")]
    pub compression_min_batch_bytes: u64,

    /// This node's PEM certificate, presented to peers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_path: Option<PathBuf>,
    /// Private key of `cert_path`, PEM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_path: Option<PathBuf>,
    /// CA bundle (PEM) used to verify peer certificates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_path: Option<PathBuf>,
    /// Peers must authenticate each other with certificates (mutual TLS). On by default: a
    /// replication port accepts writes, so an unauthenticated one is a hole.
    #[serde(default = "defaults::require_mtls")]
    pub require_mtls: bool,
    /// Development escape hatch: allow plaintext, unauthenticated peer connections and lift the
    /// certificate requirement. Never enable in production.
    #[serde(default)]
    pub allow_plaintext_dev: bool,
    /// This node's ed25519 private key (PKCS#8 PEM, or a raw 32-byte seed), which signs its
    /// vote and pre-vote requests. Votes are signed in plaintext development mode too, so a
    /// node that runs over the network needs it whenever peers are configured; create one with
    /// `replicad keygen --out PATH` (or `openssl genpkey -algorithm ed25519 -out PATH`) and give
    /// the printed public key to the other nodes as their `peers[].public_key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_key_path: Option<PathBuf>,

    /// The other members of the cluster. Empty for a single node.
    #[serde(default)]
    pub peers: Vec<PeerConfig>,
}

/// Defaults, in one place so `Default` and serde's per-field defaults cannot disagree.
mod defaults {
    use std::path::PathBuf;

    pub(super) fn listen_address() -> String {
        "127.0.0.1:7400".to_owned()
    }
    pub(super) fn min_sync_replicas() -> u32 {
        1
    }
    pub(super) fn heartbeat_interval_ms() -> u64 {
        1000
    }
    pub(super) fn election_timeout_min_ms() -> u64 {
        3000
    }
    pub(super) fn election_timeout_max_ms() -> u64 {
        3300
    }
    pub(super) fn replication_timeout_ms() -> u64 {
        10_000
    }
    pub(super) fn batch_size() -> u64 {
        1000
    }
    pub(super) fn batch_timeout_ms() -> u64 {
        10
    }
    pub(super) fn lag_alert_threshold_entries() -> u64 {
        10_000
    }
    pub(super) fn lag_alert_threshold_ms() -> u64 {
        5000
    }
    pub(super) fn wal_directory() -> PathBuf {
        PathBuf::from("./wal")
    }
    pub(super) fn wal_segment_size_bytes() -> u64 {
        64 * 1024 * 1024
    }
    pub(super) fn wal_retention_segments() -> u64 {
        0
    }
    pub(super) fn wal_sync_on_commit() -> bool {
        true
    }
    pub(super) fn wal_sync_interval_ms() -> u64 {
        0
    }
    pub(super) fn enable_wal_compression() -> bool {
        true
    }
    pub(super) fn wal_zero_fill_ahead() -> bool {
        true
    }
    pub(super) fn compression_level() -> i32 {
        1
    }
    pub(super) fn compression_min_batch_bytes() -> u64 {
        1024
    }
    pub(super) fn require_mtls() -> bool {
        true
    }
}

impl Default for ReplicationConfig {
    /// A single node (`node_id = 1`, no peers) with ThemisDB's defaults. It validates as is,
    /// because a node without peers needs no certificates.
    fn default() -> Self {
        Self {
            node_id: 1,
            listen_address: defaults::listen_address(),
            mode: ReplicationMode::default(),
            min_sync_replicas: defaults::min_sync_replicas(),
            heartbeat_interval_ms: defaults::heartbeat_interval_ms(),
            election_timeout_min_ms: defaults::election_timeout_min_ms(),
            election_timeout_max_ms: defaults::election_timeout_max_ms(),
            replication_timeout_ms: defaults::replication_timeout_ms(),
            batch_size: defaults::batch_size(),
            batch_timeout_ms: defaults::batch_timeout_ms(),
            lag_alert_threshold_entries: defaults::lag_alert_threshold_entries(),
            lag_alert_threshold_ms: defaults::lag_alert_threshold_ms(),
            wal_directory: defaults::wal_directory(),
            wal_segment_size_bytes: defaults::wal_segment_size_bytes(),
            wal_retention_segments: defaults::wal_retention_segments(),
            wal_sync_on_commit: defaults::wal_sync_on_commit(),
            wal_sync_interval_ms: defaults::wal_sync_interval_ms(),
            wal_recovery_mode: WalRecoveryMode::default(),
            wal_zero_fill_ahead: defaults::wal_zero_fill_ahead(),
            enable_wal_compression: defaults::enable_wal_compression(),
            compression_algorithm: CompressionAlgorithm::default(),
            compression_level: defaults::compression_level(),
            compression_min_batch_bytes: defaults::compression_min_batch_bytes(),
            cert_path: None,
            key_path: None,
            ca_path: None,
            require_mtls: defaults::require_mtls(),
            allow_plaintext_dev: false,
            node_key_path: None,
            peers: Vec::new(),
        }
    }
}

/// One thing wrong with a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The key to change, as written in TOML: `heartbeat_interval_ms`, `peers[1].address`.
    pub field: String,
    /// What is wrong and what to do about it.
    pub message: String,
    /// 1-based line of the key in the TOML source, when the problem came from a document and
    /// the key appears in it.
    pub line: Option<usize>,
}

impl ConfigProblem {
    pub(crate) fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
            line: None,
        }
    }
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{} (line {line}): {}", self.field, self.message),
            None => write!(f, "{}: {}", self.field, self.message),
        }
    }
}

/// Why a configuration could not be loaded or is not usable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read replication config file {}: {source}", path.display())]
    Io {
        /// The file that was being read.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The text is not valid TOML (nothing else was checked).
    #[error("replication config is not valid TOML ({}): {message}", location(*line, *column))]
    Parse {
        /// 1-based line of the error, when known.
        line: Option<usize>,
        /// 1-based column (in characters) of the error, when known.
        column: Option<usize>,
        /// What the TOML parser expected.
        message: String,
    },
    /// The document parsed, but some values are missing, unknown, mistyped or inconsistent.
    /// Every problem found is listed, not just the first.
    #[error("{}", list_problems(problems))]
    Invalid {
        /// All problems, in the order of the document where they have a line.
        problems: Vec<ConfigProblem>,
    },
    /// The configuration cannot be written as TOML. The current field types always can be;
    /// this exists so that a future field type TOML cannot express becomes an error, not a
    /// panic.
    #[error("cannot write replication config as TOML: {message}")]
    Serialize {
        /// What the TOML writer rejected.
        message: String,
    },
}

fn location(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(line), Some(column)) => format!("line {line}, column {column}"),
        (Some(line), None) => format!("line {line}"),
        _ => "unknown position".to_owned(),
    }
}

fn list_problems(problems: &[ConfigProblem]) -> String {
    let mut out = match problems.len() {
        1 => "replication config has 1 problem:".to_owned(),
        n => format!("replication config has {n} problems:"),
    };
    for problem in problems {
        out.push_str("\n  ");
        out.push_str(&problem.to_string());
    }
    out
}

impl ReplicationConfig {
    /// Parses and validates a TOML document.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Parse`] for a TOML syntax error; otherwise [`ConfigError::Invalid`] listing
    /// every unknown key (with a suggestion when a known key is close), wrongly typed value,
    /// missing required key and failed [`validate`](Self::validate) check at once.
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        load::from_toml_str(text)
    }

    /// Reads, parses and validates a TOML file; see [`from_toml_str`](Self::from_toml_str).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Io`] (with the path) if the file cannot be read or is not UTF-8, else as
    /// [`from_toml_str`](Self::from_toml_str).
    pub fn from_toml_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml_str(&text)
    }

    /// Writes the configuration as TOML that [`from_toml_str`](Self::from_toml_str) reads back
    /// to an equal value. Unset optional paths are omitted.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Serialize`] if a value cannot be expressed in TOML (not the case for any
    /// current field).
    pub fn to_toml_string(&self) -> Result<String, ConfigError> {
        toml::to_string(self).map_err(|e| ConfigError::Serialize {
            message: e.to_string(),
        })
    }

    /// Checks the values for consistency.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] listing every problem found.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let problems = validate::problems(self, &Default::default());
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid { problems })
        }
    }

    /// [`validate`](Self::validate) plus what a node that talks to its peers over the network
    /// needs on top: when peers are configured, `node_key_path` (this node signs its votes) and
    /// every peer's `public_key` (to verify theirs). Kept apart from `validate` because a config
    /// that is only loaded, or runs a cluster in one process, needs no keys, and existing files
    /// must keep loading.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] listing every problem found.
    pub fn validate_for_network(&self) -> Result<(), ConfigError> {
        let mut problems = validate::problems(self, &Default::default());
        problems.extend(validate::network_problems(self));
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid { problems })
        }
    }

    /// Legal but risky settings worth logging at startup (plaintext transport, a mode that
    /// cannot deliver what its name suggests, a failover budget above 10 s, ...).
    pub fn warnings(&self) -> Vec<String> {
        validate::warnings(self)
    }

    /// Options for opening the WAL.
    ///
    /// Durability: `wal_sync_on_commit = true` fsyncs every commit; otherwise
    /// `wal_sync_interval_ms > 0` fsyncs on that period and 0 leaves flushing to the OS.
    /// Compression is on only when enabled *and* the algorithm is zstd.
    pub fn wal_options(&self) -> WalOptions {
        let durability = match (self.wal_sync_on_commit, self.wal_sync_interval_ms) {
            (true, _) => Durability::EveryCommit,
            (false, 0) => Durability::None,
            (false, ms) => Durability::Interval(Duration::from_millis(ms)),
        };
        WalOptions {
            dir: self.wal_directory.clone(),
            segment_size_bytes: self.wal_segment_size_bytes,
            durability,
            compression: Compression {
                enabled: self.enable_wal_compression
                    && self.compression_algorithm == CompressionAlgorithm::Zstd,
                level: self.compression_level,
                min_batch_bytes: usize::try_from(self.compression_min_batch_bytes)
                    .unwrap_or(usize::MAX),
            },
            recovery_mode: match self.wal_recovery_mode {
                WalRecoveryMode::TolerateTornTail => RecoveryMode::TolerateTornTail,
                WalRecoveryMode::AbsoluteConsistency => RecoveryMode::AbsoluteConsistency,
            },
            zero_fill_ahead: self.wal_zero_fill_ahead,
        }
    }

    /// `heartbeat_interval_ms` as a `Duration`.
    pub fn heartbeat_interval(&self) -> Duration {
        Duration::from_millis(self.heartbeat_interval_ms)
    }

    /// The half-open range election timeouts are drawn from,
    /// `[election_timeout_min_ms, election_timeout_max_ms)`.
    pub fn election_timeout_range(&self) -> Range<Duration> {
        Duration::from_millis(self.election_timeout_min_ms)
            ..Duration::from_millis(self.election_timeout_max_ms)
    }

    /// `replication_timeout_ms` as a `Duration`.
    pub fn replication_timeout(&self) -> Duration {
        Duration::from_millis(self.replication_timeout_ms)
    }

    /// `batch_timeout_ms` as a `Duration`.
    pub fn batch_timeout(&self) -> Duration {
        Duration::from_millis(self.batch_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full_config() -> ReplicationConfig {
        ReplicationConfig {
            node_id: 7,
            listen_address: "0.0.0.0:7500".into(),
            mode: ReplicationMode::SemiSync,
            min_sync_replicas: 2,
            heartbeat_interval_ms: 500,
            election_timeout_min_ms: 2000,
            election_timeout_max_ms: 2600,
            replication_timeout_ms: 4000,
            batch_size: 64,
            batch_timeout_ms: 5,
            lag_alert_threshold_entries: 500,
            lag_alert_threshold_ms: 1500,
            wal_directory: "/var/lib/repl/wal".into(),
            wal_segment_size_bytes: 16 * 1024 * 1024,
            wal_retention_segments: 12,
            wal_sync_on_commit: false,
            wal_sync_interval_ms: 20,
            wal_recovery_mode: WalRecoveryMode::AbsoluteConsistency,
            wal_zero_fill_ahead: false,
            enable_wal_compression: false,
            compression_algorithm: CompressionAlgorithm::None,
            compression_level: 9,
            compression_min_batch_bytes: 4096,
            cert_path: Some("/etc/repl/node.pem".into()),
            key_path: Some("/etc/repl/node.key".into()),
            ca_path: Some("/etc/repl/ca.pem".into()),
            require_mtls: true,
            allow_plaintext_dev: false,
            node_key_path: Some("/etc/repl/node.ed25519".into()),
            peers: vec![
                PeerConfig {
                    node_id: 8,
                    address: "10.0.0.8:7500".into(),
                    public_key: Some(
                        crate::security::NodeKey::from_seed([8; 32])
                            .public_key()
                            .to_hex(),
                    ),
                },
                PeerConfig {
                    node_id: 9,
                    address: "[fd00::9]:7500".into(),
                    public_key: Some(
                        crate::security::NodeKey::from_seed([9; 32])
                            .public_key()
                            .to_pem(),
                    ),
                },
            ],
        }
    }

    #[test]
    fn defaults_match_themisdb() {
        let c = ReplicationConfig::default();
        assert_eq!(c.node_id, 1);
        assert!(c.peers.is_empty());
        assert_eq!(c.mode, ReplicationMode::Async);
        assert_eq!(c.heartbeat_interval_ms, 1000);
        assert_eq!(c.election_timeout_min_ms, 3000);
        assert_eq!(c.election_timeout_max_ms, 3300);
        assert_eq!(c.replication_timeout_ms, 10_000);
        assert_eq!(c.batch_size, 1000);
        assert_eq!(c.batch_timeout_ms, 10);
        assert_eq!(c.lag_alert_threshold_entries, 10_000);
        assert_eq!(c.lag_alert_threshold_ms, 5000);
        assert_eq!(c.wal_directory, PathBuf::from("./wal"));
        assert_eq!(c.wal_segment_size_bytes, 64 * 1024 * 1024);
        assert_eq!(c.wal_retention_segments, 0);
        assert!(c.wal_sync_on_commit);
        assert_eq!(c.wal_sync_interval_ms, 0);
        assert_eq!(c.min_sync_replicas, 1);
        assert!(c.enable_wal_compression);
        assert_eq!(c.compression_algorithm, CompressionAlgorithm::Zstd);
        assert_eq!(c.compression_level, 1);
        assert_eq!(c.compression_min_batch_bytes, 1024);
        assert_eq!(c.wal_recovery_mode, WalRecoveryMode::TolerateTornTail);
        assert!(c.wal_zero_fill_ahead);
        assert_eq!(
            (&c.cert_path, &c.key_path, &c.ca_path),
            (&None, &None, &None)
        );
        assert!(c.require_mtls);
        assert!(!c.allow_plaintext_dev);
        assert_eq!(c.listen_address, "127.0.0.1:7400");
        assert!(c.validate().is_ok());
        assert!(c.warnings().is_empty(), "{:?}", c.warnings());
    }

    #[test]
    fn minimal_document_gets_the_defaults() {
        let c = ReplicationConfig::from_toml_str("node_id = 1\n").unwrap();
        assert_eq!(c, ReplicationConfig::default());
        // The derived Deserialize applies the same defaults.
        let derived: ReplicationConfig = toml::from_str("node_id = 1\n").unwrap();
        assert_eq!(derived, c);
    }

    #[test]
    fn toml_round_trip_of_every_field() {
        let original = full_config();
        original.validate().unwrap();
        let text = original.to_toml_string().unwrap();
        let back = ReplicationConfig::from_toml_str(&text).unwrap();
        assert_eq!(back, original);
        let derived: ReplicationConfig = toml::from_str(&text).unwrap();
        assert_eq!(derived, original);
    }

    #[test]
    fn modes_use_themisdb_spelling() {
        for (mode, text) in [
            (ReplicationMode::Sync, "SYNC"),
            (ReplicationMode::SemiSync, "SEMI_SYNC"),
            (ReplicationMode::Async, "ASYNC"),
        ] {
            assert_eq!(mode.to_string(), text);
            let doc = format!("node_id = 1\nmode = \"{text}\"\n");
            assert_eq!(ReplicationConfig::from_toml_str(&doc).unwrap().mode, mode);
        }
    }

    #[test]
    fn known_keys_cover_every_serialized_field() {
        let text = full_config().to_toml_string().unwrap();
        let table: toml::Table = toml::from_str(&text).unwrap();
        let mut serialized: Vec<&str> = table.keys().map(String::as_str).collect();
        serialized.sort_unstable();
        let mut known = load::TOP_LEVEL_KEYS.to_vec();
        known.sort_unstable();
        assert_eq!(serialized, known);

        let peer = table["peers"].as_array().unwrap()[0].as_table().unwrap();
        let mut peer_keys: Vec<&str> = peer.keys().map(String::as_str).collect();
        peer_keys.sort_unstable();
        let mut known_peer = load::PEER_KEYS.to_vec();
        known_peer.sort_unstable();
        assert_eq!(peer_keys, known_peer);
    }

    #[test]
    fn wal_options_map_durability() {
        let mut c = ReplicationConfig::default();
        let o = c.wal_options();
        assert!(matches!(o.durability, Durability::EveryCommit));
        assert_eq!(o.dir, PathBuf::from("./wal"));
        assert_eq!(o.segment_size_bytes, 64 * 1024 * 1024);
        assert!(o.compression.enabled);
        assert_eq!(o.compression.level, 1);
        assert_eq!(o.compression.min_batch_bytes, 1024);
        assert!(matches!(o.recovery_mode, RecoveryMode::TolerateTornTail));

        c.wal_sync_interval_ms = 50; // ignored while syncing every commit
        assert!(matches!(
            c.wal_options().durability,
            Durability::EveryCommit
        ));
        c.wal_sync_on_commit = false;
        assert!(matches!(
            c.wal_options().durability,
            Durability::Interval(d) if d == Duration::from_millis(50)
        ));
        c.wal_sync_interval_ms = 0;
        assert!(matches!(c.wal_options().durability, Durability::None));
    }

    #[test]
    fn wal_options_map_compression_and_recovery() {
        let c = full_config();
        let o = c.wal_options();
        assert!(!o.compression.enabled);
        assert!(matches!(o.recovery_mode, RecoveryMode::AbsoluteConsistency));

        let c = ReplicationConfig {
            compression_algorithm: CompressionAlgorithm::None,
            ..ReplicationConfig::default()
        };
        assert!(!c.wal_options().compression.enabled);
    }

    #[test]
    fn duration_helpers() {
        let c = ReplicationConfig::default();
        assert_eq!(c.heartbeat_interval(), Duration::from_secs(1));
        assert_eq!(
            c.election_timeout_range(),
            Duration::from_millis(3000)..Duration::from_millis(3300)
        );
        assert_eq!(c.replication_timeout(), Duration::from_secs(10));
        assert_eq!(c.batch_timeout(), Duration::from_millis(10));
    }

    #[test]
    fn io_error_names_the_file() {
        let err = ReplicationConfig::from_toml_file("/nonexistent/dir/repl.toml").unwrap_err();
        assert!(matches!(err, ConfigError::Io { .. }), "{err:?}");
        assert!(
            err.to_string().contains("/nonexistent/dir/repl.toml"),
            "{err}"
        );
    }

    #[test]
    fn loads_from_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("repl.toml");
        std::fs::write(&path, full_config().to_toml_string().unwrap()).unwrap();
        assert_eq!(
            ReplicationConfig::from_toml_file(&path).unwrap(),
            full_config()
        );
    }

    #[test]
    fn integers_beyond_i64_round_trip() {
        // TOML integers are i64, but the toml crate reads and writes the full u64 range; ids
        // from a u64 space must survive.
        let c = ReplicationConfig {
            node_id: u64::MAX,
            ..ReplicationConfig::default()
        };
        let text = c.to_toml_string().unwrap();
        assert_eq!(ReplicationConfig::from_toml_str(&text).unwrap(), c);
    }
}
