//! `clock`: cost of an HLC reading and of comparing two 8-node vector clocks.

use std::hint::black_box;
use std::time::Instant;

use replication_core::{HlcClock, VectorClock, VectorOrdering};

use super::{secs, Options, Scenario, Sink};
use crate::report::Metric;
use crate::BenchError;

pub const SCENARIO: Scenario = Scenario {
    name: "clock",
    summary: "HlcClock::now (one thread) and VectorClock::compare with 8 nodes: ns/op",
    run,
};

/// Two 8-node clocks where the first happened before the second, differing only in the last
/// node: `compare` must walk all eight entries (the slowest case; concurrent clocks can stop
/// early).
pub fn eight_node_clocks() -> (VectorClock, VectorClock) {
    let a = VectorClock::try_from_entries((1..=8u64).map(|n| (n, 1_000 + n)))
        .expect("distinct node ids");
    let b = VectorClock::try_from_entries((1..=8u64).map(|n| (n, 1_000 + n + u64::from(n == 8))))
        .expect("distinct node ids");
    (a, b)
}

fn run(opts: &Options, sink: Sink<'_>) -> Result<(), BenchError> {
    let name = SCENARIO.name;
    let ops = opts.clock_ops.max(1);

    let clock = HlcClock::default();
    let mut hlc = Vec::new();
    for rep in 1..=opts.repeat {
        let start = Instant::now();
        for _ in 0..ops {
            black_box(clock.now());
        }
        let ns = secs(start.elapsed()) * 1e9 / ops as f64;
        eprintln!("[{name}] hlc now run {rep}/{}: {ns:.1} ns/op", opts.repeat);
        hlc.push(ns);
    }
    sink(Metric::from_samples(
        name,
        "hlc_now.ns_per_op",
        "ns/op",
        hlc,
    ))?;

    let (a, b) = eight_node_clocks();
    if a.compare(&b) != VectorOrdering::Before {
        return Err(BenchError::Invalid(
            "8-node clocks do not compare as Before".into(),
        ));
    }
    let mut cmp = Vec::new();
    for rep in 1..=opts.repeat {
        let start = Instant::now();
        for _ in 0..ops {
            black_box(black_box(&a).compare(black_box(&b)));
        }
        let ns = secs(start.elapsed()) * 1e9 / ops as f64;
        eprintln!(
            "[{name}] vector compare (8 nodes) run {rep}/{}: {ns:.1} ns/op",
            opts.repeat
        );
        cmp.push(ns);
    }
    sink(Metric::from_samples(
        name,
        "vector_compare_8_nodes.ns_per_op",
        "ns/op",
        cmp,
    ))
}
