//! `cluster-lag`: a 3-node cluster over mutual TLS on loopback (in one process, see
//! [`crate::cluster`]), SEMI_SYNC with one replica, 1 KiB writes offered at a fixed rate.
//!
//! Open loop: `--clients` tasks share the schedule; write `k` of client `c` is due at
//! `start + (k * clients + c) / rate`. A client sleeps until its write is due, then calls the
//! leader's `ReplicationNode::append` and waits for the SEMI_SYNC acknowledgement. Commit latency
//! is from the call to the acknowledgement. A client that falls behind its schedule sends at
//! once (so the achieved rate shows whether the offered rate was met).
//!
//! Replication lag of an entry on a follower = the instant the follower's `ApplyHandler` applied
//! that LSN minus the instant the leader's `append` of that LSN returned (the commit). All
//! nodes live in this process, so both instants come from one monotonic clock. A follower may
//! apply an entry before the leader's client sees its acknowledgement; such lags count as 0
//! and are counted in `lag.negative`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{secs, Options, Scenario, Sink};
use crate::cluster::{self, ClusterSettings, InProcessCluster};
use crate::report::Metric;
use crate::BenchError;

pub const SCENARIO: Scenario = Scenario {
    name: "cluster-lag",
    summary: "3 nodes, mutual TLS, SEMI_SYNC, 1 KiB writes at --rate for --cluster-secs: \
              commit latency and follower apply lag p50/p99/max",
    run,
};

pub struct LagOutcome {
    pub acked: u64,
    pub failed: u64,
    pub elapsed: Duration,
    pub commit_us: hdrhistogram::Histogram<u64>,
    /// Lag over every follower.
    pub lag_us: hdrhistogram::Histogram<u64>,
    /// Entries some follower applied before the leader's append returned.
    pub negative: u64,
    /// Committed entries some follower never applied (should be 0).
    pub missing: u64,
}

fn run(opts: &Options, sink: Sink<'_>) -> Result<(), BenchError> {
    let name = SCENARIO.name;
    let rt = cluster::runtime()?;
    let mut rows: Vec<Vec<f64>> = vec![Vec::new(); 9];
    for rep in 1..=opts.repeat {
        let o = rt.block_on(run_once(opts))?;
        let rate = o.acked as f64 / secs(o.elapsed);
        let (c50, c99, cmax) = cluster::quantiles_ms(&o.commit_us);
        let (l50, l99, lmax) = cluster::quantiles_ms(&o.lag_us);
        eprintln!(
            "[{name}] run {rep}/{}: offered {:.0}/s with {} clients, achieved {rate:.0}/s \
             ({} acked, {} failed in {:.1} s); commit p50 {c50:.2} ms p99 {c99:.2} ms max \
             {cmax:.2} ms; lag p50 {l50:.2} ms p99 {l99:.2} ms max {lmax:.2} ms ({} applied \
             before the ack, {} missing)",
            opts.repeat,
            opts.rate,
            opts.clients,
            o.acked,
            o.failed,
            o.elapsed.as_secs_f64(),
            o.negative,
            o.missing
        );
        for (row, v) in rows.iter_mut().zip([
            rate,
            c50,
            c99,
            cmax,
            l50,
            l99,
            lmax,
            o.failed as f64,
            o.negative as f64,
        ]) {
            row.push(v);
        }
    }
    let names = [
        ("achieved_writes_per_s", "writes/s"),
        ("commit_latency_p50", "ms"),
        ("commit_latency_p99", "ms"),
        ("commit_latency_max", "ms"),
        ("lag_p50", "ms"),
        ("lag_p99", "ms"),
        ("lag_max", "ms"),
        ("failed_writes", "writes"),
        ("lag_negative", "entries"),
    ];
    for ((m, unit), samples) in names.into_iter().zip(rows) {
        sink(Metric::from_samples(
            name,
            format!("r{}.{m}", opts.rate as u64),
            unit,
            samples,
        ))?;
    }
    Ok(())
}

async fn run_once(opts: &Options) -> Result<LagOutcome, BenchError> {
    let epoch = Instant::now();
    let c = InProcessCluster::start(&opts.dir, ClusterSettings::from_options(opts), epoch).await?;
    let payloads = cluster::payloads(1024, opts.record_bytes);
    let clients = opts.clients.max(1) as u64;
    let duration = Duration::from_secs_f64(opts.cluster_secs);
    let period = Duration::from_secs_f64(1.0 / opts.rate);
    let start = tokio::time::Instant::now() + Duration::from_millis(50);
    let end = start + duration;
    let mut tasks = Vec::new();
    for client in 0..clients {
        let node = c.leader_node().clone();
        let payloads = Arc::clone(&payloads);
        tasks.push(tokio::spawn(async move {
            let mut hist = cluster::histogram();
            let mut commits: Vec<(u64, u64)> = Vec::new();
            let mut failed = 0u64;
            let mut k = 0u64;
            loop {
                let n = k * clients + client;
                let due = start + period.mul_f64(n as f64);
                if due >= end {
                    break;
                }
                tokio::time::sleep_until(due).await;
                let t0 = Instant::now();
                match node.append(cluster::write_no(n, &payloads), None).await {
                    Ok(lsn) => {
                        let now = Instant::now();
                        hist.saturating_record((now - t0).as_micros().max(1) as u64);
                        commits.push((lsn, (now - epoch).as_nanos() as u64));
                    }
                    Err(_) => failed += 1,
                }
                k += 1;
            }
            (hist, commits, failed)
        }));
    }
    let mut commit_us = cluster::histogram();
    let mut commits = Vec::new();
    let mut failed = 0;
    for t in tasks {
        let (h, cm, f) = t
            .await
            .map_err(|e| BenchError::Invalid(format!("client task: {e}")))?;
        commit_us.add(&h).expect("same histogram bounds");
        commits.extend(cm);
        failed += f;
    }
    let elapsed = start.elapsed();
    commits.sort_unstable();
    if let Some(&(last, _)) = commits.last() {
        c.wait_applied(last, Duration::from_secs(60)).await?;
    }
    let mut lag_us = cluster::histogram();
    let (mut negative, mut missing) = (0, 0);
    for f in c.followers() {
        let mut applied = c.apply[&f].take();
        applied.sort_unstable();
        for &(lsn, committed) in &commits {
            match applied.binary_search_by_key(&lsn, |&(l, _)| l) {
                Ok(i) => {
                    let at = applied[i].1;
                    if at < committed {
                        negative += 1;
                    }
                    lag_us.saturating_record((at.saturating_sub(committed) / 1000).max(1));
                }
                Err(_) => missing += 1,
            }
        }
    }
    c.shutdown().await?;
    Ok(LagOutcome {
        acked: commits.len() as u64,
        failed,
        elapsed,
        commit_us,
        lag_us,
        negative,
        missing,
    })
}
