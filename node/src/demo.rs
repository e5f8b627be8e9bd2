//! `replicad demo`: a 3-node cluster over mutual TLS on loopback, a steady SEMI_SYNC write load,
//! a SIGKILL of the leader, the measured failover, a restart and catch-up of the killed node,
//! and a verification that every replica holds identical content and every acknowledged write
//! survived. Nothing to set up: certificates and keys are throwaway ones in a temp directory.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use replication_core::NodeId;

use crate::cluster::{leader_of, ChildRegistry, ClusterError, LocalCluster, Timings};
use crate::http;

/// What `replicad demo` takes from the command line.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// The `replicad` binary to run the nodes with (this executable).
    pub exe: PathBuf,
    /// `--fast`: heartbeat 100 ms, election 300-600 ms instead of the defaults.
    pub fast: bool,
    /// Target write rate (writes/s).
    pub rate: u32,
    /// Keep the working directory (configs, keys, logs) instead of deleting it.
    pub keep: bool,
}

/// What the demo measured.
#[derive(Debug, Clone)]
pub struct DemoSummary {
    pub nodes: usize,
    pub acked: usize,
    pub failover: Duration,
    pub election: Duration,
    pub old_leader: NodeId,
    pub new_leader: NodeId,
    pub hashes_equal: bool,
    pub acked_readable: bool,
    pub duration: Duration,
}

impl DemoSummary {
    pub fn ok(&self) -> bool {
        self.hashes_equal && self.acked_readable
    }
}

impl std::fmt::Display for DemoSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let yes = |b: bool| if b { "yes" } else { "NO" };
        write!(
            f,
            "summary: nodes {} | writes acked {} | failover {:.2} s (leader {} -> {}, elected \
             after {:.2} s) | hashes equal {} | every acked write readable {} | duration {:.1} s",
            self.nodes,
            self.acked,
            self.failover.as_secs_f64(),
            self.old_leader,
            self.new_leader,
            self.election.as_secs_f64(),
            yes(self.hashes_equal),
            yes(self.acked_readable),
            self.duration.as_secs_f64()
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error("cannot create the working directory: {0}")]
    TempDir(#[source] std::io::Error),
}

/// One acknowledged write.
#[derive(Debug, Clone)]
struct Acked {
    key: String,
    value: String,
    node: NodeId,
    at: Instant,
}

/// State shared by the writers, the progress display and the driver.
struct Shared {
    leader: RwLock<Option<(NodeId, std::net::SocketAddr)>>,
    acked: Mutex<Vec<Acked>>,
    failed: AtomicU64,
    stop: AtomicBool,
    phase: RwLock<&'static str>,
    /// Latest statuses, for the progress line.
    statuses: RwLock<BTreeMap<NodeId, serde_json::Value>>,
    admins: RwLock<BTreeMap<NodeId, std::net::SocketAddr>>,
}

const WRITERS: u32 = 4;
const COLLECTION: &str = "demo";

fn writer(shared: Arc<Shared>, index: u32, rate: u32) {
    let interval = Duration::from_secs_f64(f64::from(WRITERS) / f64::from(rate.max(1)));
    let mut next = Instant::now();
    let mut seq = 0u64;
    while !shared.stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else if now - next > Duration::from_secs(1) {
            // Far behind (a failover): resume the steady rate rather than bursting.
            next = now;
        }
        next += interval;
        let Some((node, addr)) = *shared.leader.read() else {
            continue;
        };
        seq += 1;
        let key = format!("w{index}-{seq:07}");
        let value = format!("value of {key} written through node {node}");
        let path = format!("/v1/docs/{COLLECTION}/{key}?mode=SEMI_SYNC");
        match http::request(
            addr,
            "PUT",
            &path,
            value.as_bytes(),
            Duration::from_secs(15),
        ) {
            Ok(r) if r.status == 200 => shared.acked.lock().push(Acked {
                key,
                value,
                node,
                at: Instant::now(),
            }),
            _ => {
                shared.failed.fetch_add(1, Ordering::Relaxed);
                // Wait for the poller to name the leader again.
                let mut l = shared.leader.write();
                if l.map(|(n, _)| n) == Some(node) {
                    *l = None;
                }
            }
        }
    }
}

/// Polls every node's status, tracks the leader for the writers and draws the progress line.
fn poller(shared: Arc<Shared>, started: Instant, done: Arc<AtomicBool>) {
    let tty = std::io::stderr().is_terminal();
    let mut last_line = Instant::now() - Duration::from_secs(10);
    while !done.load(Ordering::Relaxed) {
        let admins = shared.admins.read().clone();
        let statuses: BTreeMap<NodeId, serde_json::Value> = admins
            .iter()
            .filter_map(|(&id, &addr)| {
                let r = http::request(addr, "GET", "/v1/status", b"", Duration::from_millis(500))
                    .ok()?;
                Some((id, r.json().ok()?))
            })
            .collect();
        let leader = leader_of(&statuses);
        if let Some((id, _)) = leader {
            if let Some(&addr) = admins.get(&id) {
                *shared.leader.write() = Some((id, addr));
            }
        }
        let line = progress_line(&shared, &statuses, &admins, started);
        *shared.statuses.write() = statuses;
        if tty {
            eprint!("\r\x1b[2K{line}");
            let _ = std::io::stderr().flush();
        } else if last_line.elapsed() >= Duration::from_secs(1) {
            eprintln!("{line}");
            last_line = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if tty {
        eprintln!();
    }
}

fn progress_line(
    shared: &Shared,
    statuses: &BTreeMap<NodeId, serde_json::Value>,
    admins: &BTreeMap<NodeId, std::net::SocketAddr>,
    started: Instant,
) -> String {
    let acked = shared.acked.lock().len();
    let phase = *shared.phase.read();
    let mut line = format!("[{:6.1}s] {phase:<28}", started.elapsed().as_secs_f64());
    match leader_of(statuses) {
        Some((id, term)) => {
            let s = &statuses[&id];
            line.push_str(&format!(
                " | leader {id} term {term} commit {}",
                s["commit_lsn"]
            ));
            let mut lags = Vec::new();
            for f in s["followers"].as_array().into_iter().flatten() {
                let fid = f["id"].as_u64().unwrap_or(0);
                let lag = if admins.contains_key(&fid) {
                    f["lag_entries"].to_string()
                } else {
                    "down".to_string()
                };
                lags.push(format!("n{fid}={lag}"));
            }
            line.push_str(&format!(" | lag {}", lags.join(" ")));
        }
        None => line.push_str(" | no leader"),
    }
    line.push_str(&format!(
        " | acked {acked} failed {}",
        shared.failed.load(Ordering::Relaxed)
    ));
    line
}

fn say(text: impl std::fmt::Display) {
    if std::io::stderr().is_terminal() {
        eprint!("\r\x1b[2K");
    }
    eprintln!("replicad demo: {text}");
}

/// Runs the demo. `registry` receives the cluster's children so a Ctrl-C handler can kill
/// them; the cluster is also killed when this returns, on every path.
pub fn run(
    opts: &DemoOptions,
    registry: &Mutex<Option<ChildRegistry>>,
) -> Result<DemoSummary, DemoError> {
    let started = Instant::now();
    let workdir = tempfile::Builder::new()
        .prefix("replicad-demo-")
        .tempdir()
        .map_err(DemoError::TempDir)?;
    let timings = if opts.fast {
        Timings::fast()
    } else {
        Timings::defaults()
    };
    say(format_args!(
        "3 nodes over mutual TLS on 127.0.0.1, heartbeat {} ms, election timeout {}-{} ms; \
         throwaway CA, certificates and keys in {}",
        timings.heartbeat_ms,
        timings.election_min_ms,
        timings.election_max_ms,
        workdir.path().display()
    ));
    let mut cluster = LocalCluster::create(&opts.exe, workdir.path(), 3, timings)?;
    *registry.lock() = Some(cluster.children());
    let result = drive(opts, &mut cluster, timings, started);
    cluster.children().kill_all();
    match &result {
        Ok(s) if s.ok() && !opts.keep => {}
        _ => {
            let kept = workdir.keep();
            say(format_args!(
                "kept the working directory (configs, keys, node logs) in {}",
                kept.display()
            ));
        }
    }
    result
}

fn drive(
    opts: &DemoOptions,
    cluster: &mut LocalCluster,
    timings: Timings,
    started: Instant,
) -> Result<DemoSummary, DemoError> {
    let shared = Arc::new(Shared {
        leader: RwLock::new(None),
        acked: Mutex::new(Vec::new()),
        failed: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        phase: RwLock::new("starting nodes"),
        statuses: RwLock::new(BTreeMap::new()),
        admins: RwLock::new(BTreeMap::new()),
    });
    let done = Arc::new(AtomicBool::new(false));
    let poll = {
        let (s, d) = (Arc::clone(&shared), Arc::clone(&done));
        std::thread::spawn(move || poller(s, started, d))
    };
    let outcome = scenario(opts, cluster, timings, started, &shared);
    shared.stop.store(true, Ordering::Relaxed);
    done.store(true, Ordering::Relaxed);
    let _ = poll.join();
    outcome
}

fn refresh_admins(shared: &Shared, cluster: &LocalCluster) {
    *shared.admins.write() = cluster
        .ids()
        .into_iter()
        .filter_map(|id| Some((id, cluster.admin(id)?)))
        .collect();
}

fn scenario(
    opts: &DemoOptions,
    cluster: &mut LocalCluster,
    timings: Timings,
    started: Instant,
    shared: &Arc<Shared>,
) -> Result<DemoSummary, DemoError> {
    let set_phase = |p: &'static str| *shared.phase.write() = p;
    cluster.start_all()?;
    refresh_admins(shared, cluster);
    set_phase("electing a leader");
    let (first, term) = cluster.wait_for_leader(Duration::from_secs(60), None)?;
    say(format_args!(
        "node {first} leads (term {term}); writing {} writes/s SEMI_SYNC",
        opts.rate
    ));

    set_phase("writing");
    let writers: Vec<_> = (0..WRITERS)
        .map(|i| {
            let s = Arc::clone(shared);
            let rate = opts.rate;
            std::thread::spawn(move || writer(s, i, rate))
        })
        .collect();
    std::thread::sleep(Duration::from_secs(4));

    // The leader may have changed since; kill whoever leads now.
    let (old, old_term) = cluster.wait_for_leader(Duration::from_secs(30), None)?;
    set_phase("leader killed, failing over");
    let killed_at = Instant::now();
    cluster.kill(old);
    refresh_admins(shared, cluster);
    say(format_args!(
        "SIGKILL sent to the leader, node {old} (term {old_term})"
    ));
    let budget = Duration::from_millis(timings.election_max_ms * 2 + timings.heartbeat_ms)
        + Duration::from_secs(20);
    let (new, new_term) = cluster.wait_for_leader(budget, Some(old))?;
    let election = killed_at.elapsed();
    // Failover ends when the new leader has acknowledged a write.
    let deadline = Instant::now() + Duration::from_secs(30);
    let failover = loop {
        let first_ack = shared
            .acked
            .lock()
            .iter()
            .find(|a| a.node != old && a.at > killed_at)
            .map(|a| a.at);
        if let Some(at) = first_ack {
            break at - killed_at;
        }
        if Instant::now() > deadline {
            return Err(ClusterError::Setup(
                "the new leader acknowledged no write within 30 s".into(),
            )
            .into());
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    say(format_args!(
        "node {new} leads (term {new_term}): elected {:.2} s and accepting writes {:.2} s after the kill",
        election.as_secs_f64(),
        failover.as_secs_f64()
    ));
    set_phase("writing to the new leader");
    std::thread::sleep(Duration::from_secs(2));

    set_phase("restarting the killed node");
    cluster.start(old)?;
    refresh_admins(shared, cluster);
    say(format_args!("node {old} restarted; catching up"));
    set_phase("catching up");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let st = shared.statuses.read().clone();
        let commit = leader_of(&st).map(|(l, _)| st[&l]["commit_lsn"].as_u64().unwrap_or(0));
        let applied = st.get(&old).and_then(|s| s["applied_lsn"].as_u64());
        if let (Some(c), Some(a)) = (commit, applied) {
            if a + 2 * u64::from(opts.rate) / 10 >= c {
                break;
            }
        }
        if Instant::now() > deadline {
            return Err(
                ClusterError::Setup(format!("node {old} did not catch up within 60 s")).into(),
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    say(format_args!("node {old} caught up with the leader"));
    set_phase("writing, all nodes up");
    std::thread::sleep(Duration::from_secs(2));

    set_phase("stopping writes, verifying");
    shared.stop.store(true, Ordering::Relaxed);
    // Every in-flight write has its answer (and is counted) before the verification reads.
    for w in writers {
        let _ = w.join();
    }
    let commit = cluster.wait_converged(Duration::from_secs(60))?;
    let mut hashes = BTreeMap::new();
    for id in cluster.ids() {
        hashes.insert(id, cluster.hash(id)?);
    }
    let hashes_equal = hashes
        .values()
        .map(|(h, _)| h)
        .collect::<std::collections::BTreeSet<_>>()
        .len()
        == 1;
    for (id, (h, lsn)) in &hashes {
        say(format_args!(
            "node {id}: content hash {h}, store applied LSN {lsn:?} (commit {commit})"
        ));
    }
    let (leader, _) = cluster.wait_for_leader(Duration::from_secs(30), None)?;
    let acked = shared.acked.lock().clone();
    let mut missing = 0usize;
    for a in &acked {
        let r = cluster.request(
            leader,
            "GET",
            &format!("/v1/docs/{COLLECTION}/{}", a.key),
            b"",
        )?;
        if r.status != 200 || r.body != a.value.as_bytes() {
            missing += 1;
            if missing <= 5 {
                say(format_args!(
                    "acked write {} is missing or different on node {leader} (status {})",
                    a.key, r.status
                ));
            }
        }
    }
    say(format_args!(
        "read back {} acked writes from the leader, node {leader}: {missing} missing",
        acked.len()
    ));
    Ok(DemoSummary {
        nodes: cluster.ids().len(),
        acked: acked.len(),
        failover,
        election,
        old_leader: old,
        new_leader: new,
        hashes_equal,
        acked_readable: missing == 0,
        duration: started.elapsed(),
    })
}
