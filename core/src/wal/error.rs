//! Errors returned by the WAL. Every message names what was wrong and, where it helps, what to do.

use std::path::PathBuf;

use crate::Lsn;

#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// An operating-system I/O call failed (ENOSPC, EIO, permissions, ...).
    #[error("WAL I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// Bytes on disk do not match their checksum or structure, outside a torn tail we may repair.
    #[error("WAL corruption in {path} at byte offset {offset}: {reason}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },

    /// A record handed to `append` cannot be stored (too large, empty batch, ...).
    #[error("invalid WAL record: {0}")]
    InvalidRecord(String),

    /// A read or truncation named an LSN the WAL does not hold.
    #[error(
        "LSN {lsn} is not in the WAL (it holds LSNs {first}..={last}; first > last means empty)"
    )]
    LsnOutOfRange { lsn: Lsn, first: Lsn, last: Lsn },

    /// An earlier write or fsync failed; the state of the tail on disk is unknown, so the WAL
    /// refuses further writes instead of risking a silent hole. Reopening runs recovery.
    #[error(
        "the WAL refuses writes after an earlier I/O failure ({0}); close and reopen it to recover"
    )]
    Poisoned(String),

    /// Another handle (in this or another process) has the WAL directory open.
    #[error("the WAL directory {dir} is already open (by this or another process); close the other handle first")]
    Locked { dir: PathBuf },

    /// The handle was closed.
    #[error("the WAL is closed")]
    Closed,

    /// The options passed to `Wal::open` are unusable.
    #[error("invalid WAL options: {0}")]
    InvalidOptions(String),
}

impl WalError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        WalError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupt(
        path: impl Into<PathBuf>,
        offset: u64,
        reason: impl Into<String>,
    ) -> Self {
        WalError::Corrupt {
            path: path.into(),
            offset,
            reason: reason.into(),
        }
    }
}

pub type Result<T, E = WalError> = std::result::Result<T, E>;
