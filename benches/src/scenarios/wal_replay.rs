//! `wal-replay`: sequential read of a large WAL with `read_from(1)`, uncompressed and zstd.
//!
//! The WAL is written once per compression setting (durability none, then one `sync`), and
//! replayed `--repeat` times: first with a cold page cache (`echo 1 > /proc/sys/vm/drop_caches`,
//! which needs root; the WAL's files are clean after the sync, so dropping loses nothing),
//! then warm. When the cache cannot be dropped only the warm figures are reported.

use std::hint::black_box;
use std::time::Instant;

use replication_core::{Durability, Wal};

use super::{secs, Options, ReplayVariants, Scenario, Sink};
use crate::report::Metric;
use crate::workload::{compression, RecordPool, TempWal, BATCH_RECORDS, POOL_RECORDS};
use crate::BenchError;

pub const SCENARIO: Scenario = Scenario {
    name: "wal-replay",
    summary: "write 1 GiB of records, then read_from(1) over all of it, cold and warm cache, \
              uncompressed and zstd: GB/s of payload, records/s",
    run,
};

const DROP_CACHES: &str = "/proc/sys/vm/drop_caches";

/// Drops the clean page cache of the whole machine.
pub fn drop_page_cache() -> std::io::Result<()> {
    std::fs::write(DROP_CACHES, b"1\n")
}

pub struct Replayed {
    pub records: u64,
    pub payload_bytes: u64,
    pub seconds: f64,
}

/// Reads every record from LSN 1 to the end, touching each payload.
pub fn replay_all(wal: &Wal) -> Result<Replayed, BenchError> {
    let start = Instant::now();
    let (mut records, mut payload_bytes, mut acc) = (0u64, 0u64, 0u8);
    for rec in wal.read_from(1)? {
        let rec = rec?;
        records += 1;
        payload_bytes += rec.payload.len() as u64;
        acc ^= rec.payload.last().copied().unwrap_or(0);
    }
    black_box(acc);
    Ok(Replayed {
        records,
        payload_bytes,
        seconds: secs(start.elapsed()),
    })
}

fn run(opts: &Options, sink: Sink<'_>) -> Result<(), BenchError> {
    let name = SCENARIO.name;
    let pool = RecordPool::new(POOL_RECORDS, opts.record_bytes);
    let batches = (opts.replay_bytes / (opts.record_bytes * BATCH_RECORDS) as u64).max(1);
    let expected = batches * BATCH_RECORDS as u64;
    let cold = if opts.no_drop_caches {
        false
    } else {
        match drop_page_cache() {
            Ok(()) => true,
            Err(e) => {
                eprintln!("[{name}] cannot drop the page cache ({DROP_CACHES}: {e}); warm only");
                false
            }
        }
    };
    let mut disk = Vec::new();
    let variants = [
        (
            "uncompressed".to_string(),
            compression(false, opts.zstd_level),
        ),
        (
            format!("zstd{}", opts.zstd_level),
            compression(true, opts.zstd_level),
        ),
    ];
    let wanted = |zstd: bool| match opts.replay_variants {
        ReplayVariants::Both => true,
        ReplayVariants::Uncompressed => !zstd,
        ReplayVariants::Zstd => zstd,
    };
    for (label, comp) in variants.into_iter().filter(|(_, c)| wanted(c.enabled)) {
        let t = TempWal::open(&opts.dir, Durability::None, comp)?;
        let w0 = Instant::now();
        for b in 0..batches {
            t.wal.append_batch(pool.batch(b, BATCH_RECORDS))?;
        }
        t.wal.sync()?;
        let on_disk = t.disk_bytes()?;
        eprintln!(
            "[{name}] {label}: wrote {expected} records ({:.2} GB payload, {:.2} GB on disk) in \
             {:.1} s",
            (expected * opts.record_bytes as u64) as f64 / 1e9,
            on_disk as f64 / 1e9,
            w0.elapsed().as_secs_f64()
        );
        disk.push(on_disk);
        let caches: &[&str] = if cold { &["cold", "warm"] } else { &["warm"] };
        for &cache in caches {
            if cache == "warm" {
                // Untimed pass: afterwards the whole WAL is in the page cache.
                replay_all(&t.wal)?;
            }
            let (mut gbs, mut rps) = (Vec::new(), Vec::new());
            for rep in 1..=opts.repeat {
                if cache == "cold" {
                    drop_page_cache().map_err(|e| BenchError::io(DROP_CACHES.as_ref(), e))?;
                }
                let r = replay_all(&t.wal)?;
                if r.records != expected {
                    return Err(BenchError::Invalid(format!(
                        "replay returned {} records, {expected} were written",
                        r.records
                    )));
                }
                let gb = r.payload_bytes as f64 / r.seconds / 1e9;
                let rate = r.records as f64 / r.seconds;
                eprintln!(
                    "[{name}] {label} {cache} run {rep}/{}: {:.3} s = {gb:.2} GB/s of payload, \
                     {rate:.0} records/s",
                    opts.repeat, r.seconds
                );
                gbs.push(gb);
                rps.push(rate);
            }
            let metric = |m: &str| format!("{label}.{cache}.{m}");
            sink(Metric::from_samples(name, metric("GB_per_s"), "GB/s", gbs))?;
            sink(Metric::from_samples(
                name,
                metric("records_per_s"),
                "records/s",
                rps,
            ))?;
        }
        drop(t);
    }
    if let [plain, compressed] = disk[..] {
        let ratio = plain as f64 / compressed.max(1) as f64;
        sink(Metric::from_samples(
            name,
            format!("zstd{}.compression_ratio", opts.zstd_level),
            "x",
            vec![ratio],
        ))?;
    }
    Ok(())
}
