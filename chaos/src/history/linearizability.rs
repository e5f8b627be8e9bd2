//! Linearizability of a read/write register, checked key by key.
//!
//! A key-value store is linearizable iff each key, taken alone, is a linearizable register
//! (linearizability is *local*: Herlihy & Wing 1990), so the history is split by key and each
//! part is checked on its own, which keeps every search small.
//!
//! # The search
//!
//! This is the Wing & Gong depth-first search with Lowe's memoization ("WGL"): repeatedly pick
//! an operation that may take effect next, apply it to a model register, and backtrack when the
//! model disagrees with what a client saw. An operation may take effect next when no other
//! operation still to be placed completed (acknowledged or failed) strictly before it was
//! invoked. A configuration (set of operations already placed, register value) that was
//! explored once and failed is never explored again.
//!
//! What each recorded outcome means for the search:
//! - `Ok` reads and writes must take effect inside their interval;
//! - `Fail` operations never took effect and are left out;
//! - `Unknown` writes may take effect at any time after their invocation, or never: they have
//!   no deadline and the search may end with them unplaced;
//! - `Unknown` reads say nothing about the register and are left out.
//!
//! Two register-specific shortcuts keep typical histories linear in size:
//! - a read that may come next and sees the current value is placed at once without
//!   branching: placing it earlier never removes an option for the others (it does not change
//!   the register, and an operation that has been placed no longer holds anything back);
//! - a read of a value no write of the key could have produced is reported before any search.
//!
//! Branches are tried in order of deadline, so acknowledged writes are placed before unknown
//! ones and a correct history is usually found on the first descent.
//!
//! The memo stores a 128-bit fingerprint of the placed set (XOR of per-operation random keys,
//! updated in O(1) per step) instead of the set itself, to keep memory independent of history
//! length. A fingerprint collision could only prune a branch that was in fact unexplored, that
//! is report a violation that is not one, never hide one; at 2^-128 per pair it does not happen
//! in practice.
//!
//! # Why not stateright's `LinearizabilityTester`
//!
//! It orders operations by the sequence of `on_invoke`/`on_return` calls rather than by
//! recorded times, allows one in-flight operation per thread, searches without memoization or
//! budget (exponential on wide histories, with no way to give up), and the `stateright` crate
//! brings a model checker and its web explorer along; a register checker is ~300 lines.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::model::{Completion, History, OpRecord};
use super::report::CheckResult;

/// Limits on the search.
#[derive(Clone, Debug)]
pub struct LinearizabilityOptions {
    /// The most configurations the search may explore for one key before it gives up and
    /// reports [`KeyVerdict::Inconclusive`]. Typical histories need about one per operation;
    /// the default (one million) bounds a pathological key to seconds and ~50 MB.
    pub max_configurations_per_key: u64,
}

impl Default for LinearizabilityOptions {
    fn default() -> Self {
        LinearizabilityOptions {
            max_configurations_per_key: 1_000_000,
        }
    }
}

/// The verdict for one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyVerdict {
    /// A linearization exists; `explored` configurations were visited to find it.
    Linearizable { explored: u64 },
    /// No linearization exists.
    Violation(LinearizabilityViolation),
    /// The search budget ran out before an answer.
    Inconclusive { explored: u64 },
}

/// Why a key's operations cannot be linearized.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinearizabilityViolation {
    /// The key.
    pub key: String,
    /// One sentence of explanation.
    pub reason: String,
    /// The operations involved: for a failed search, the last ones placed on the longest
    /// partial linearization found, then the acknowledged ones none of which could come next.
    pub ops: Vec<OpRecord>,
}

impl std::fmt::Display for LinearizabilityViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "key {:?}: {}", self.key, self.reason)?;
        for op in &self.ops {
            write!(f, "\n    {op}")?;
        }
        Ok(())
    }
}

/// The verdicts for every key of a history.
#[derive(Clone, Debug, Default)]
pub struct LinearizabilityResult {
    /// One verdict per key, keys in order.
    pub keys: BTreeMap<String, KeyVerdict>,
}

impl LinearizabilityResult {
    /// True when every key is linearizable (none violated, none inconclusive).
    pub fn is_linearizable(&self) -> bool {
        self.keys
            .values()
            .all(|v| matches!(v, KeyVerdict::Linearizable { .. }))
    }

    /// The violations found.
    pub fn violations(&self) -> impl Iterator<Item = &LinearizabilityViolation> {
        self.keys.values().filter_map(|v| match v {
            KeyVerdict::Violation(v) => Some(v),
            _ => None,
        })
    }

    /// The keys whose search ran out of budget.
    pub fn inconclusive_keys(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().filter_map(|(k, v)| match v {
            KeyVerdict::Inconclusive { .. } => Some(k.as_str()),
            _ => None,
        })
    }

    /// The result as a report entry named `linearizable`.
    pub fn to_check(&self) -> CheckResult {
        let mut details: Vec<String> = self.violations().map(|v| v.to_string()).collect();
        let violations = details.len();
        let inconclusive: Vec<&str> = self.inconclusive_keys().collect();
        if !inconclusive.is_empty() {
            details.push(format!(
                "search budget exhausted, no verdict for keys: {}",
                inconclusive.join(", ")
            ));
        }
        if violations == 0 && inconclusive.is_empty() {
            details.push(format!("{} keys linearizable", self.keys.len()));
        }
        CheckResult::new(
            "linearizable",
            violations,
            !inconclusive.is_empty(),
            details,
        )
    }
}

/// Checks every key of `history` as an independent register that starts absent.
///
/// Record only linearizable reads in the history given here: a read served by a lagging
/// follower is allowed to be stale and would be reported.
pub fn check_linearizability(
    history: &History,
    options: &LinearizabilityOptions,
) -> LinearizabilityResult {
    let keys = history
        .by_key()
        .into_iter()
        .map(|(key, ops)| (key.to_owned(), check_register(key, &ops, options)))
        .collect();
    LinearizabilityResult { keys }
}

/// Checks the operations of one key (any order; operations on other keys are a caller bug and
/// are treated as if on this key) against a register that starts absent.
pub fn check_register(
    key: &str,
    ops: &[&OpRecord],
    options: &LinearizabilityOptions,
) -> KeyVerdict {
    let mut values = ValueIds::default();
    let mut entries: Vec<Entry> = ops
        .iter()
        .filter(|r| match (&r.completion, r.op.is_write()) {
            (Completion::Fail, _) => false,
            (Completion::Unknown, is_write) => is_write,
            (Completion::Ok { .. }, _) => true,
        })
        .map(|r| {
            let kind = match (r.op.written_value(), &r.completion) {
                (Some(v), _) => Kind::Write(values.id(v)),
                (None, Completion::Ok { read, .. }) => Kind::Read(values.id(read.as_deref())),
                (None, _) => unreachable!("unknown and failed reads were filtered out"),
            };
            Entry {
                rec: r,
                invoke: r.invoke_ns,
                deadline: r.effect_deadline_ns(),
                kind,
                must: r.is_ok(),
            }
        })
        .collect();
    entries.sort_by_key(|e| (e.invoke, e.rec.id));

    if let Some(v) = read_of_unwritten_value(key, ops, &entries) {
        return KeyVerdict::Violation(v);
    }
    Search::new(&entries, options.max_configurations_per_key).run(key)
}

/// Interns register values: the search compares `u32`s, not strings. 0 is "absent".
#[derive(Default)]
struct ValueIds<'a> {
    ids: HashMap<Option<&'a str>, u32>,
}

impl<'a> ValueIds<'a> {
    fn id(&mut self, value: Option<&'a str>) -> u32 {
        if value.is_none() {
            return ABSENT;
        }
        let next = self.ids.len() as u32 + 1;
        *self.ids.entry(value).or_insert(next)
    }
}

const ABSENT: u32 = 0;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Write(u32),
    Read(u32),
}

struct Entry<'a> {
    rec: &'a OpRecord,
    invoke: u64,
    /// Must take effect by then; `u64::MAX` for unknown outcomes.
    deadline: u64,
    kind: Kind,
    /// Acknowledged: must be placed. Unknown writes need not be.
    must: bool,
}

/// The cheap check first: a read of a value that no kept write produces can never be placed,
/// and saying so directly is a better explanation than a failed search.
fn read_of_unwritten_value(
    key: &str,
    all: &[&OpRecord],
    entries: &[Entry],
) -> Option<LinearizabilityViolation> {
    let written: HashSet<u32> = entries
        .iter()
        .filter_map(|e| match e.kind {
            Kind::Write(v) => Some(v),
            Kind::Read(_) => None,
        })
        .chain([ABSENT])
        .collect();
    let bad = entries
        .iter()
        .find(|e| matches!(e.kind, Kind::Read(v) if !written.contains(&v)))?;
    let seen = match &bad.rec.completion {
        Completion::Ok { read, .. } => read.as_deref(),
        _ => None,
    };
    let failed_writers: Vec<OpRecord> = all
        .iter()
        .filter(|r| matches!(r.completion, Completion::Fail) && r.op.written_value() == Some(seen))
        .map(|r| (*r).clone())
        .collect();
    let reason = if failed_writers.is_empty() {
        format!("read saw {seen:?}, a value no write of this key wrote")
    } else {
        format!("read saw {seen:?}, written only by writes that reported failure")
    };
    let mut ops = vec![bad.rec.clone()];
    ops.extend(failed_writers);
    Some(LinearizabilityViolation {
        key: key.to_owned(),
        reason,
        ops,
    })
}

/// One level of the depth-first search: the operations that may come next, which one is being
/// tried, and what to restore when it is undone.
struct Frame {
    children: Vec<usize>,
    next: usize,
    applied: Option<usize>,
    value_before: u32,
}

/// The longest partial linearization seen, kept to explain a violation.
#[derive(Default)]
struct Deepest {
    placed_ok: usize,
    tail: Vec<usize>,
    value: u32,
    stuck: Vec<usize>,
}

struct Search<'e, 'r> {
    entries: &'e [Entry<'r>],
    budget: u64,
    /// Bit i set: entry i has been placed.
    placed: Vec<u64>,
    fingerprint: u128,
    zobrist: Vec<u128>,
    value: u32,
    placed_ok: usize,
    total_ok: usize,
    memo: HashSet<(u128, u32)>,
    deepest: Deepest,
}

impl<'e, 'r> Search<'e, 'r> {
    fn new(entries: &'e [Entry<'r>], budget: u64) -> Self {
        let zobrist = (0..entries.len() as u64)
            .map(|i| ((splitmix64(2 * i + 1) as u128) << 64) | splitmix64(2 * i + 2) as u128)
            .collect();
        Search {
            entries,
            budget,
            placed: vec![0; entries.len().div_ceil(64)],
            fingerprint: 0,
            zobrist,
            value: ABSENT,
            placed_ok: 0,
            total_ok: entries.iter().filter(|e| e.must).count(),
            memo: HashSet::new(),
            deepest: Deepest::default(),
        }
    }

    fn run(mut self, key: &str) -> KeyVerdict {
        if self.total_ok == 0 {
            return KeyVerdict::Linearizable { explored: 0 };
        }
        self.memo.insert((0, ABSENT));
        let mut stack = vec![self.expand(&[])];
        while let Some(top) = stack.last_mut() {
            if let Some(i) = top.applied.take() {
                self.undo(i, top.value_before);
            }
            let Some(&i) = top.children.get(top.next) else {
                stack.pop();
                continue;
            };
            top.next += 1;
            top.value_before = self.value;
            top.applied = Some(i);
            self.apply(i);

            if self.placed_ok == self.total_ok {
                return KeyVerdict::Linearizable {
                    explored: self.memo.len() as u64,
                };
            }
            if !self.memo.insert((self.fingerprint, self.value)) {
                continue; // explored before, and it failed
            }
            if self.memo.len() as u64 > self.budget {
                return KeyVerdict::Inconclusive {
                    explored: self.memo.len() as u64,
                };
            }
            let frame = self.expand(&stack);
            stack.push(frame);
        }
        KeyVerdict::Violation(self.explain(key))
    }

    /// The children of the current configuration, and a note of it if it is the deepest yet.
    fn expand(&mut self, stack: &[Frame]) -> Frame {
        let candidates = self.candidates();
        if self.placed_ok > self.deepest.placed_ok || stack.is_empty() {
            let path = stack.iter().rev().filter_map(|f| f.applied).take(3);
            let mut tail: Vec<usize> = path.collect();
            tail.reverse();
            self.deepest = Deepest {
                placed_ok: self.placed_ok,
                tail,
                value: self.value,
                stuck: candidates
                    .iter()
                    .copied()
                    .filter(|&i| self.entries[i].must)
                    .take(8)
                    .collect(),
            };
        }
        let matching_read = candidates
            .iter()
            .copied()
            .find(|&i| self.entries[i].kind == Kind::Read(self.value));
        let children = match matching_read {
            Some(read) => vec![read],
            None => self.write_children(&candidates),
        };
        Frame {
            children,
            next: 0,
            applied: None,
            value_before: self.value,
        }
    }

    /// The writes worth trying next, most promising first.
    ///
    /// An unknown write is tried only right before a read that may come next and sees its
    /// value. That loses nothing: in any linearization, an unknown write that no read observes
    /// before the next write can be dropped (it "never happened"), and one that is observed is
    /// directly followed by such a read, which may come next as soon as the write may (an
    /// unknown write holds nothing back). Without this rule every pending unknown write could
    /// be slotted in anywhere, doubling the configurations per unknown write.
    ///
    /// Writes whose value a waiting read wants go first: placing one and then its reader is
    /// usually how a correct history continues. Then the others, earliest deadline first.
    fn write_children(&self, candidates: &[usize]) -> Vec<usize> {
        let wanted: HashSet<u32> = candidates
            .iter()
            .filter_map(|&i| match self.entries[i].kind {
                Kind::Read(v) => Some(v),
                Kind::Write(_) => None,
            })
            .collect();
        let mut writes: Vec<(bool, u64, usize)> = candidates
            .iter()
            .filter_map(|&i| {
                let e = &self.entries[i];
                let Kind::Write(v) = e.kind else { return None };
                let is_wanted = wanted.contains(&v);
                (e.must || is_wanted).then_some((!is_wanted, e.deadline, i))
            })
            .collect();
        writes.sort_unstable();
        writes.into_iter().map(|(_, _, i)| i).collect()
    }

    /// The unplaced operations that no other unplaced operation must precede. Entries are in
    /// invocation order, so the scan stops at the first one invoked after the earliest
    /// deadline seen: it and all later ones are preceded by that operation.
    fn candidates(&self) -> Vec<usize> {
        let mut out = Vec::new();
        let mut min_deadline = u64::MAX;
        let mut i = self
            .placed
            .iter()
            .position(|w| *w != u64::MAX)
            .map_or(self.entries.len(), |w| w * 64);
        while i < self.entries.len() {
            if i % 64 == 0 && self.placed[i / 64] == u64::MAX {
                i += 64;
                continue;
            }
            if !self.is_placed(i) {
                let e = &self.entries[i];
                if e.invoke > min_deadline {
                    break;
                }
                min_deadline = min_deadline.min(e.deadline);
                out.push(i);
            }
            i += 1;
        }
        // An entry seen before the minimum dropped may have been invoked after it.
        out.retain(|&i| self.entries[i].invoke <= min_deadline);
        out
    }

    fn is_placed(&self, i: usize) -> bool {
        self.placed[i / 64] & (1 << (i % 64)) != 0
    }

    fn apply(&mut self, i: usize) {
        self.placed[i / 64] |= 1 << (i % 64);
        self.fingerprint ^= self.zobrist[i];
        if let Kind::Write(v) = self.entries[i].kind {
            self.value = v;
        }
        if self.entries[i].must {
            self.placed_ok += 1;
        }
    }

    fn undo(&mut self, i: usize, value_before: u32) {
        self.placed[i / 64] &= !(1 << (i % 64));
        self.fingerprint ^= self.zobrist[i];
        self.value = value_before;
        if self.entries[i].must {
            self.placed_ok -= 1;
        }
    }

    fn explain(&self, key: &str) -> LinearizabilityViolation {
        let d = &self.deepest;
        let value_text = |v: u32| {
            self.entries
                .iter()
                .find_map(|e| match (e.kind, e.rec.op.written_value()) {
                    (Kind::Write(w), Some(Some(s))) if w == v && v != ABSENT => {
                        Some(format!("{s:?}"))
                    }
                    _ => None,
                })
                .unwrap_or_else(|| "absent".to_owned())
        };
        let reason = format!(
            "not linearizable: at best {} of {} acknowledged operations can be ordered; after \
             the last ones placed the register holds {}, and none of the acknowledged \
             operations that may come next can follow",
            d.placed_ok,
            self.total_ok,
            value_text(d.value)
        );
        let ops = d
            .tail
            .iter()
            .chain(&d.stuck)
            .map(|&i| self.entries[i].rec.clone())
            .collect();
        LinearizabilityViolation {
            key: key.to_owned(),
            reason,
            ops,
        }
    }
}

/// Per-operation fingerprint keys; any well-mixed function will do, and a fixed one keeps runs
/// reproducible.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
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
        let v = violation(H::default().write("a", 0, 10).write("b", 20, 30).read(
            Some("a"),
            40,
            50,
        ));
        assert_eq!(v.key, "k");
        let ids: Vec<u64> = v.ops.iter().map(|o| o.id).collect();
        assert_eq!(ids, vec![0, 1, 2], "{v}");
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
}
