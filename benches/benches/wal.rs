//! WAL micro-benchmarks: append (single and batch of 64, no fsync), group commit with
//! fdatasync and 8 writers, and sequential replay.
//!
//! Every benchmark works on a WAL in a fresh temporary directory that is deleted afterwards;
//! appending benchmarks use a fresh WAL per sample so a long run does not fill the disk.

use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use replication_bench::scenarios::wal_replay::replay_all;
use replication_bench::workload::{
    compression, default_base_dir, RecordPool, TempWal, BATCH_RECORDS, RECORD_PAYLOAD_BYTES,
};
use replication_core::Durability;

fn temp_wal(durability: Durability, zstd: bool) -> TempWal {
    TempWal::open(&default_base_dir(), durability, compression(zstd, 3))
        .expect("open a WAL in the temp directory")
}

fn wal_append(c: &mut Criterion) {
    let pool = RecordPool::standard();
    let mut g = c.benchmark_group("wal_append");
    // Warm-up doubles the iteration count each round; keep it short so it does not write
    // gigabytes before measuring.
    g.warm_up_time(Duration::from_secs(1));

    // Each sample appends to a fresh WAL, dropped (closed, directory deleted) untimed after it:
    // the dirty pages of deleted files are discarded, so the kernel never throttles the writer
    // and samples measure the WAL, not the disk. (Purging segments of one long-lived WAL is
    // not enough under Durability::None: the WAL keeps purged files open, see BENCHMARKS.md.)
    g.throughput(Throughput::Elements(1));
    g.bench_function("single_1KiB_durability_none", |b| {
        b.iter_custom(|iters| {
            let t = temp_wal(Durability::None, false);
            let start = Instant::now();
            for i in 0..iters {
                black_box(t.wal.append(pool.get(i)).expect("append"));
            }
            start.elapsed()
        })
    });

    g.throughput(Throughput::Elements(BATCH_RECORDS as u64));
    g.bench_function("batch64_1KiB_durability_none", |b| {
        b.iter_custom(|iters| {
            let t = temp_wal(Durability::None, false);
            let start = Instant::now();
            for i in 0..iters {
                let batch = pool.batch(i, BATCH_RECORDS);
                black_box(t.wal.append_batch(batch).expect("append_batch"));
            }
            start.elapsed()
        })
    });
    g.finish();
}

fn wal_group_commit(c: &mut Criterion) {
    const WRITERS: u64 = 8;
    let pool = RecordPool::standard();
    let mut g = c.benchmark_group("wal_group_commit");
    // Each append waits for an fdatasync (50-150 us here): few, long samples.
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(5));
    g.throughput(Throughput::Elements(1));
    g.bench_function("fdatasync_8_writers_1KiB", |b| {
        b.iter_custom(|iters| {
            let t = temp_wal(Durability::EveryCommit, false);
            let start_line = Barrier::new(WRITERS as usize + 1);
            std::thread::scope(|s| {
                for w in 0..WRITERS {
                    // `iters` records in all, split as evenly as possible.
                    let n = iters / WRITERS + u64::from(w < iters % WRITERS);
                    let (pool, wal, start_line) = (&pool, &t.wal, &start_line);
                    s.spawn(move || {
                        start_line.wait();
                        for i in 0..n {
                            wal.append(pool.get(w * 512 + i)).expect("durable append");
                        }
                    });
                }
                start_line.wait();
                let start = Instant::now();
                // Leaving the scope joins the writers.
                start
            })
            .elapsed()
        })
    });
    g.finish();
}

fn wal_replay(c: &mut Criterion) {
    // 64 MiB of payload: big enough to stream through several buffers, small enough to set up
    // quickly. The page cache is warm (the macro benchmark measures cold reads).
    const RECORDS: u64 = 64 * 1024;
    let pool = RecordPool::standard();
    let mut g = c.benchmark_group("wal_replay");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(RECORDS * RECORD_PAYLOAD_BYTES as u64));
    for (name, zstd) in [
        ("sequential_64MiB", false),
        ("sequential_64MiB_zstd3", true),
    ] {
        let t = temp_wal(Durability::None, zstd);
        for i in 0..RECORDS / BATCH_RECORDS as u64 {
            t.wal
                .append_batch(pool.batch(i, BATCH_RECORDS))
                .expect("append_batch");
        }
        t.wal.sync().expect("sync");
        g.bench_function(name, |b| {
            b.iter(|| {
                let r = replay_all(&t.wal).expect("replay");
                assert_eq!(r.records, RECORDS);
                r.payload_bytes
            })
        });
    }
    g.finish();
}

criterion_group!(benches, wal_append, wal_group_commit, wal_replay);
criterion_main!(benches);
