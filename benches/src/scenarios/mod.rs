//! The macro benchmark scenarios `repl-bench` can run, in one registry.
//!
//! A scenario is a name, a one-line summary and a function that measures and hands each
//! [`Metric`] to a sink as soon as it is known. To add one: write a module with a
//! `pub const SCENARIO: Scenario`, list it in [`SCENARIOS`], and add any options it needs to
//! [`Options`] (they are shared, so `all` can pass one set to every scenario).

use std::path::PathBuf;

use crate::report::Metric;
use crate::workload::{default_base_dir, RECORD_PAYLOAD_BYTES};
use crate::BenchError;

pub mod clock;
pub mod cluster_lag;
pub mod cluster_max;
pub mod failover;
pub mod wal_append;
pub mod wal_group_commit;
pub mod wal_replay;

/// Receives each metric as soon as it is measured.
pub type Sink<'a> = &'a mut dyn FnMut(Metric) -> Result<(), BenchError>;

pub struct Scenario {
    pub name: &'static str,
    pub summary: &'static str,
    pub run: fn(&Options, Sink<'_>) -> Result<(), BenchError>,
}

/// Every scenario, in the order `all` runs them (cheapest first).
pub const SCENARIOS: &[Scenario] = &[
    clock::SCENARIO,
    wal_append::SCENARIO,
    wal_group_commit::SCENARIO,
    wal_replay::SCENARIO,
    cluster_lag::SCENARIO,
    cluster_max::SCENARIO,
    failover::SCENARIO,
];

pub fn find(name: &str) -> Option<&'static Scenario> {
    SCENARIOS.iter().find(|s| s.name == name)
}

/// Options of all scenarios; each reads the ones it needs.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Directory under which each run creates (and afterwards deletes) a fresh WAL directory.
    #[arg(long, default_value_os_t = default_base_dir())]
    pub dir: PathBuf,
    /// Repetitions of every measurement; the reported value is their median.
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    /// Payload bytes per record.
    #[arg(long, default_value_t = RECORD_PAYLOAD_BYTES)]
    pub record_bytes: usize,
    /// wal-append: records appended per run (for each of single and batch appends).
    #[arg(long, default_value_t = 2_000_000)]
    pub records: u64,
    /// wal-append, wal-group-commit: compress frames with zstd (off by default).
    #[arg(long)]
    pub compress: bool,
    /// zstd level for --compress and for the compressed half of wal-replay.
    #[arg(long, default_value_t = 3)]
    pub zstd_level: i32,
    /// wal-group-commit: numbers of concurrent writer threads, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 8, 64])]
    pub writers: Vec<usize>,
    /// wal-group-commit: seconds of appending per writer count and repetition.
    #[arg(long, default_value_t = 5.0)]
    pub duration_secs: f64,
    /// wal-replay: payload bytes written and then read back (default 1 GiB).
    #[arg(long, default_value_t = 1 << 30)]
    pub replay_bytes: u64,
    /// wal-replay: which WALs to write and replay.
    #[arg(long, value_enum, default_value_t = ReplayVariants::Both)]
    pub replay_variants: ReplayVariants,
    /// wal-replay: never drop the page cache; report warm-cache figures only.
    #[arg(long)]
    pub no_drop_caches: bool,
    /// clock: operations per timed loop.
    #[arg(long, default_value_t = 20_000_000)]
    pub clock_ops: u64,
    /// cluster-lag: offered write rate (writes/s).
    #[arg(long, default_value_t = 10_000.0)]
    pub rate: f64,
    /// cluster-lag: seconds of writing per run.
    #[arg(long, default_value_t = 30.0)]
    pub cluster_secs: f64,
    /// cluster-lag: concurrent client tasks sharing the offered rate.
    #[arg(long, default_value_t = 256)]
    pub clients: usize,
    /// cluster-max: numbers of closed-loop writer tasks, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [16usize, 64, 256, 1024])]
    pub cluster_writers: Vec<usize>,
    /// cluster-max: measured seconds per writer count and repetition (after 1 s of warm-up).
    #[arg(long, default_value_t = 10.0)]
    pub max_secs: f64,
    /// cluster-lag, cluster-max: zstd compression of the nodes' WAL frames (`on` = the config
    /// default, level `compression_level` for frames of at least 1 KiB).
    #[arg(long, value_enum, default_value_t = Switch::On)]
    pub cluster_wal_compression: Switch,
    /// cluster-lag, cluster-max: zstd level of the nodes' WAL frames (default: the config's
    /// `compression_level`).
    #[arg(long)]
    pub cluster_compression_level: Option<i32>,
    /// cluster-lag, cluster-max: zero-fill the nodes' active WAL segments ahead of appends
    /// (`on` = the config default, `wal_zero_fill_ahead`).
    #[arg(long, value_enum, default_value_t = Switch::On)]
    pub cluster_wal_zero_fill: Switch,
    /// failover: leader kills per timing set.
    #[arg(long, default_value_t = 20)]
    pub kills: usize,
    /// failover: timing sets to run, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [FailoverTimings::Default, FailoverTimings::Fast])]
    pub failover_timings: Vec<FailoverTimings>,
    /// failover: the replicad binary (default: `replicad` next to this executable).
    #[arg(long)]
    pub replicad: Option<PathBuf>,
}

/// A setting that is on or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Switch {
    On,
    Off,
}

/// Consensus timings of a `failover` run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailoverTimings {
    /// The config defaults (heartbeat 1 s, election 3-3.5 s).
    Default,
    /// Heartbeat 50 ms, election 150-300 ms.
    Fast,
}

/// The WALs `wal-replay` writes and reads back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReplayVariants {
    /// Uncompressed, then zstd at --zstd-level.
    Both,
    Uncompressed,
    Zstd,
}

impl Options {
    pub fn check(&self) -> Result<(), BenchError> {
        let bad = |m: &str| Err(BenchError::Invalid(m.to_string()));
        if self.repeat == 0 {
            return bad("--repeat must be at least 1");
        }
        if self.record_bytes == 0 {
            return bad("--record-bytes must be at least 1");
        }
        if self.writers.contains(&0) {
            return bad("--writers needs thread counts of at least 1");
        }
        if !(self.duration_secs > 0.0 && self.duration_secs.is_finite()) {
            return bad("--duration-secs must be a positive number of seconds");
        }
        if !(self.rate > 0.0 && self.rate.is_finite()) {
            return bad("--rate must be a positive number of writes per second");
        }
        for (v, flag) in [
            (self.cluster_secs, "--cluster-secs"),
            (self.max_secs, "--max-secs"),
        ] {
            if !(v > 0.0 && v.is_finite()) {
                return bad(&format!("{flag} must be a positive number of seconds"));
            }
        }
        if self.clients == 0 || self.cluster_writers.contains(&0) {
            return bad("--clients and --cluster-writers need counts of at least 1");
        }
        if self.kills == 0 {
            return bad("--kills must be at least 1");
        }
        if !(1..=22).contains(&self.zstd_level) {
            return bad("--zstd-level must be in 1..=22");
        }
        Ok(())
    }
}

/// Seconds as f64, never zero (a rate over a zero interval would be infinite).
pub(crate) fn secs(d: std::time::Duration) -> f64 {
    d.as_secs_f64().max(1e-9)
}
