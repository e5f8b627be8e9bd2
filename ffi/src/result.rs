//! `repl_result`: the stable error codes of the C ABI, their messages, and the mapping from the
//! core's error types.

use replication_core::clock::{ClockError, DuplicateNode};
use replication_core::config::ConfigError;
use replication_core::consensus::ConsensusError;
use replication_core::WalError;

/// Result code returned by every fallible `repl_*` function.
///
/// Codes are stable and numbered in blocks per subsystem: 0 is success, 1xx general argument
/// and handle errors, 2xx WAL, 3xx configuration, 4xx clocks, 5xx cluster (`repl_node`). A code, once published, keeps
/// its meaning forever; retired codes are never reused. New codes may be added, so treat an
/// unknown code as a generic failure (`repl_error_message` still describes it).
///
/// `repl_error_message` gives a fixed text for a code; `repl_last_error_detail` gives the full
/// text of the most recent failure on the calling thread (file names, offsets, LSNs).
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[must_use]
pub enum repl_result {
    /// Success.
    REPL_OK = 0,

    /// A required pointer argument was NULL (or a (pointer, length) pair had a NULL pointer
    /// with a non-zero length).
    REPL_ERR_NULL_ARGUMENT = 100,
    /// A string argument was not valid UTF-8.
    REPL_ERR_INVALID_UTF8 = 101,
    /// An argument had a value the function does not accept (misaligned pointer, length above
    /// `PTRDIFF_MAX`, ...). The detail text names the argument.
    REPL_ERR_INVALID_ARGUMENT = 102,
    /// The caller's output buffer is too small; the function's documentation says how to learn
    /// the size needed.
    REPL_ERR_BUFFER_TOO_SMALL = 103,
    /// The library hit an internal bug (a Rust panic) and stopped it at the API boundary. The
    /// handle involved may be in an inconsistent state: close and free it.
    REPL_ERR_PANIC = 104,
    /// The handle was closed (e.g. `repl_wal_close`); only its free function may still be
    /// called.
    REPL_ERR_HANDLE_CLOSED = 105,

    /// An operating-system I/O call failed (EIO, EACCES, ...). The detail names the file.
    REPL_ERR_WAL_IO = 200,
    /// WAL bytes on disk fail their checksum or structure. The detail names the file and byte
    /// offset.
    REPL_ERR_WAL_CORRUPT = 201,
    /// A record passed to an append cannot be stored (too large, empty batch, operation 0).
    REPL_ERR_WAL_INVALID_RECORD = 202,
    /// An LSN argument is outside the range the WAL holds.
    REPL_ERR_WAL_LSN_OUT_OF_RANGE = 203,
    /// An earlier write or fsync failed, so the WAL refuses writes; close, free and reopen it.
    REPL_ERR_WAL_POISONED = 204,
    /// The `repl_wal_options` are unusable (segment too small, unknown durability, ...).
    REPL_ERR_WAL_INVALID_OPTIONS = 205,
    /// The file system is full (ENOSPC). Like other write failures, this poisons the WAL.
    REPL_ERR_WAL_NO_SPACE = 206,
    /// The WAL directory is already open, by this process or another.
    REPL_ERR_WAL_DIR_LOCKED = 207,

    /// A configuration file could not be read (missing, unreadable, not UTF-8). The detail
    /// names the file and the OS error.
    REPL_ERR_CONFIG_IO = 300,
    /// A configuration is not valid TOML. The detail gives the line and column.
    REPL_ERR_CONFIG_PARSE = 301,
    /// A configuration has missing, unknown, mistyped or inconsistent values. The detail lists
    /// every problem, one per line, each with its key and (when known) its line.
    REPL_ERR_CONFIG_INVALID = 302,

    /// A remote HLC timestamp is further ahead of the local clock than the max drift allows;
    /// the local clock was not advanced.
    REPL_ERR_CLOCK_DRIFT_EXCEEDED = 400,
    /// A vector clock was given two counters for the same node id.
    REPL_ERR_CLOCK_DUPLICATE_NODE = 401,

    /// The write was not appended to the log and will never commit: retrying it (on the
    /// leader) is safe. The detail names the leader when one is known.
    REPL_ERR_CLUSTER_NOT_DURABLE = 500,
    /// This operation must run on the leader; `repl_node_leader` names it when one is known.
    REPL_ERR_CLUSTER_NOT_LEADER = 501,
    /// The write entered the log but its acknowledgements were not gathered in time: it may
    /// or may not commit. Deduplicate before retrying. The detail gives its LSN when known.
    REPL_ERR_CLUSTER_COMMIT_UNKNOWN = 502,
    /// A wait (`repl_node_wait_for_lsn`, a membership change, ...) did not finish in time.
    REPL_ERR_CLUSTER_TIMEOUT = 503,
    /// A bounded-staleness read could not be served within its bound; nothing was read.
    REPL_ERR_CLUSTER_STALE_READ = 504,
    /// A linearizable read could not confirm leadership with a quorum; nothing was read.
    REPL_ERR_CLUSTER_QUORUM_UNAVAILABLE = 505,
    /// The cluster refused the request in its current state (SYNC with min_sync_replicas 0,
    /// no voter to hand leadership to, unknown member, ...). The detail says why.
    REPL_ERR_CLUSTER_INVALID_REQUEST = 506,
    /// A blocking `repl_node_*` call was made from inside an apply callback (or another
    /// library thread), where waiting would stall the node. Hand the work to another thread.
    REPL_ERR_CLUSTER_REENTRANT_CALL = 507,
    /// The node's storage (WAL, consensus state) failed. The detail names the cause.
    REPL_ERR_CLUSTER_STORAGE = 508,
    /// The consensus layer failed (network, internal state). The detail names the cause.
    REPL_ERR_CLUSTER_CONSENSUS = 509,
}

use repl_result::*;

impl repl_result {
    /// Every code, in numeric order.
    pub const ALL: &'static [repl_result] = &[
        REPL_OK,
        REPL_ERR_NULL_ARGUMENT,
        REPL_ERR_INVALID_UTF8,
        REPL_ERR_INVALID_ARGUMENT,
        REPL_ERR_BUFFER_TOO_SMALL,
        REPL_ERR_PANIC,
        REPL_ERR_HANDLE_CLOSED,
        REPL_ERR_WAL_IO,
        REPL_ERR_WAL_CORRUPT,
        REPL_ERR_WAL_INVALID_RECORD,
        REPL_ERR_WAL_LSN_OUT_OF_RANGE,
        REPL_ERR_WAL_POISONED,
        REPL_ERR_WAL_INVALID_OPTIONS,
        REPL_ERR_WAL_NO_SPACE,
        REPL_ERR_WAL_DIR_LOCKED,
        REPL_ERR_CONFIG_IO,
        REPL_ERR_CONFIG_PARSE,
        REPL_ERR_CONFIG_INVALID,
        REPL_ERR_CLOCK_DRIFT_EXCEEDED,
        REPL_ERR_CLOCK_DUPLICATE_NODE,
        REPL_ERR_CLUSTER_NOT_DURABLE,
        REPL_ERR_CLUSTER_NOT_LEADER,
        REPL_ERR_CLUSTER_COMMIT_UNKNOWN,
        REPL_ERR_CLUSTER_TIMEOUT,
        REPL_ERR_CLUSTER_STALE_READ,
        REPL_ERR_CLUSTER_QUORUM_UNAVAILABLE,
        REPL_ERR_CLUSTER_INVALID_REQUEST,
        REPL_ERR_CLUSTER_REENTRANT_CALL,
        REPL_ERR_CLUSTER_STORAGE,
        REPL_ERR_CLUSTER_CONSENSUS,
    ];

    /// The code with numeric value `code`, if there is one. C may hand us any integer, so this
    /// is the only way a `u32` from C becomes a `repl_result`.
    pub fn from_code(code: u32) -> Option<repl_result> {
        Self::ALL.iter().copied().find(|r| *r as u32 == code)
    }

    /// Fixed, one-line description of the code. Stable enough to show users; not meant to be
    /// parsed.
    pub fn message(self) -> &'static str {
        match self {
            REPL_OK => "success",
            REPL_ERR_NULL_ARGUMENT => "a required pointer argument was NULL",
            REPL_ERR_INVALID_UTF8 => "a string argument is not valid UTF-8",
            REPL_ERR_INVALID_ARGUMENT => "an argument has a value the function does not accept",
            REPL_ERR_BUFFER_TOO_SMALL => "the output buffer is too small",
            REPL_ERR_PANIC => {
                "internal error in the replication library (a bug; please report it); \
                 close and free the handle involved"
            }
            REPL_ERR_HANDLE_CLOSED => "the handle was closed; only its free function may be called",
            REPL_ERR_WAL_IO => "WAL I/O error",
            REPL_ERR_WAL_CORRUPT => "WAL corruption detected",
            REPL_ERR_WAL_INVALID_RECORD => "invalid WAL record",
            REPL_ERR_WAL_LSN_OUT_OF_RANGE => "LSN is not in the WAL",
            REPL_ERR_WAL_POISONED => {
                "the WAL refuses writes after an earlier I/O failure; close, free and reopen it"
            }
            REPL_ERR_WAL_INVALID_OPTIONS => "invalid WAL options",
            REPL_ERR_WAL_NO_SPACE => "no space left on the device holding the WAL",
            REPL_ERR_WAL_DIR_LOCKED => {
                "the WAL directory is already open (by this or another process)"
            }
            REPL_ERR_CONFIG_IO => "cannot read the replication configuration",
            REPL_ERR_CONFIG_PARSE => "the replication configuration is not valid TOML",
            REPL_ERR_CONFIG_INVALID => "the replication configuration has invalid values",
            REPL_ERR_CLOCK_DRIFT_EXCEEDED => {
                "remote HLC timestamp exceeds the allowed clock drift; the clock was not advanced"
            }
            REPL_ERR_CLOCK_DUPLICATE_NODE => "a vector clock lists the same node more than once",
            REPL_ERR_CLUSTER_NOT_DURABLE => {
                "the write was not appended and will not commit; it is safe to retry"
            }
            REPL_ERR_CLUSTER_NOT_LEADER => "this node is not the leader; send the request there",
            REPL_ERR_CLUSTER_COMMIT_UNKNOWN => {
                "the outcome of the write is unknown; it may still commit, so deduplicate \
                 before retrying"
            }
            REPL_ERR_CLUSTER_TIMEOUT => "the cluster operation timed out",
            REPL_ERR_CLUSTER_STALE_READ => {
                "this node is too far behind the leader for the requested staleness bound"
            }
            REPL_ERR_CLUSTER_QUORUM_UNAVAILABLE => {
                "the leader could not confirm its leadership with a quorum; nothing was read"
            }
            REPL_ERR_CLUSTER_INVALID_REQUEST => "the cluster refused the request",
            REPL_ERR_CLUSTER_REENTRANT_CALL => {
                "blocking node calls are not allowed from an apply callback or library thread"
            }
            REPL_ERR_CLUSTER_STORAGE => "the node's storage failed",
            REPL_ERR_CLUSTER_CONSENSUS => "the consensus layer failed",
        }
    }
}

/// A failed call: its code and the full text for `repl_last_error_detail`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub code: repl_result,
    pub detail: String,
    /// Leave the thread's last-error detail alone: set by the functions that *read* the
    /// detail, so that asking for it with a too-small buffer does not replace it.
    pub quiet: bool,
}

impl Failure {
    pub fn new(code: repl_result, detail: impl Into<String>) -> Self {
        Failure {
            code,
            detail: detail.into(),
            quiet: false,
        }
    }

    pub fn quiet(self) -> Self {
        Failure {
            quiet: true,
            ..self
        }
    }
}

pub(crate) type FfiResult<T> = Result<T, Failure>;

impl From<WalError> for Failure {
    fn from(e: WalError) -> Self {
        let code = match &e {
            WalError::Io { source, .. } => match source.kind() {
                std::io::ErrorKind::StorageFull => REPL_ERR_WAL_NO_SPACE,
                _ => REPL_ERR_WAL_IO,
            },
            WalError::Locked { .. } => REPL_ERR_WAL_DIR_LOCKED,
            WalError::Corrupt { .. } => REPL_ERR_WAL_CORRUPT,
            WalError::InvalidRecord(_) => REPL_ERR_WAL_INVALID_RECORD,
            WalError::LsnOutOfRange { .. } => REPL_ERR_WAL_LSN_OUT_OF_RANGE,
            WalError::Poisoned(_) => REPL_ERR_WAL_POISONED,
            WalError::Closed => REPL_ERR_HANDLE_CLOSED,
            WalError::InvalidOptions(_) => REPL_ERR_WAL_INVALID_OPTIONS,
        };
        Failure::new(code, e.to_string())
    }
}

impl From<ClockError> for Failure {
    fn from(e: ClockError) -> Self {
        let code = match &e {
            ClockError::DriftExceeded { .. } => REPL_ERR_CLOCK_DRIFT_EXCEEDED,
        };
        Failure::new(code, e.to_string())
    }
}

impl From<ConfigError> for Failure {
    fn from(e: ConfigError) -> Self {
        let code = match &e {
            ConfigError::Io { .. } => REPL_ERR_CONFIG_IO,
            ConfigError::Parse { .. } => REPL_ERR_CONFIG_PARSE,
            ConfigError::Invalid { .. } => REPL_ERR_CONFIG_INVALID,
            // Only writing a config as TOML produces it, which the C API does not offer; a
            // value that cannot be written is an invalid value.
            ConfigError::Serialize { .. } => REPL_ERR_CONFIG_INVALID,
        };
        // For `Invalid` the text lists every problem, one per line.
        Failure::new(code, e.to_string())
    }
}

impl From<DuplicateNode> for Failure {
    fn from(e: DuplicateNode) -> Self {
        Failure::new(REPL_ERR_CLOCK_DUPLICATE_NODE, e.to_string())
    }
}

impl From<ConsensusError> for Failure {
    fn from(e: ConsensusError) -> Self {
        let code = match &e {
            ConsensusError::NotDurable { .. } => REPL_ERR_CLUSTER_NOT_DURABLE,
            ConsensusError::Unknown { .. } => REPL_ERR_CLUSTER_COMMIT_UNKNOWN,
            ConsensusError::NotLeader { .. } => REPL_ERR_CLUSTER_NOT_LEADER,
            ConsensusError::Invalid(_) => REPL_ERR_CLUSTER_INVALID_REQUEST,
            ConsensusError::Stale { .. } => REPL_ERR_CLUSTER_STALE_READ,
            ConsensusError::QuorumUnavailable(_) => REPL_ERR_CLUSTER_QUORUM_UNAVAILABLE,
            ConsensusError::Timeout(..) => REPL_ERR_CLUSTER_TIMEOUT,
            ConsensusError::Storage(_) => REPL_ERR_CLUSTER_STORAGE,
            ConsensusError::Raft(_) => REPL_ERR_CLUSTER_CONSENSUS,
        };
        Failure::new(code, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_sorted_and_round_trip() {
        let codes: Vec<u32> = repl_result::ALL.iter().map(|r| *r as u32).collect();
        assert!(
            codes.windows(2).all(|w| w[0] < w[1]),
            "ALL must be sorted and unique: {codes:?}"
        );
        for &r in repl_result::ALL {
            assert_eq!(repl_result::from_code(r as u32), Some(r));
            assert!(!r.message().is_empty());
        }
        assert_eq!(repl_result::from_code(1), None);
        assert_eq!(repl_result::from_code(u32::MAX), None);
    }

    #[test]
    fn codes_sit_in_their_subsystem_block() {
        for &r in repl_result::ALL {
            let name = format!("{r:?}");
            let block = r as u32 / 100;
            let expected = if name.starts_with("REPL_ERR_WAL_") {
                2
            } else if name.starts_with("REPL_ERR_CONFIG_") {
                3
            } else if name.starts_with("REPL_ERR_CLOCK_") {
                4
            } else if name.starts_with("REPL_ERR_CLUSTER_") {
                5
            } else if r == REPL_OK {
                0
            } else {
                1
            };
            assert_eq!(
                block, expected,
                "{name} = {} is in the wrong block",
                r as u32
            );
        }
    }

    #[test]
    fn config_errors_map_to_their_code_with_every_problem_in_the_detail() {
        use replication_core::ReplicationConfig;
        let invalid = ReplicationConfig::from_toml_str("node_id = 0\nbatch_size = 0\n");
        let f = Failure::from(invalid.unwrap_err());
        assert_eq!(f.code, REPL_ERR_CONFIG_INVALID);
        assert!(
            f.detail.starts_with("replication config has 2 problems:")
                && f.detail.contains("\n  node_id (line 1)")
                && f.detail.contains("\n  batch_size (line 2)"),
            "{}",
            f.detail
        );
        let parse = ReplicationConfig::from_toml_str("node_id = ").unwrap_err();
        assert_eq!(Failure::from(parse).code, REPL_ERR_CONFIG_PARSE);
        let io = ReplicationConfig::from_toml_file("/nonexistent/replication.toml").unwrap_err();
        let f = Failure::from(io);
        assert_eq!(f.code, REPL_ERR_CONFIG_IO);
        assert!(
            f.detail.contains("/nonexistent/replication.toml"),
            "{}",
            f.detail
        );
        let f = Failure::from(DuplicateNode(4));
        assert_eq!(f.code, REPL_ERR_CLOCK_DUPLICATE_NODE);
        assert!(f.detail.contains("node 4"), "{}", f.detail);
    }

    #[test]
    fn io_errors_map_by_kind() {
        let io = |kind| WalError::Io {
            path: "/x/LOCK".into(),
            source: std::io::Error::new(kind, "boom"),
        };
        assert_eq!(
            Failure::from(io(std::io::ErrorKind::StorageFull)).code,
            REPL_ERR_WAL_NO_SPACE
        );
        assert_eq!(
            Failure::from(WalError::Locked { dir: "/x".into() }).code,
            REPL_ERR_WAL_DIR_LOCKED
        );
        let f = Failure::from(io(std::io::ErrorKind::PermissionDenied));
        assert_eq!(f.code, REPL_ERR_WAL_IO);
        assert!(
            f.detail.contains("/x/LOCK") && f.detail.contains("boom"),
            "{}",
            f.detail
        );
    }
}
