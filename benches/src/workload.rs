//! What the benchmarks append: a pool of ready-made records, and WALs in throw-away directories.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use replication_core::wal::Compression;
use replication_core::{Durability, HlcClock, NewRecord, Operation, Wal, WalOptions};

use crate::payload::PayloadGen;
use crate::BenchError;

/// Payload size the issue specifies for WAL benchmarks.
pub const RECORD_PAYLOAD_BYTES: usize = 1024;
/// Records per `append_batch` call in the batch benchmarks.
pub const BATCH_RECORDS: usize = 64;
/// Distinct records in a pool: 4 MiB of payload, small enough to stay in cache, large enough
/// that every 64-record batch holds 64 different documents.
pub const POOL_RECORDS: usize = 4096;
/// Seed of every generated payload, so all runs append the same bytes.
pub const SEED: u64 = 0x5EED_0001;

/// Records built once and appended by reference, so the measured loop allocates nothing of
/// its own and times only the WAL.
pub struct RecordPool {
    records: Vec<NewRecord>,
}

impl RecordPool {
    /// `count` records with `payload_bytes`-byte JSON payloads, HLC-stamped, 1 in 5 an update.
    pub fn new(count: usize, payload_bytes: usize) -> Self {
        let mut payloads = PayloadGen::new(SEED);
        let clock = HlcClock::default();
        let records = (0..count)
            .map(|i| NewRecord {
                term: 1,
                hlc: clock.now(),
                origin: 1,
                op: if i % 5 == 4 {
                    Operation::Update
                } else {
                    Operation::Insert
                },
                collection: "documents".into(),
                doc_id: payloads.uuid().into(),
                txn_id: None,
                payload: Bytes::from(payloads.next_payload(payload_bytes)),
            })
            .collect();
        RecordPool { records }
    }

    /// The standard pool: 4096 records of 1 KiB.
    pub fn standard() -> Self {
        Self::new(POOL_RECORDS, RECORD_PAYLOAD_BYTES)
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The `i`-th record, cycling through the pool.
    pub fn get(&self, i: u64) -> &NewRecord {
        &self.records[(i % self.records.len() as u64) as usize]
    }

    /// The `i`-th run of `n` consecutive records, cycling; `n` must divide the pool size.
    pub fn batch(&self, i: u64, n: usize) -> &[NewRecord] {
        debug_assert!(n > 0 && self.records.len().is_multiple_of(n));
        let batches = (self.records.len() / n) as u64;
        let start = (i % batches) as usize * n;
        &self.records[start..start + n]
    }

    pub fn records(&self) -> &[NewRecord] {
        &self.records
    }
}

/// zstd settings for benchmarks: on at `level`, or off.
pub fn compression(enabled: bool, level: i32) -> Compression {
    Compression {
        enabled,
        level,
        ..Compression::default()
    }
}

/// A WAL in a fresh directory under `base`; the directory and everything in it is deleted when
/// this is dropped (after the WAL is closed), even when the benchmark fails half-way.
pub struct TempWal {
    pub wal: Wal,
    dir: tempfile::TempDir,
}

impl TempWal {
    pub fn open(
        base: &Path,
        durability: Durability,
        compression: Compression,
    ) -> Result<TempWal, BenchError> {
        std::fs::create_dir_all(base).map_err(|e| BenchError::io(base, e))?;
        let dir = tempfile::Builder::new()
            .prefix("repl-bench-")
            .tempdir_in(base)
            .map_err(|e| BenchError::io(base, e))?;
        let mut opts = WalOptions::new(dir.path());
        opts.durability = durability;
        opts.compression = compression;
        let wal = Wal::open(opts)?;
        Ok(TempWal { wal, dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Bytes in the WAL's segment files (after writing out what is pending).
    pub fn disk_bytes(&self) -> Result<u64, BenchError> {
        let mut total = 0;
        for p in self.wal.segment_paths()? {
            total += std::fs::metadata(&p)
                .map_err(|e| BenchError::io(&p, e))?
                .len();
        }
        Ok(total)
    }
}

/// Total size of the regular files in `dir` (a closed WAL's segments).
pub fn dir_bytes(dir: &Path) -> Result<u64, BenchError> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).map_err(|e| BenchError::io(dir, e))? {
        let entry = entry.map_err(|e| BenchError::io(dir, e))?;
        let meta = entry
            .metadata()
            .map_err(|e| BenchError::io(&entry.path(), e))?;
        if meta.is_file() {
            total += meta.len();
        }
    }
    Ok(total)
}

impl Drop for TempWal {
    fn drop(&mut self) {
        // Close first so no write lands in a directory being removed; TempDir then deletes it.
        if let Err(e) = self.wal.close() {
            eprintln!(
                "repl-bench: closing the WAL in {} failed: {e}",
                self.dir.path().display()
            );
        }
    }
}

/// Where temporary WALs go unless `--dir` says otherwise.
pub fn default_base_dir() -> PathBuf {
    std::env::temp_dir()
}
