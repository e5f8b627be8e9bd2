//! Record encoding and zstd frame compression of a 64-record batch.
//!
//! The WAL's own encoder is crate-private; `replication_bench::codec` writes the same bytes
//! (checked by its unit test against what the WAL puts on disk).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use replication_bench::codec::{encode_batch, encode_record, encoded_len};
use replication_bench::workload::{RecordPool, BATCH_RECORDS};

fn record_encode(c: &mut Criterion) {
    let pool = RecordPool::standard();
    let rec = pool.get(0);
    let mut g = c.benchmark_group("record_encode");
    let mut out = Vec::with_capacity(4096);
    g.throughput(Throughput::Bytes(encoded_len(rec) as u64));
    g.bench_function("single_1KiB", |b| {
        b.iter(|| {
            out.clear();
            encode_record(black_box(rec), &mut out);
            black_box(&out);
        })
    });

    // What `append_batch` does before any lock when compression is off: encode the batch into
    // the frame body and checksum it.
    let batch = pool.batch(0, BATCH_RECORDS);
    let raw_len: usize = batch.iter().map(encoded_len).sum();
    g.throughput(Throughput::Bytes(raw_len as u64));
    g.bench_function("batch64_1KiB_with_crc32c", |b| {
        b.iter(|| {
            encode_batch(black_box(batch), &mut out);
            black_box(crc32c::crc32c(&out))
        })
    });
    g.finish();
}

fn zstd_frame(c: &mut Criterion) {
    let pool = RecordPool::standard();
    let mut raw = Vec::new();
    encode_batch(pool.batch(0, BATCH_RECORDS), &mut raw);
    let mut g = c.benchmark_group("zstd_frame");
    g.throughput(Throughput::Bytes(raw.len() as u64));
    // As the WAL does: one reused compressor per thread, a fresh output Vec per frame.
    let mut comp = zstd::bulk::Compressor::new(3).expect("zstd compressor");
    g.bench_function("compress_batch64_1KiB_level3", |b| {
        b.iter(|| comp.compress(black_box(&raw)).expect("compress"))
    });
    let compressed = zstd::bulk::compress(&raw, 3).expect("compress");
    g.bench_function("decompress_batch64_1KiB_level3", |b| {
        b.iter(|| zstd::bulk::decompress(black_box(&compressed), raw.len()).expect("decompress"))
    });
    g.finish();
}

criterion_group!(benches, record_encode, zstd_frame);
criterion_main!(benches);
