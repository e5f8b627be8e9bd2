//! The register checker on hand-made histories and against a brute-force oracle.

use super::*;
use crate::history::model::Operation;

/// A tiny history builder: times in arbitrary units, `None` end = still pending.
#[derive(Default)]
struct H(Vec<OpRecord>);

impl H {
    fn push(
        &mut self,
        op: Operation,
        completion: Completion,
        start: u64,
        end: Option<u64>,
    ) -> &mut Self {
        let id = self.0.len() as u64;
        self.0.push(OpRecord {
            id,
            process: id,
            op,
            invoke_ns: start,
            complete_ns: end,
            completion,
        });
        self
    }
    fn write(&mut self, v: &str, start: u64, end: u64) -> &mut Self {
        self.push(
            wr(v),
            Completion::Ok {
                read: None,
                lsn: None,
            },
            start,
            Some(end),
        )
    }
    fn write_unknown(&mut self, v: &str, start: u64) -> &mut Self {
        self.push(wr(v), Completion::Unknown, start, Some(start + 1))
    }
    fn write_failed(&mut self, v: &str, start: u64, end: u64) -> &mut Self {
        self.push(wr(v), Completion::Fail, start, Some(end))
    }
    fn read(&mut self, v: Option<&str>, start: u64, end: u64) -> &mut Self {
        let read = v.map(str::to_owned);
        self.push(
            Operation::Read { key: "k".into() },
            Completion::Ok { read, lsn: None },
            start,
            Some(end),
        )
    }
    fn check(&self) -> KeyVerdict {
        let ops: Vec<&OpRecord> = self.0.iter().collect();
        check_register("k", &ops, &LinearizabilityOptions::default())
    }
}

fn wr(v: &str) -> Operation {
    Operation::Write {
        key: "k".into(),
        value: v.into(),
    }
}

fn assert_linearizable(h: &H) {
    match h.check() {
        KeyVerdict::Linearizable { .. } => {}
        other => panic!("expected linearizable, got {other:?}"),
    }
}

fn violation(h: &H) -> LinearizabilityViolation {
    match h.check() {
        KeyVerdict::Violation(v) => v,
        other => panic!("expected a violation, got {other:?}"),
    }
}

#[test]
fn empty_and_sequential_histories_pass() {
    assert_linearizable(&H::default());
    assert_linearizable(
        H::default()
            .read(None, 0, 1)
            .write("a", 2, 3)
            .read(Some("a"), 4, 5),
    );
}

#[test]
fn concurrent_writes_allow_reads_of_either_order_if_consistent() {
    // a and b overlap; later reads may see either, as long as they agree with one order.
    for last in ["a", "b"] {
        assert_linearizable(H::default().write("a", 0, 10).write("b", 5, 15).read(
            Some(last),
            20,
            30,
        ));
    }
    // A read overlapping both writes may see the first winner, then the second.
    assert_linearizable(
        H::default()
            .write("a", 0, 10)
            .write("b", 0, 10)
            .read(Some("b"), 1, 9)
            .read(Some("a"), 11, 12),
    );
}

#[test]
fn stale_read_after_a_completed_write_fails_and_names_the_ops() {
    let v = violation(
        H::default()
            .write("a", 0, 10)
            .write("b", 20, 30)
            .read(Some("a"), 40, 50),
    );
    assert_eq!(v.key, "k");
    let ids = |ops: &[OpRecord]| ops.iter().map(|o| o.id).collect::<Vec<_>>();
    assert_eq!(ids(&v.placed), vec![0, 1], "{v}");
    assert_eq!(ids(&v.ops), vec![2], "the stale read: {v}");
    assert!(v.reason.contains("2 of 3"), "{}", v.reason);
    assert!(v.reason.contains("\"b\""), "{}", v.reason);
}

#[test]
fn read_of_a_value_never_written_fails_without_search() {
    let v = violation(H::default().write("a", 0, 10).read(Some("zzz"), 20, 30));
    assert!(v.reason.contains("no write"), "{}", v.reason);
    assert_eq!(v.ops.len(), 1);
    // A failed write's value must not show up either.
    let v = violation(
        H::default()
            .write_failed("x", 0, 10)
            .read(Some("x"), 20, 30),
    );
    assert!(v.reason.contains("failure"), "{}", v.reason);
    assert_eq!(v.ops.len(), 2);
}

#[test]
fn new_old_inversion_fails() {
    // A write of b overlaps two sequential reads: the first sees b, the later sees a.
    violation(
        H::default()
            .write("a", 0, 5)
            .write("b", 10, 100)
            .read(Some("b"), 20, 30)
            .read(Some("a"), 40, 50),
    );
    // Two readers observe two concurrent writes in opposite orders.
    violation(
        H::default()
            .write("a", 0, 100)
            .write("b", 0, 100)
            .read(Some("a"), 10, 20)
            .read(Some("b"), 30, 40)
            .read(Some("b"), 10, 20)
            .read(Some("a"), 30, 40),
    );
}

#[test]
fn unknown_writes_may_take_effect_late_or_never() {
    // Never took effect.
    assert_linearizable(H::default().write("a", 0, 1).write_unknown("u", 2).read(
        Some("a"),
        10,
        11,
    ));
    // Took effect long after the client gave up, even after a later acknowledged write.
    assert_linearizable(
        H::default()
            .write_unknown("u", 0)
            .write("a", 10, 11)
            .read(Some("a"), 12, 13)
            .read(Some("u"), 20, 21),
    );
    // But never before its invocation.
    violation(H::default().read(Some("u"), 0, 5).write_unknown("u", 10));
    // Once it took effect it cannot be undone.
    violation(
        H::default()
            .write("a", 0, 1)
            .write_unknown("u", 2)
            .read(Some("u"), 10, 11)
            .read(Some("a"), 12, 13),
    );
}

#[test]
fn failed_writes_and_unknown_reads_are_ignored() {
    let mut h = H::default();
    h.write("a", 0, 1).write_failed("b", 2, 3);
    h.push(
        Operation::Read { key: "k".into() },
        Completion::Unknown,
        4,
        None,
    );
    h.read(Some("a"), 5, 6);
    assert_linearizable(&h);
}

#[test]
fn deletes_write_absent() {
    let mut h = H::default();
    h.write("a", 0, 1);
    h.push(
        Operation::Delete { key: "k".into() },
        Completion::Ok {
            read: None,
            lsn: None,
        },
        2,
        Some(3),
    );
    h.read(None, 4, 5);
    assert_linearizable(&h);
    h.read(Some("a"), 6, 7);
    violation(&h);
}

#[test]
fn the_budget_turns_a_hard_history_into_inconclusive() {
    // Concurrent writes, then two reads that disagree on which was last: to say no, the
    // search must try every subset of the writes as the ones placed first.
    let hard = |writes: usize| {
        let mut h = H::default();
        for i in 0..writes {
            h.write(&format!("w{i}"), 0, 1000);
        }
        h.read(Some("w0"), 2000, 2001).read(Some("w1"), 3000, 3001);
        h
    };
    let h = hard(16);
    let ops: Vec<&OpRecord> = h.0.iter().collect();
    let options = LinearizabilityOptions {
        max_configurations_per_key: 500,
    };
    assert_eq!(
        check_register("k", &ops, &options),
        KeyVerdict::Inconclusive { explored: 501 }
    );
    // With room to search (and fewer writes, to keep the test fast) the answer is no.
    assert!(matches!(hard(8).check(), KeyVerdict::Violation(_)));
}

/// The definition, by brute force: some subset of the unknown writes plus every
/// acknowledged operation, in some order that respects real time, replays on a register.
fn brute_force(ops: &[OpRecord]) -> bool {
    let ops: Vec<&OpRecord> = ops
        .iter()
        .filter(|o| match o.completion {
            Completion::Fail => false,
            Completion::Unknown => o.op.is_write(),
            Completion::Ok { .. } => true,
        })
        .collect();
    fn go(ops: &[&OpRecord], placed: u32, value: Option<&str>) -> bool {
        let unplaced = |i: &usize| placed & (1 << i) == 0;
        if (0..ops.len()).filter(unplaced).all(|i| ops[i].is_unknown()) {
            return true;
        }
        (0..ops.len()).filter(unplaced).any(|i| {
            let o = ops[i];
            let blocked = (0..ops.len()).filter(unplaced).any(|j| ops[j].precedes(o));
            if blocked {
                return false;
            }
            match (o.op.written_value(), &o.completion) {
                (Some(w), _) => go(ops, placed | 1 << i, w),
                (None, Completion::Ok { read, .. }) => {
                    read.as_deref() == value && go(ops, placed | 1 << i, value)
                }
                (None, _) => unreachable!(),
            }
        })
    }
    go(&ops, 0, None)
}

#[test]
fn agrees_with_brute_force_on_small_random_histories() {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    // Few distinct values, so that values repeat: the shortcuts must not rely on
    // unique values.
    let values = [None, Some("a"), Some("b"), Some("c")];
    let (mut yes, mut no) = (0, 0);
    for seed in 0..4000u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut h = H::default();
        for _ in 0..rng.random_range(1..=7) {
            let start = rng.random_range(0..20);
            let end = start + rng.random_range(0..10);
            let completion = match rng.random_range(0..10) {
                0 => Completion::Fail,
                1 | 2 => Completion::Unknown,
                _ => Completion::Ok {
                    read: None,
                    lsn: None,
                },
            };
            let value = values[rng.random_range(0..values.len())];
            let op = match rng.random_range(0..3) {
                0 => Operation::Read { key: "k".into() },
                _ => match value {
                    Some(v) => wr(v),
                    None => Operation::Delete { key: "k".into() },
                },
            };
            let completion = match (op.is_write(), completion) {
                (false, Completion::Ok { .. }) => Completion::Ok {
                    read: value.map(str::to_owned),
                    lsn: None,
                },
                (_, c) => c,
            };
            h.push(op, completion, start, Some(end));
        }
        let expected = brute_force(&h.0);
        let got = h.check();
        assert_eq!(
            matches!(got, KeyVerdict::Linearizable { .. }),
            expected,
            "seed {seed}: checker says {got:?}, brute force says {expected}\n{:#?}",
            h.0
        );
        if expected {
            yes += 1
        } else {
            no += 1
        }
    }
    assert!(
        yes > 500 && no > 500,
        "both verdicts are exercised: {yes} / {no}"
    );
}

#[test]
fn whole_history_result_is_per_key() {
    let mut h = H::default();
    h.write("a", 0, 1).read(Some("a"), 2, 3);
    h.push(
        Operation::Write {
            key: "j".into(),
            value: "x".into(),
        },
        Completion::Ok {
            read: None,
            lsn: Some(4),
        },
        0,
        Some(1),
    );
    h.push(
        Operation::Read { key: "j".into() },
        Completion::Ok {
            read: None,
            lsn: None,
        },
        2,
        Some(3),
    );
    let r = check_linearizability(
        &History::from_records(h.0),
        &LinearizabilityOptions::default(),
    );
    assert_eq!(r.keys.len(), 2);
    assert!(matches!(r.keys["k"], KeyVerdict::Linearizable { .. }));
    assert_eq!(
        r.violations().map(|v| v.key.as_str()).collect::<Vec<_>>(),
        vec!["j"]
    );
    let c = r.to_check();
    assert_eq!(c.violations, 1);
    assert!(!c.passed());
}
