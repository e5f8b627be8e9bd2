//! `wal-append`: raw append throughput without fsync, one record per call and 64 per call.

use std::time::Instant;

use replication_core::Durability;

use super::{secs, Options, Scenario, Sink};
use crate::report::Metric;
use crate::workload::{compression, dir_bytes, RecordPool, TempWal, BATCH_RECORDS, POOL_RECORDS};
use crate::BenchError;

pub const SCENARIO: Scenario = Scenario {
    name: "wal-append",
    summary: "append N records (durability none) one per call and 64 per call: records/s, MB/s",
    run,
};

fn run(opts: &Options, sink: Sink<'_>) -> Result<(), BenchError> {
    let name = SCENARIO.name;
    let pool = RecordPool::new(POOL_RECORDS, opts.record_bytes);
    let comp = compression(opts.compress, opts.zstd_level);
    let suffix = if opts.compress {
        format!("_zstd{}", opts.zstd_level)
    } else {
        String::new()
    };
    for (mode, per_call) in [("append", 1usize), ("append_batch64", BATCH_RECORDS)] {
        let calls = (opts.records / per_call as u64).max(1);
        let records = calls * per_call as u64;
        let (mut rates, mut mbs) = (Vec::new(), Vec::new());
        for rep in 1..=opts.repeat {
            let t = TempWal::open(&opts.dir, Durability::None, comp)?;
            let start = Instant::now();
            if per_call == 1 {
                for i in 0..calls {
                    t.wal.append(pool.get(i))?;
                }
            } else {
                for i in 0..calls {
                    t.wal.append_batch(pool.batch(i, per_call))?;
                }
            }
            // Writes the last pending bytes to the file (no fsync under Durability::None), so
            // every timed record has reached the page cache.
            t.wal.close()?;
            let s = secs(start.elapsed());
            // Sanity check, untimed: the records really are in the files.
            let on_disk = dir_bytes(t.path())?;
            let payload = records * opts.record_bytes as u64;
            if !opts.compress && on_disk < payload {
                return Err(BenchError::Invalid(format!(
                    "only {on_disk} bytes in the segment files after appending {payload} bytes"
                )));
            }
            let rate = records as f64 / s;
            let mb = (records * opts.record_bytes as u64) as f64 / s / 1e6;
            eprintln!(
                "[{name}] {mode}{suffix} run {rep}/{}: {records} records in {s:.3} s = \
                 {rate:.0} records/s, {mb:.1} MB/s of payload ({:.2} GB in segment files)",
                opts.repeat,
                on_disk as f64 / 1e9
            );
            rates.push(rate);
            mbs.push(mb);
            drop(t);
        }
        let metric = |m: &str| format!("{mode}{suffix}.{m}");
        sink(Metric::from_samples(
            name,
            metric("records_per_s"),
            "records/s",
            rates,
        ))?;
        sink(Metric::from_samples(name, metric("MB_per_s"), "MB/s", mbs))?;
    }
    Ok(())
}
