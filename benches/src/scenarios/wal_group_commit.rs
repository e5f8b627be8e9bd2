//! `wal-group-commit`: durable appends (fdatasync before returning) from many threads at once.
//!
//! Each writer appends one record per call in a loop for a fixed time. Throughput counts only
//! appends that returned, i.e. durable records. Latency is per `append` call (hdrhistogram).
//!
//! The WAL does not count its fdatasyncs, so the group size is inferred: a group commit
//! raises `durable_lsn` once, to the last LSN of the group, and every writer reads
//! `durable_lsn()` right after its append returns; the number of distinct values seen is the
//! number of group fsyncs (a group can go unseen only if no writer looks at `durable_lsn`
//! during a whole fdatasync of the next group, so this can only under-count slightly, making
//! the reported average group size an upper-bound estimate).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use replication_core::{Durability, Wal};

use super::{secs, Options, Scenario, Sink};
use crate::report::Metric;
use crate::workload::{compression, RecordPool, TempWal, POOL_RECORDS};
use crate::BenchError;

pub const SCENARIO: Scenario = Scenario {
    name: "wal-group-commit",
    summary: "1/8/64 writers appending with fdatasync per group: durable records/s, latency \
              p50/p99, average group size",
    run,
};

/// Latencies are recorded in nanoseconds, up to a minute.
const MAX_LATENCY_NS: u64 = 60_000_000_000;

pub struct Outcome {
    pub records: u64,
    pub elapsed: Duration,
    pub latency_ns: Histogram<u64>,
    /// Distinct `durable_lsn` values seen after appends returned: the group fsyncs.
    pub groups: u64,
}

fn run(opts: &Options, sink: Sink<'_>) -> Result<(), BenchError> {
    let name = SCENARIO.name;
    let pool = RecordPool::new(POOL_RECORDS, opts.record_bytes);
    let comp = compression(opts.compress, opts.zstd_level);
    let suffix = if opts.compress {
        format!("_zstd{}", opts.zstd_level)
    } else {
        String::new()
    };
    let duration = Duration::from_secs_f64(opts.duration_secs);
    for &writers in &opts.writers {
        let (mut rates, mut p50s, mut p99s, mut groups) = (vec![], vec![], vec![], vec![]);
        for rep in 1..=opts.repeat {
            let t = TempWal::open(&opts.dir, Durability::EveryCommit, comp)?;
            let o = run_writers(&t.wal, &pool, writers, duration)?;
            drop(t);
            let rate = o.records as f64 / secs(o.elapsed);
            let p50 = o.latency_ns.value_at_quantile(0.50) as f64 / 1e3;
            let p99 = o.latency_ns.value_at_quantile(0.99) as f64 / 1e3;
            let group = o.records as f64 / o.groups.max(1) as f64;
            eprintln!(
                "[{name}] {writers} writers{suffix} run {rep}/{}: {} durable records in {:.2} s \
                 = {rate:.0}/s, latency p50 {p50:.0} us p99 {p99:.0} us, {} groups \
                 (avg {group:.1} records)",
                opts.repeat,
                o.records,
                o.elapsed.as_secs_f64(),
                o.groups
            );
            rates.push(rate);
            p50s.push(p50);
            p99s.push(p99);
            groups.push(group);
        }
        let metric = |m: &str| format!("w{writers}{suffix}.{m}");
        sink(Metric::from_samples(
            name,
            metric("durable_records_per_s"),
            "records/s",
            rates,
        ))?;
        sink(Metric::from_samples(
            name,
            metric("commit_latency_p50"),
            "us",
            p50s,
        ))?;
        sink(Metric::from_samples(
            name,
            metric("commit_latency_p99"),
            "us",
            p99s,
        ))?;
        sink(Metric::from_samples(
            name,
            metric("avg_group_size"),
            "records/fsync",
            groups,
        ))?;
    }
    Ok(())
}

/// Runs `writers` threads appending single records to `wal` for `duration`.
pub fn run_writers(
    wal: &Wal,
    pool: &RecordPool,
    writers: usize,
    duration: Duration,
) -> Result<Outcome, BenchError> {
    let stop = AtomicBool::new(false);
    let start_line = Barrier::new(writers + 1);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..writers)
            .map(|w| {
                let (stop, start_line) = (&stop, &start_line);
                s.spawn(move || -> Result<(Histogram<u64>, Vec<u64>), BenchError> {
                    let mut hist = Histogram::<u64>::new_with_bounds(1, MAX_LATENCY_NS, 3)
                        .map_err(|e| BenchError::Invalid(format!("histogram: {e}")))?;
                    let mut seen = Vec::with_capacity(1 << 16);
                    // Writers start at different places in the pool, like different clients.
                    let mut i = (w * pool.len() / writers) as u64;
                    start_line.wait();
                    while !stop.load(Ordering::Relaxed) {
                        let t0 = Instant::now();
                        wal.append(pool.get(i))?;
                        hist.saturating_record((t0.elapsed().as_nanos() as u64).max(1));
                        seen.push(wal.durable_lsn());
                        i += 1;
                    }
                    Ok((hist, seen))
                })
            })
            .collect();
        start_line.wait();
        let start = Instant::now();
        std::thread::sleep(duration);
        stop.store(true, Ordering::Relaxed);
        let mut latency_ns = Histogram::<u64>::new_with_bounds(1, MAX_LATENCY_NS, 3)
            .map_err(|e| BenchError::Invalid(format!("histogram: {e}")))?;
        let mut durable_seen = Vec::new();
        let mut first_err = None;
        for h in handles {
            match h.join() {
                Ok(Ok((hist, seen))) => {
                    latency_ns
                        .add(&hist)
                        .map_err(|e| BenchError::Invalid(format!("histogram: {e}")))?;
                    durable_seen.extend(seen);
                }
                Ok(Err(e)) => first_err = first_err.or(Some(e)),
                Err(_) => first_err = first_err.or(Some(BenchError::ThreadPanicked)),
            }
        }
        let elapsed = start.elapsed();
        if let Some(e) = first_err {
            return Err(e);
        }
        durable_seen.sort_unstable();
        durable_seen.dedup();
        Ok(Outcome {
            records: latency_ns.len(),
            elapsed,
            latency_ns,
            groups: durable_seen.len() as u64,
        })
    })
}
