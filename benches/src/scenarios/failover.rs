//! `failover`: repeated SIGKILLs of the leader of a 3-node `replicad` cluster (one process per
//! node, mutual TLS on loopback, SEMI_SYNC; replicad's `LocalCluster`), with the default
//! timings and with fast ones (heartbeat 50 ms, election 150-300 ms).
//!
//! One kill: find the leader, check that it accepts a write, SIGKILL it, then PUT a 1 KiB
//! document to each survivor in turn (5 ms apart) until one answers 200. The failover time is
//! from just before the kill to that answer: detection, pre-vote, vote, the new leader's lease
//! and one SEMI_SYNC write. The killed node is then restarted and the cluster waits until
//! every replica has applied the leader's commit LSN before the next kill.
//!
//! Needs the `replicad` binary: by default the one next to `repl-bench`
//! (`cargo build --release -p replicad`), or `--replicad PATH`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use replicad::cluster::{LocalCluster, Timings};

use super::{FailoverTimings, Options, Scenario, Sink};
use crate::report::Metric;
use crate::BenchError;

pub const SCENARIO: Scenario = Scenario {
    name: "failover",
    summary: "SIGKILL the leader of a 3-process replicad cluster --kills times (default and \
              fast timings): time until a new leader accepts a write, p50/p99/max",
    run,
};

/// Longest wait for a failover before the run is declared failed.
const GIVE_UP: Duration = Duration::from_secs(60);

fn cluster_err(e: impl std::fmt::Display) -> BenchError {
    BenchError::Invalid(format!("cluster: {e}"))
}

fn replicad_exe(opts: &Options) -> Result<PathBuf, BenchError> {
    if let Some(p) = &opts.replicad {
        return Ok(p.clone());
    }
    let me = std::env::current_exe().map_err(|e| BenchError::io("current_exe".as_ref(), e))?;
    let p = me.with_file_name("replicad");
    if p.exists() {
        Ok(p)
    } else {
        Err(BenchError::Invalid(format!(
            "{} not found: build it first (`cargo build --release -p replicad`) or pass \
             --replicad PATH",
            p.display()
        )))
    }
}

fn run(opts: &Options, sink: Sink<'_>) -> Result<(), BenchError> {
    let name = SCENARIO.name;
    let exe = replicad_exe(opts)?;
    let payload =
        crate::payload::PayloadGen::new(crate::workload::SEED).next_payload(opts.record_bytes);
    for &which in &opts.failover_timings {
        let (label, timings) = match which {
            FailoverTimings::Default => ("default", Timings::defaults()),
            FailoverTimings::Fast => (
                "fast",
                Timings {
                    heartbeat_ms: 50,
                    election_min_ms: 150,
                    election_max_ms: 300,
                },
            ),
        };
        let dir = tempfile::Builder::new()
            .prefix("repl-bench-failover-")
            .tempdir_in(&opts.dir)
            .map_err(|e| BenchError::io(&opts.dir, e))?;
        let mut cluster =
            LocalCluster::create(&exe, dir.path(), 3, timings).map_err(cluster_err)?;
        cluster.start_all().map_err(cluster_err)?;
        let mut samples = Vec::new();
        let mut seq = 0u64;
        for kill in 1..=opts.kills {
            let (leader, term) = cluster
                .wait_for_leader(GIVE_UP, None)
                .map_err(cluster_err)?;
            // The leader takes writes before it is killed (its lease is established).
            let deadline = Instant::now() + GIVE_UP;
            while !put(&cluster, leader, &mut seq, &payload) {
                if Instant::now() > deadline {
                    return Err(cluster_err(format!("leader {leader} takes no writes")));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let survivors: Vec<u64> = cluster.ids().into_iter().filter(|&i| i != leader).collect();
            let t0 = Instant::now();
            cluster.kill(leader);
            let (new_leader, took) = 'wait: loop {
                for &s in &survivors {
                    if put(&cluster, s, &mut seq, &payload) {
                        break 'wait (s, t0.elapsed());
                    }
                }
                if t0.elapsed() > GIVE_UP {
                    return Err(cluster_err(format!(
                        "no write accepted within {GIVE_UP:?} after killing leader {leader}"
                    )));
                }
                std::thread::sleep(Duration::from_millis(5));
            };
            eprintln!(
                "[{name}] {label} timings, kill {kill}/{}: leader {leader} (term {term}) -> \
                 {new_leader}, write accepted after {:.3} s",
                opts.kills,
                took.as_secs_f64()
            );
            samples.push(took.as_secs_f64() * 1e3);
            cluster.start(leader).map_err(cluster_err)?;
            cluster
                .wait_converged(Duration::from_secs(60))
                .map_err(cluster_err)?;
        }
        drop(cluster);
        let mut sorted = samples.clone();
        sorted.sort_by(f64::total_cmp);
        let q = |p: f64| {
            // Nearest rank: with 20 samples p99 is the largest.
            let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
            sorted[rank - 1]
        };
        let one = |m: &str, v: f64| Metric {
            scenario: name,
            metric: format!("{label}.{m}"),
            value: v,
            unit: "ms",
            samples: vec![v],
        };
        sink(one("failover_p50", q(0.50)))?;
        sink(one("failover_p99", q(0.99)))?;
        sink(one("failover_max", q(1.0)))?;
        sink(Metric {
            scenario: name,
            metric: format!("{label}.failover_all"),
            value: crate::report::median(&samples),
            unit: "ms",
            samples,
        })?;
    }
    Ok(())
}

/// PUTs one document to node `id` (SEMI_SYNC); true if it answered 200.
fn put(cluster: &LocalCluster, id: u64, seq: &mut u64, payload: &[u8]) -> bool {
    *seq += 1;
    let path = format!("/v1/docs/bench/f{seq}?mode=SEMI_SYNC");
    matches!(cluster.request(id, "PUT", &path, payload), Ok(r) if r.status == 200)
}
