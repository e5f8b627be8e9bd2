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
//! Register-specific shortcuts keep typical histories near linear in size (each is argued
//! where it is implemented, in `search.rs`, and the whole is checked against a brute-force
//! oracle in the tests):
//! - a read that may come next and sees the current value is placed at once, without
//!   branching;
//! - an unknown write is placed only right before a read that observes it;
//! - writes that a waiting read wants are tried first, then the others by deadline;
//! - a read of a value no write of the key could have produced is reported before any search.
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
//! brings a model checker and its web explorer along; a register checker is a few hundred lines.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::history::model::{Completion, History, OpRecord};
use crate::history::report::CheckResult;

mod search;
#[cfg(test)]
mod tests;

use search::Search;

/// Limits on the search.
#[derive(Clone, Debug)]
pub struct LinearizabilityOptions {
    /// The most configurations the search may explore for one key before it gives up and
    /// reports [`KeyVerdict::Inconclusive`]. Typical histories need about one per operation;
    /// the default (one million) bounds a pathological key to seconds and tens of MB.
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
    /// For a failed search, the last operations (up to three) of the longest partial
    /// linearization found, in order; empty when no search was needed.
    pub placed: Vec<OpRecord>,
    /// The operations at fault: for a failed search, the acknowledged ones that could have
    /// come next after `placed` yet none of which fits there; otherwise the impossible read
    /// and any failed write of the value it saw.
    pub ops: Vec<OpRecord>,
}

impl std::fmt::Display for LinearizabilityViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "key {:?}: {}", self.key, self.reason)?;
        if !self.placed.is_empty() {
            f.write_str("\n  last placed:")?;
            for op in &self.placed {
                write!(f, "\n    {op}")?;
            }
            f.write_str("\n  none of these can follow:")?;
        }
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
        placed: Vec::new(),
        ops,
    })
}
