//! SIGKILL a process that appends with group commit, at random moments, many times over the
//! same directory. After each kill the WAL must reopen and hold every acknowledged record, in
//! LSN order, with its exact content; anything else it returns must be a complete record.
//!
//! Seeded: set REPL_CRASH_SEED to replay a failing run; REPL_CRASH_ROUNDS to run longer.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use replication_core::wal::{Durability, Wal, WalOptions};
use replication_process_tests::payload_for;

#[test]
fn acknowledged_records_survive_sigkill() {
    let seed: u64 = std::env::var("REPL_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    let rounds: u32 = std::env::var("REPL_CRASH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    eprintln!("crash test seed {seed}; replay with REPL_CRASH_SEED={seed} cargo test -p replication-process-tests --test wal_crash");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    // Everything ever acknowledged, across rounds: LSN -> document id.
    let mut acked: HashMap<u64, String> = HashMap::new();
    let mut total_checked = 0usize;
    for round in 0..rounds {
        let writers = rng.random_range(1..=8u32);
        let mut child = Command::new(env!("CARGO_BIN_EXE_wal-crash-child"))
            .arg(dir.path())
            .arg(round.to_string())
            .arg(writers.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        // Recovery time varies with load: start the kill timer once the child is appending.
        let mut ready = String::new();
        stdout.read_line(&mut ready).unwrap();
        assert_eq!(
            ready.trim_end(),
            "READY",
            "seed {seed} round {round}: child did not start"
        );
        let reader =
            std::thread::spawn(move || stdout.lines().map_while(Result::ok).collect::<Vec<_>>());
        std::thread::sleep(Duration::from_millis(rng.random_range(20..150)));
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        child.wait().unwrap();
        let lines = reader.join().unwrap();
        for line in &lines {
            let mut parts = line.split(' ');
            let (Some("ACK"), Some(lsn), Some(id)) = (parts.next(), parts.next(), parts.next())
            else {
                // The kill may cut the last line short: an unfinished line is no acknowledgement.
                continue;
            };
            let lsn: u64 = lsn.parse().unwrap();
            if let Some(prev) = acked.insert(lsn, id.to_owned()) {
                // An LSN may be reused only if the earlier holder was never acknowledged.
                panic!("seed {seed} round {round}: LSN {lsn} acknowledged twice ({prev}, {id})");
            }
        }

        let mut opts = WalOptions::new(dir.path());
        opts.durability = Durability::EveryCommit;
        opts.segment_size_bytes = 256 * 1024;
        let wal = Wal::open(opts)
            .unwrap_or_else(|e| panic!("seed {seed} round {round}: reopen failed: {e}"));
        let first = wal.first_lsn();
        for (expected_lsn, r) in (first..).zip(wal.read_from(first).unwrap()) {
            let r = r.unwrap_or_else(|e| panic!("seed {seed} round {round}: read failed: {e}"));
            assert_eq!(r.lsn, expected_lsn, "seed {seed}: LSNs must be dense");
            assert_eq!(
                r.payload.as_ref(),
                payload_for(&r.doc_id).as_slice(),
                "seed {seed} round {round}: LSN {} ({}) is not a complete record",
                r.lsn,
                r.doc_id
            );
            if let Some(id) = acked.get(&r.lsn) {
                assert_eq!(
                    &r.doc_id, id,
                    "seed {seed} round {round}: LSN {} holds the wrong record",
                    r.lsn
                );
            }
            total_checked += 1;
        }
        let last = wal.last_lsn();
        if let Some(max_acked) = acked.keys().max() {
            assert!(
                last >= *max_acked,
                "seed {seed} round {round}: acknowledged LSN {max_acked} lost (WAL ends at {last})"
            );
        }
        // Records after the last acknowledged one were never promised; the next round appends
        // after whatever survived, so forget acknowledgements beyond the surviving tail.
        acked.retain(|&lsn, _| lsn <= last);
    }
    assert!(
        acked.len() > 100,
        "seed {seed}: only {} acknowledged records over {rounds} rounds",
        acked.len()
    );
    eprintln!(
        "{rounds} rounds, {} acknowledged records verified, {total_checked} record reads",
        acked.len()
    );
}
