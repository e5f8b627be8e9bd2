//! `cluster-max`: the highest sustained SEMI_SYNC write rate of a 3-node mutual-TLS cluster
//! (in one process, see [`crate::cluster`]) with p99 commit latency <= 50 ms.
//!
//! Closed loop: for each count in `--cluster-writers` (16, 64, 256, 1024 by default) that many tasks
//! each call the leader's `ReplicationNode::append` with a 1 KiB write, wait for the
//! acknowledgement and send the next, for `--max-secs`. The first second is a warm-up and is
//! not counted. The result is the best rate among the writer counts whose p99 <= 50 ms.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{secs, Options, Scenario, Sink};
use crate::cluster::{self, ClusterSettings, InProcessCluster};
use crate::report::Metric;
use crate::BenchError;

pub const SCENARIO: Scenario = Scenario {
    name: "cluster-max",
    summary:
        "3 nodes, mutual TLS, SEMI_SYNC, closed loop with 16/64/256/1024 writers: writes/s and \
              commit latency; best rate with p99 <= 50 ms",
    run,
};

/// The latency bound of a "sustained" rate.
pub const P99_BOUND_MS: f64 = 50.0;
const WARMUP: Duration = Duration::from_secs(1);

fn run(opts: &Options, sink: Sink<'_>) -> Result<(), BenchError> {
    let name = SCENARIO.name;
    let rt = cluster::runtime()?;
    let mut best: Vec<f64> = vec![0.0; opts.repeat];
    for &writers in &opts.cluster_writers {
        let (mut rates, mut p50s, mut p99s, mut maxs) = (vec![], vec![], vec![], vec![]);
        for (rep, best) in best.iter_mut().enumerate() {
            let (acked, failed, elapsed, hist) = rt.block_on(run_once(opts, writers))?;
            let rate = acked as f64 / secs(elapsed);
            let (p50, p99, max) = cluster::quantiles_ms(&hist);
            eprintln!(
                "[{name}] {writers} writers run {}/{}: {acked} acked ({failed} failed) in \
                 {:.1} s = {rate:.0} writes/s; commit p50 {p50:.2} ms p99 {p99:.2} ms max \
                 {max:.2} ms",
                rep + 1,
                opts.repeat,
                elapsed.as_secs_f64()
            );
            if p99 <= P99_BOUND_MS && failed == 0 {
                *best = best.max(rate);
            }
            rates.push(rate);
            p50s.push(p50);
            p99s.push(p99);
            maxs.push(max);
        }
        let metric = |m: &str| format!("w{writers}.{m}");
        sink(Metric::from_samples(
            name,
            metric("writes_per_s"),
            "writes/s",
            rates,
        ))?;
        sink(Metric::from_samples(
            name,
            metric("commit_latency_p50"),
            "ms",
            p50s,
        ))?;
        sink(Metric::from_samples(
            name,
            metric("commit_latency_p99"),
            "ms",
            p99s,
        ))?;
        sink(Metric::from_samples(
            name,
            metric("commit_latency_max"),
            "ms",
            maxs,
        ))?;
    }
    sink(Metric::from_samples(
        name,
        "best_writes_per_s_p99_le_50ms",
        "writes/s",
        best,
    ))
}

async fn run_once(
    opts: &Options,
    writers: usize,
) -> Result<(u64, u64, Duration, hdrhistogram::Histogram<u64>), BenchError> {
    let c = InProcessCluster::start(
        &opts.dir,
        ClusterSettings::from_options(opts),
        Instant::now(),
    )
    .await?;
    let payloads = cluster::payloads(1024, opts.record_bytes);
    let stop = Arc::new(AtomicBool::new(false));
    let counting = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for w in 0..writers as u64 {
        let node = c.leader_node().clone();
        let payloads = Arc::clone(&payloads);
        let (stop, counting) = (Arc::clone(&stop), Arc::clone(&counting));
        tasks.push(tokio::spawn(async move {
            let mut hist = cluster::histogram();
            let mut failed = 0u64;
            let mut i = w << 32;
            while !stop.load(Ordering::Relaxed) {
                let t0 = Instant::now();
                let r = node.append(cluster::write_no(i, &payloads), None).await;
                i += 1;
                if !counting.load(Ordering::Relaxed) {
                    continue;
                }
                match r {
                    Ok(_) => hist.saturating_record(t0.elapsed().as_micros().max(1) as u64),
                    Err(_) => failed += 1,
                }
            }
            (hist, failed)
        }));
    }
    tokio::time::sleep(WARMUP).await;
    counting.store(true, Ordering::Relaxed);
    let start = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(opts.max_secs)).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = start.elapsed();
    let mut hist = cluster::histogram();
    let mut failed = 0;
    for t in tasks {
        let (h, f) = t
            .await
            .map_err(|e| BenchError::Invalid(format!("writer task: {e}")))?;
        hist.add(&h).expect("same histogram bounds");
        failed += f;
    }
    c.shutdown().await?;
    // Writes acknowledged after `stop` are counted; over several seconds that is noise
    // (at most one write per writer).
    Ok((hist.len(), failed, elapsed, hist))
}
