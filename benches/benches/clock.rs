//! Clock micro-benchmarks: an HLC reading and 8-node vector clock comparisons.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use replication_bench::scenarios::clock::eight_node_clocks;
use replication_core::{HlcClock, VectorClock};

fn hlc(c: &mut Criterion) {
    let clock = HlcClock::default();
    c.bench_function("hlc_now", |b| b.iter(|| clock.now()));
    // The physical clock read inside every `now`, to tell its share of the cost.
    c.bench_function("hlc_now_baseline_system_time", |b| {
        b.iter(std::time::SystemTime::now)
    });
}

fn vector_compare(c: &mut Criterion) {
    let (a, b_clock) = eight_node_clocks();
    let mut concurrent = b_clock.clone();
    // Ahead of `a` on node 8, behind on node 1.
    let mut behind = VectorClock::try_from_entries(concurrent.iter().map(|(n, c)| {
        if n == 1 {
            (n, c - 1)
        } else {
            (n, c)
        }
    }))
    .expect("distinct node ids");
    std::mem::swap(&mut concurrent, &mut behind);
    let mut g = c.benchmark_group("vector_compare_8_nodes");
    g.bench_function("before_full_walk", |bn| {
        bn.iter(|| black_box(&a).compare(black_box(&b_clock)))
    });
    g.bench_function("equal", |bn| {
        bn.iter(|| black_box(&a).compare(black_box(&a)))
    });
    g.bench_function("concurrent", |bn| {
        bn.iter(|| black_box(&a).compare(black_box(&concurrent)))
    });
    g.finish();
}

criterion_group!(benches, hlc, vector_compare);
criterion_main!(benches);
