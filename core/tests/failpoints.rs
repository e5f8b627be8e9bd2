//! Fault injection (build with `--features failpoints`): each injected fault yields a clear
//! error, poisons the WAL against further writes, and never loses an acknowledged record.
//!
//! Failpoints are process-global, so the scenarios run one after another in one test.

mod common;

use common::*;
use replication_core::wal::{Durability, Wal, WalError, WalOptions};

fn durable(dir: &std::path::Path) -> WalOptions {
    let mut o = no_compression(opts(dir));
    o.durability = Durability::EveryCommit;
    o
}

/// Appends 1..=100 (acknowledged), injects `fault`, checks the failing append errors and the
/// WAL refuses writes, then reopens and checks every acknowledged record is intact.
fn scenario(point: &str, action: &str, check_err: impl Fn(&WalError)) {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(durable(dir.path())).unwrap();
    for i in 1..=100 {
        assert_eq!(wal.append(&rec(i)).unwrap(), i);
    }
    fail::cfg(point, action).unwrap();
    let err = wal
        .append(&rec(101))
        .expect_err("the injected fault must surface");
    fail::remove(point);
    check_err(&err);
    assert!(
        matches!(wal.append(&rec(101)), Err(WalError::Poisoned(_))),
        "{point}: the WAL must refuse writes after a failed write"
    );
    drop(wal);
    let wal = Wal::open(durable(dir.path())).unwrap();
    let all: Vec<_> = wal.read_from(1).unwrap().map(|r| r.unwrap()).collect();
    assert!(
        all.len() == 100 || all.len() == 101,
        "{point}: {} records",
        all.len()
    );
    all.iter().zip(1..).for_each(|(r, i)| assert_rec(r, i));
    // Writing continues after recovery.
    let next = wal.last_lsn() + 1;
    assert_eq!(wal.append(&rec(next)).unwrap(), next);
}

#[test]
fn injected_faults() {
    let _scenario = fail::FailScenario::setup();
    scenario("wal::write", "return(enospc)", |e| {
        let msg = e.to_string();
        assert!(msg.contains("No space left"), "{msg}");
    });
    scenario("wal::write", "return(torn)", |e| {
        assert!(matches!(e, WalError::Io { .. }), "{e}");
    });
    scenario("wal::fsync", "return", |e| {
        assert!(e.to_string().contains("Input/output error"), "{e}");
    });

    // A bit flipped on its way to disk is acknowledged (the disk lied) but is caught by the
    // checksum on the next read or reopen, with the file and offset in the error.
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(durable(dir.path())).unwrap();
    for i in 1..=10 {
        wal.append(&rec(i)).unwrap();
    }
    fail::cfg("wal::write", "1*return(bitflip)").unwrap();
    wal.append(&rec(11)).unwrap();
    fail::remove("wal::write");
    wal.append(&rec(12)).unwrap();
    let results: Vec<_> = wal.read_from(1).unwrap().collect();
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 10);
    assert!(matches!(
        results.last(),
        Some(Err(WalError::Corrupt { .. }))
    ));
    drop(wal);
    match Wal::open(durable(dir.path())) {
        Err(WalError::Corrupt { path, offset, .. }) => {
            assert!(path.ends_with("00000000000000000001.wal"));
            assert!(offset > 0);
        }
        other => panic!("reopen after a bit flip: {:?}", other.map(|_| ())),
    }
}
