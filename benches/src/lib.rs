//! Benchmarks of `replication-core`: shared code for the criterion micro-benchmarks
//! (benches/*.rs) and the `repl-bench` macro benchmark runner (src/bin/repl-bench.rs).
//!
//! - [`cluster`]: an in-process 3-node mutual-TLS cluster for the cluster scenarios.
//! - [`payload`]: deterministic JSON-like payloads of an exact size.
//! - [`workload`]: record pools and WALs in throw-away directories.
//! - [`codec`]: a checked stand-in for the crate-private record encoder.
//! - [`report`]: the JSON-lines output and the median of repetitions.
//! - [`scenarios`]: the registry of macro scenarios `repl-bench` runs.

use std::path::{Path, PathBuf};

pub mod cluster;
pub mod codec;
pub mod payload;
pub mod report;
pub mod scenarios;
pub mod workload;

/// Why a benchmark could not run to the end.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Wal(#[from] replication_core::WalError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("a benchmark thread panicked")]
    ThreadPanicked,
}

impl BenchError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        BenchError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
