//! `replicad run` as a real child process on loopback: the client API, /v1/status, /metrics
//! (checked by `promtool` when installed) and SIGKILL + restart on the same directory.
//!
//! Requests go through the crate's own minimal HTTP/1.1 client (`replicad::http`).

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use replicad::http::{request, Reply};
use serde_json::Value;

use common::{assert_promtool_accepts, sample};

const STARTUP: Duration = Duration::from_secs(30);

/// Test conveniences on the crate's own HTTP client reply.
trait ReplyExt {
    /// The body as JSON; panics with the status and body when it is not.
    fn value(&self) -> Value;
    fn text(&self) -> String;
}

impl ReplyExt for Reply {
    fn value(&self) -> Value {
        self.json().unwrap_or_else(|e| panic!("{e}"))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn http(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> std::io::Result<Reply> {
    request(addr, method, path, body, Duration::from_secs(30))
}

/// A running `replicad` child; killed with SIGKILL when dropped.
struct Daemon {
    child: Child,
    addr: SocketAddr,
}

impl Daemon {
    fn start(config: &Path, log: &Path) -> Daemon {
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_replicad"))
            .args(["run", "--config"])
            .arg(config)
            .args(["--admin-addr", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .expect("spawn replicad");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let Some(addr) = line.trim_end().split("http://").nth(1) else {
            let _ = child.kill();
            panic!(
                "replicad did not announce its admin address (stdout: {line:?}); log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        };
        let addr = addr.parse().expect("admin address");
        Daemon { child, addr }
    }

    /// Polls /v1/status until this node leads and has applied `min_applied`.
    fn wait_leader(&self, min_applied: u64) -> Value {
        let deadline = Instant::now() + STARTUP;
        loop {
            if let Ok(r) = http(self.addr, "GET", "/v1/status", b"") {
                if r.status == 200 {
                    let s = r.value();
                    if s["role"] == "leader"
                        && s["applied_lsn"].as_u64().unwrap_or(0) >= min_applied
                    {
                        return s;
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "node did not become a caught-up leader within {STARTUP:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, then the exit status (a clean stop flushes the store and closes the WAL).
    fn sigterm(mut self) -> std::process::ExitStatus {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        self.child.wait().unwrap()
    }

    fn sigkill(mut self) {
        // `Child::kill` sends SIGKILL on Unix: no shutdown path runs.
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Fast timings so a restarted single node elects itself quickly (it must win an election:
/// leader restore is off).
fn write_config(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("node.toml");
    let text = format!(
        "node_id = 1\n\
         listen_address = \"127.0.0.1:0\"\n\
         heartbeat_interval_ms = 50\n\
         election_timeout_min_ms = 150\n\
         election_timeout_max_ms = 300\n\
         replication_timeout_ms = 5000\n\
         wal_directory = {:?}\n",
        dir.join("data")
    );
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn single_node_serves_writes_metrics_and_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let log = dir.path().join("replicad.log");
    let d = Daemon::start(&config, &log);
    let status = d.wait_leader(0);
    assert_eq!(status["leader"], 1, "{status}");
    assert_eq!(status["voters"], serde_json::json!([1]), "{status}");

    // Put, read back, overwrite, delete.
    let put = http(d.addr, "PUT", "/v1/docs/users/alice", br#"{"age":30}"#).unwrap();
    assert_eq!(put.status, 200, "{}", put.text());
    let lsn1 = put.value()["lsn"].as_u64().expect("lsn");
    d.wait_leader(lsn1);
    let got = http(d.addr, "GET", "/v1/docs/users/alice", b"").unwrap();
    assert_eq!(
        (got.status, got.body.as_slice()),
        (200, &br#"{"age":30}"#[..])
    );

    let put = http(d.addr, "PUT", "/v1/docs/users/bob?mode=ASYNC", b"b1").unwrap();
    assert_eq!(put.status, 200, "{}", put.text());
    assert_eq!(put.value()["mode"], "ASYNC");
    let del = http(d.addr, "DELETE", "/v1/docs/users/bob", b"").unwrap();
    assert_eq!(del.status, 200, "{}", del.text());
    let lsn_del = del.value()["lsn"].as_u64().unwrap();
    assert!(lsn_del > lsn1);
    d.wait_leader(lsn_del);
    let gone = http(d.addr, "GET", "/v1/docs/users/bob", b"").unwrap();
    assert_eq!(gone.status, 404);
    assert!(gone.value()["error"]
        .as_str()
        .unwrap()
        .contains("users/bob"));

    // Errors: bad mode is a 400; SEMI_SYNC needs a follower a single node lacks: 503, not durable.
    let bad = http(d.addr, "PUT", "/v1/docs/users/x?mode=FAST", b"x").unwrap();
    assert_eq!(bad.status, 400, "{}", bad.text());
    assert!(bad.value()["error"].as_str().unwrap().contains("SEMI_SYNC"));
    let semi = http(d.addr, "PUT", "/v1/docs/users/x?mode=SEMI_SYNC", b"x").unwrap();
    assert_eq!(semi.status, 503, "{}", semi.text());
    assert_eq!(semi.value()["leader"], 1);
    let lost = http(d.addr, "GET", "/v1/docs/users/x", b"").unwrap();
    assert_eq!(lost.status, 404, "a refused write must not be applied");
    assert_eq!(http(d.addr, "GET", "/v2/nothing", b"").unwrap().status, 404);

    // Read consistencies: a single node is its own leader, so each one serves the document.
    for q in [
        "consistency=linearizable",
        "consistency=leader",
        "consistency=follower&max_staleness_ms=60000",
        "consistency=BOUNDED&max_staleness_ms=60000",
    ] {
        let got = http(d.addr, "GET", &format!("/v1/docs/users/alice?{q}"), b"").unwrap();
        assert_eq!(
            (got.status, got.body.as_slice()),
            (200, &br#"{"age":30}"#[..]),
            "{q}: {}",
            got.text()
        );
    }
    // ... and a bad read request is a 400 that says what is accepted.
    for (q, says) in [
        (
            "consistency=eventual",
            "linearizable (the default), leader, follower or bounded",
        ),
        (
            "consistency=follower&max_staleness_ms=soon",
            "max_staleness_ms `soon`",
        ),
        (
            "consistency=follower&max_staleness_ms=-5",
            "max_staleness_ms `-5`",
        ),
        ("consistency=follower", "needs max_staleness_ms=N"),
        (
            "consistency=leader&max_staleness_ms=10",
            "follower or bounded only",
        ),
        ("mode=SYNC", "unknown query parameter `mode`"),
    ] {
        let bad = http(d.addr, "GET", &format!("/v1/docs/users/alice?{q}"), b"").unwrap();
        assert_eq!(bad.status, 400, "{q}: {}", bad.text());
        let error = bad.value()["error"].as_str().unwrap().to_string();
        assert!(error.contains(says), "{q}: {error}");
    }

    // Metrics: the values agree with what happened, and promtool accepts the text.
    let m = http(d.addr, "GET", "/metrics", b"").unwrap();
    assert_eq!(m.status, 200);
    let text = m.text();
    assert_eq!(sample(&text, "replicad_role", &["role=\"leader\""]), 1.0);
    assert_eq!(sample(&text, "replicad_role", &["role=\"follower\""]), 0.0);
    assert!(sample(&text, "replicad_term", &["node=\"1\""]) >= 1.0);
    assert!(sample(&text, "replicad_applied_lsn", &["node=\"1\""]) >= lsn_del as f64);
    assert!(sample(&text, "replicad_commit_lsn", &["node=\"1\""]) >= lsn_del as f64);
    assert_eq!(
        sample(
            &text,
            "replicad_writes_total",
            &["mode=\"ASYNC\"", "node=\"1\"", "result=\"ok\""]
        ),
        3.0
    );
    assert_eq!(
        sample(
            &text,
            "replicad_writes_total",
            &["mode=\"SEMI_SYNC\"", "node=\"1\"", "result=\"not_durable\""]
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            "replicad_write_latency_seconds_count",
            &["mode=\"ASYNC\""]
        ),
        3.0
    );
    assert_eq!(
        sample(
            &text,
            "replicad_rejected_votes_total",
            &["reason=\"bad_signature\""]
        ),
        0.0
    );
    // Lag alert counters exist from the start (no follower here, so they stay at 0); the
    // per-follower lag series only appear on a leader with followers (tests/cluster.rs).
    for event in ["raised", "recovered", "ended"] {
        let label = format!("event=\"{event}\"");
        assert_eq!(
            sample(&text, "replicad_lag_alerts_total", &[&label]),
            0.0,
            "{event}"
        );
    }
    assert!(!text.contains("replicad_follower_lag_bytes{"), "{text}");
    // Reads by consistency: the three GETs of alice, bob and x plus the linearizable one of the
    // loop above, then one leader-local read and two bounded ones.
    assert_eq!(
        sample(
            &text,
            "replicad_reads_total",
            &["consistency=\"linearizable\""]
        ),
        4.0
    );
    assert_eq!(
        sample(&text, "replicad_reads_total", &["consistency=\"leader\""]),
        1.0
    );
    assert_eq!(
        sample(&text, "replicad_reads_total", &["consistency=\"follower\""]),
        2.0
    );
    assert_eq!(
        sample(&text, "replicad_reads_refused_total", &["reason=\"stale\""]),
        0.0
    );
    let by_path: f64 = ["lease", "read_index"]
        .iter()
        .map(|p| {
            let label = format!("path=\"{p}\"");
            sample(
                &text,
                "replicad_linearizable_reads_by_path_total",
                &[&label],
            )
        })
        .sum();
    assert_eq!(by_path, 4.0);
    assert_promtool_accepts(&text);

    // SIGKILL, restart on the same directory: the data is still there.
    d.sigkill();
    let d = Daemon::start(&config, &log);
    let status = d.wait_leader(lsn_del);
    assert!(
        status["term"].as_u64().unwrap() >= 2,
        "a restart is a new election: {status}"
    );
    let got = http(d.addr, "GET", "/v1/docs/users/alice", b"").unwrap();
    assert_eq!(
        (got.status, got.body.as_slice()),
        (200, &br#"{"age":30}"#[..])
    );
    assert_eq!(
        http(d.addr, "GET", "/v1/docs/users/bob", b"")
            .unwrap()
            .status,
        404
    );
    // The log continues after the old entries.
    let put = http(d.addr, "PUT", "/v1/docs/users/carol", b"c").unwrap();
    assert_eq!(put.status, 200, "{}", put.text());
    let lsn_carol = put.value()["lsn"].as_u64().unwrap();
    assert!(lsn_carol > lsn_del);
    d.wait_leader(lsn_carol);

    // A clean stop exits 0, and the next start still has everything.
    let exit = d.sigterm();
    assert!(exit.success(), "SIGTERM must stop replicad cleanly: {exit}");
    let d = Daemon::start(&config, &log);
    d.wait_leader(lsn_carol);
    let got = http(d.addr, "GET", "/v1/docs/users/carol", b"").unwrap();
    assert_eq!((got.status, got.body.as_slice()), (200, &b"c"[..]));
}

#[test]
fn config_problems_are_all_listed_with_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(
        &config,
        "node_id = 0\nheartbeat_interval_ms = 5000\nelection_timeout_min_ms = 3000\n\
         bogus_key = 1\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_replicad"))
        .args(["run", "--config"])
        .arg(&config)
        .args(["--admin-addr", "127.0.0.1:0"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for field in ["node_id", "heartbeat_interval_ms", "bogus_key"] {
        assert!(stderr.contains(field), "{field} missing from:\n{stderr}");
    }
    assert!(stderr.contains("bad.toml"), "{stderr}");
}

#[test]
fn peers_without_vote_keys_are_refused_before_touching_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("peers.toml");
    std::fs::write(
        &config,
        format!(
            "node_id = 1\nallow_plaintext_dev = true\nrequire_mtls = false\n\
             wal_directory = {:?}\n\n[[peers]]\nnode_id = 2\naddress = \"127.0.0.1:7402\"\n",
            dir.path().join("data")
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_replicad"))
        .args(["run", "--config"])
        .arg(&config)
        .args(["--admin-addr", "127.0.0.1:0"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Votes are signed in plaintext development mode too: the node key and the peer's public
    // key are config problems (exit 2), each with what to do.
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("node_key_path"), "{stderr}");
    assert!(stderr.contains("replicad keygen --out PATH"), "{stderr}");
    assert!(stderr.contains("peers[0].public_key"), "{stderr}");
    assert!(
        !dir.path().join("data").exists(),
        "a refused start must not touch the disk"
    );
}

#[test]
fn help_lists_the_run_subcommand() {
    let out = Command::new(env!("CARGO_BIN_EXE_replicad"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("run"), "{text}");
    assert!(text.contains("Usage: replicad"), "{text}");
}
