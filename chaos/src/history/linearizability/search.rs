//! The depth-first search over one key's operations.

use std::collections::HashSet;

use super::{Entry, KeyVerdict, Kind, LinearizabilityViolation, ABSENT};

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

pub(super) struct Search<'e, 'r> {
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
    pub(super) fn new(entries: &'e [Entry<'r>], budget: u64) -> Self {
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

    pub(super) fn run(mut self, key: &str) -> KeyVerdict {
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
        // A read that may come next and sees the current value is placed now, without
        // branching: placing it earlier never removes an option for the others, since it does
        // not change the register and a placed operation no longer holds anything back.
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
             the last ones placed the register holds {}",
            d.placed_ok,
            self.total_ok,
            value_text(d.value)
        );
        let records = |ids: &[usize]| ids.iter().map(|&i| self.entries[i].rec.clone()).collect();
        LinearizabilityViolation {
            key: key.to_owned(),
            reason,
            placed: records(&d.tail),
            ops: records(&d.stuck),
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
