//! The write-ahead log: segmented, checksummed, optionally compressed, with group commit.
//!
//! Layout on disk is described in docs/FORMAT.md. In short: a directory of segment files
//! `NNNNNNNNNNNNNNNNNNNN.wal`, each a 32-byte header followed by frames; a frame is one
//! `append` call's batch of records with a CRC32C. This WAL becomes the Raft log, so its API is
//! what a Raft log store needs: append, read a range, truncate a suffix, purge a prefix.
//!
//! Positions, for every LSN `n`: `last_lsn() >= written_lsn() >= durable_lsn()`, where
//! *written* means the bytes are in the file (page cache) and *durable* means an fdatasync
//! covering them has returned. An `append` under `Durability::EveryCommit` returns only once its
//! records are durable.

mod engine;
mod error;
mod format;
mod frame;
mod reader;
mod record;
mod recovery;
mod segment;
mod zero_fill;

use std::path::PathBuf;
use std::time::Duration;

pub use engine::Wal;
pub use error::WalError;
pub use format::{FORMAT_VERSION, FRAME_HEADER_LEN, SEGMENT_HEADER_LEN};
pub use reader::WalIter;
pub use record::{NewRecord, Operation, Record, MAX_PAYLOAD_BYTES};

/// When appended records are forced to stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Every append waits for an fdatasync; concurrent appenders share one (group commit).
    EveryCommit,
    /// A background thread writes and fdatasyncs every interval; a crash may lose up to one
    /// interval of acknowledged appends.
    Interval(Duration),
    /// Never fsync (tests and benchmarks only): the OS decides when bytes reach the disk.
    None,
}

/// zstd compression of frame bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compression {
    pub enabled: bool,
    /// zstd level, 1..=22.
    pub level: i32,
    /// Batches whose encoded records are smaller than this are stored uncompressed: zstd's
    /// frame overhead outweighs the gain on tiny batches.
    pub min_batch_bytes: usize,
}

impl Default for Compression {
    fn default() -> Self {
        Compression {
            enabled: true,
            // The config's default (see ReplicationConfig::compression_level for why 1).
            level: 1,
            min_batch_bytes: 1024,
        }
    }
}

/// What recovery does when the bytes at the end of the WAL are not valid frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecoveryMode {
    /// Truncate a torn tail of the last segment (what a crash mid-write leaves); any other
    /// damage is an error naming the file and offset.
    #[default]
    TolerateTornTail,
    /// Any damage, torn tail included, is an error: nothing is ever removed silently.
    AbsoluteConsistency,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalOptions {
    pub dir: PathBuf,
    /// A new segment starts once the current one would grow past this (default 64 MiB).
    pub segment_size_bytes: u64,
    pub durability: Durability,
    pub compression: Compression,
    pub recovery_mode: RecoveryMode,
    /// Keep the active segment written with zeros a few MiB past its last frame, so that a
    /// commit's fdatasync overwrites allocated blocks instead of also committing allocation
    /// metadata (default on; see `zero_fill.rs` for the measured effect). Recovery reads an
    /// all-zero tail as the clean end of a segment; closing or sealing one trims it off.
    pub zero_fill_ahead: bool,
}

pub const DEFAULT_SEGMENT_SIZE_BYTES: u64 = 64 << 20;
/// Smallest segment size accepted: a header and a few frames.
pub const MIN_SEGMENT_SIZE_BYTES: u64 = 4096;

impl WalOptions {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        WalOptions {
            dir: dir.into(),
            segment_size_bytes: DEFAULT_SEGMENT_SIZE_BYTES,
            durability: Durability::EveryCommit,
            compression: Compression::default(),
            recovery_mode: RecoveryMode::default(),
            zero_fill_ahead: true,
        }
    }

    pub(crate) fn check(&self) -> Result<(), WalError> {
        if self.segment_size_bytes < MIN_SEGMENT_SIZE_BYTES {
            return Err(WalError::InvalidOptions(format!(
                "segment_size_bytes = {} is too small; use at least {MIN_SEGMENT_SIZE_BYTES}",
                self.segment_size_bytes
            )));
        }
        if self.compression.enabled && !(1..=22).contains(&self.compression.level) {
            return Err(WalError::InvalidOptions(format!(
                "zstd level {} is out of range; use 1..=22",
                self.compression.level
            )));
        }
        if let Durability::Interval(d) = self.durability {
            if d.is_zero() {
                return Err(WalError::InvalidOptions(
                    "durability interval must be greater than zero".into(),
                ));
            }
        }
        Ok(())
    }
}
