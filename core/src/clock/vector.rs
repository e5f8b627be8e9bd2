//! Vector clocks: detect whether two versions of a value are causally ordered or concurrent
//! (a conflict that needs resolving) in multi-master replication.
//!
//! Storage is a `Vec<(node, counter)>` sorted by node id with no zero counters. Clusters are
//! small (a handful of writers), so a sorted vector beats a hash map on every operation that
//! matters: `compare` and `merge` are one linear merge-walk over two short, cache-friendly
//! arrays, and equality/hashing can be derived because the representation is canonical.

use std::cmp::Ordering;
use std::fmt;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How two vector clocks relate causally.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VectorOrdering {
    /// `self` happened before `other`: every counter is <= and at least one is <.
    Before,
    /// `self` happened after `other` (the mirror of `Before`).
    After,
    /// Same history.
    Equal,
    /// Neither saw the other's events: concurrent updates, i.e. a conflict.
    Concurrent,
}

/// A vector clock: one event counter per node.
///
/// A node without an entry has counter 0, so `{a: 0}` and `{}` are the same clock. The invariant
/// "sorted by node id, unique ids, no zero counters" is kept by every constructor and mutator
/// (including deserialisation), which is what makes the derived `PartialEq` agree with
/// [`compare`](Self::compare) returning [`VectorOrdering::Equal`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct VectorClock {
    entries: Vec<(u64, u64)>,
}

impl VectorClock {
    /// The empty clock: no events seen from anyone.
    pub const fn new() -> Self {
        Self {
            entries: Vec::new(),
        }
    }

    /// Records a local event on `node` and returns its new counter.
    ///
    /// The counter saturates at `u64::MAX` instead of wrapping; wrapping would silently reverse
    /// causality, and 2^64 events on one node cannot happen in practice.
    pub fn increment(&mut self, node: u64) -> u64 {
        match self.position(node) {
            Ok(i) => {
                let counter = &mut self.entries[i].1;
                *counter = counter.saturating_add(1);
                *counter
            }
            Err(i) => {
                self.entries.insert(i, (node, 1));
                1
            }
        }
    }

    /// Counter for `node` (0 if it has no entry).
    pub fn get(&self, node: u64) -> u64 {
        match self.position(node) {
            Ok(i) => self.entries[i].1,
            Err(_) => 0,
        }
    }

    /// Pointwise maximum: afterwards `self` has seen every event either clock had seen.
    ///
    /// Updates in place without allocating when `other` has no node that `self` lacks, which is
    /// the steady state once every writer has been seen once.
    pub fn merge(&mut self, other: &VectorClock) {
        let mut missing: Vec<(u64, u64)> = Vec::new();
        let mut i = 0;
        for &(node, counter) in &other.entries {
            while i < self.entries.len() && self.entries[i].0 < node {
                i += 1;
            }
            match self.entries.get_mut(i) {
                Some(entry) if entry.0 == node => entry.1 = entry.1.max(counter),
                _ => missing.push((node, counter)),
            }
        }
        if !missing.is_empty() {
            self.entries.extend(missing);
            self.entries.sort_unstable_by_key(|&(node, _)| node);
        }
    }

    /// Causal relation of `self` to `other`, in one merge-walk that stops as soon as the clocks
    /// are known to be concurrent.
    pub fn compare(&self, other: &VectorClock) -> VectorOrdering {
        let (a, b) = (&self.entries, &other.entries);
        let (mut i, mut j) = (0, 0);
        // `self_ahead`: some counter of self is greater; `other_ahead`: the reverse.
        let (mut self_ahead, mut other_ahead) = (false, false);
        while i < a.len() && j < b.len() {
            let ((na, ca), (nb, cb)) = (a[i], b[j]);
            match na.cmp(&nb) {
                Ordering::Less => {
                    self_ahead |= ca > 0;
                    i += 1;
                }
                Ordering::Greater => {
                    other_ahead |= cb > 0;
                    j += 1;
                }
                Ordering::Equal => {
                    self_ahead |= ca > cb;
                    other_ahead |= cb > ca;
                    i += 1;
                    j += 1;
                }
            }
            if self_ahead && other_ahead {
                return VectorOrdering::Concurrent;
            }
        }
        self_ahead |= a[i..].iter().any(|&(_, c)| c > 0);
        other_ahead |= b[j..].iter().any(|&(_, c)| c > 0);
        match (self_ahead, other_ahead) {
            (false, false) => VectorOrdering::Equal,
            (false, true) => VectorOrdering::Before,
            (true, false) => VectorOrdering::After,
            (true, true) => VectorOrdering::Concurrent,
        }
    }

    /// `true` if every event `self` saw was also seen by `other`, and `other` saw more.
    pub fn happened_before(&self, other: &VectorClock) -> bool {
        self.compare(other) == VectorOrdering::Before
    }

    /// `true` if neither clock saw all of the other's events: the versions conflict.
    pub fn is_concurrent(&self, other: &VectorClock) -> bool {
        self.compare(other) == VectorOrdering::Concurrent
    }

    /// `(node, counter)` pairs with a non-zero counter, in increasing node order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (u64, u64)> + '_ {
        self.entries.iter().copied()
    }

    /// Number of nodes with a non-zero counter.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// `true` for the clock that has seen no events.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Builds a clock from `(node, counter)` pairs in any order, dropping zero counters.
    ///
    /// # Errors
    ///
    /// Returns the node id if it appears twice: a clock with two counters for one node is
    /// corrupt, and picking either would be a guess.
    pub fn try_from_entries(
        entries: impl IntoIterator<Item = (u64, u64)>,
    ) -> Result<Self, DuplicateNode> {
        let mut entries: Vec<(u64, u64)> = entries.into_iter().filter(|&(_, c)| c > 0).collect();
        entries.sort_unstable_by_key(|&(node, _)| node);
        if let Some(pair) = entries.windows(2).find(|pair| pair[0].0 == pair[1].0) {
            return Err(DuplicateNode(pair[0].0));
        }
        Ok(Self { entries })
    }

    fn position(&self, node: u64) -> Result<usize, usize> {
        self.entries.binary_search_by_key(&node, |&(n, _)| n)
    }
}

/// Error from [`VectorClock::try_from_entries`]: a node id appeared more than once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "vector clock lists node {0} more than once; the clock is corrupt (each node has exactly \
     one counter)"
)]
pub struct DuplicateNode(pub u64);

impl fmt::Display for VectorClock {
    /// `{1:3, 2:5}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (k, (node, counter)) in self.iter().enumerate() {
            if k > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{node}:{counter}")?;
        }
        f.write_str("}")
    }
}

/// Serialised as a sequence of `[node, counter]` pairs rather than a map, because map keys must
/// be strings in JSON and TOML while pairs work the same in every serde format.
impl Serialize for VectorClock {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.entries.serialize(serializer)
    }
}

/// Accepts pairs in any order and drops zero counters (the canonical form is restored), but
/// rejects a node listed twice.
impl<'de> Deserialize<'de> for VectorClock {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let entries = Vec::<(u64, u64)>::deserialize(deserializer)?;
        Self::try_from_entries(entries).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn vc(pairs: &[(u64, u64)]) -> VectorClock {
        VectorClock::try_from_entries(pairs.iter().copied()).unwrap()
    }

    #[test]
    fn increment_and_get() {
        let mut clock = VectorClock::new();
        assert_eq!(clock.get(7), 0);
        assert_eq!(clock.increment(7), 1);
        assert_eq!(clock.increment(7), 2);
        assert_eq!(clock.increment(3), 1);
        assert_eq!(clock.get(7), 2);
        assert_eq!(clock.get(3), 1);
        assert_eq!(clock.iter().collect::<Vec<_>>(), vec![(3, 1), (7, 2)]);
        assert_eq!(clock.to_string(), "{3:1, 7:2}");
    }

    #[test]
    fn compare_equal_including_missing_entries() {
        assert_eq!(vc(&[]).compare(&vc(&[])), VectorOrdering::Equal);
        assert_eq!(vc(&[(1, 0)]).compare(&vc(&[])), VectorOrdering::Equal);
        assert_eq!(vc(&[(1, 0)]), vc(&[]));
        assert_eq!(
            vc(&[(1, 2), (2, 3)]).compare(&vc(&[(2, 3), (1, 2), (9, 0)])),
            VectorOrdering::Equal
        );
    }

    #[test]
    fn compare_before_and_after() {
        let a = vc(&[(1, 1)]);
        let b = vc(&[(1, 2)]);
        assert_eq!(a.compare(&b), VectorOrdering::Before);
        assert_eq!(b.compare(&a), VectorOrdering::After);
        assert!(a.happened_before(&b));
        assert!(!b.happened_before(&a));

        // A missing entry counts as 0, so a clock with an extra node is later.
        let c = vc(&[(1, 1), (2, 1)]);
        assert_eq!(a.compare(&c), VectorOrdering::Before);
        assert_eq!(c.compare(&a), VectorOrdering::After);
        assert_eq!(vc(&[]).compare(&a), VectorOrdering::Before);
    }

    #[test]
    fn compare_concurrent() {
        let a = vc(&[(1, 2), (2, 1)]);
        let b = vc(&[(1, 1), (2, 2)]);
        assert_eq!(a.compare(&b), VectorOrdering::Concurrent);
        assert!(a.is_concurrent(&b));
        assert!(b.is_concurrent(&a));

        // Disjoint nodes: each saw an event the other did not.
        let c = vc(&[(1, 1)]);
        let d = vc(&[(2, 1)]);
        assert_eq!(c.compare(&d), VectorOrdering::Concurrent);
        // Difference only in the tail after the walk ends.
        let e = vc(&[(1, 2), (5, 1)]);
        let f = vc(&[(1, 3)]);
        assert_eq!(e.compare(&f), VectorOrdering::Concurrent);
    }

    #[test]
    fn compare_with_eight_nodes() {
        let base: Vec<(u64, u64)> = (1..=8).map(|n| (n * 10, n)).collect();
        let a = vc(&base);
        let mut b = a.clone();
        b.increment(80);
        assert_eq!(a.compare(&b), VectorOrdering::Before);
        let mut c = a.clone();
        c.increment(10);
        assert_eq!(b.compare(&c), VectorOrdering::Concurrent);
    }

    #[test]
    fn merge_takes_pointwise_max_and_adds_missing_nodes() {
        let mut a = vc(&[(1, 5), (3, 1)]);
        a.merge(&vc(&[(1, 2), (2, 4), (3, 7), (9, 1)]));
        assert_eq!(a, vc(&[(1, 5), (2, 4), (3, 7), (9, 1)]));
        assert_eq!(
            a.iter().collect::<Vec<_>>(),
            vec![(1, 5), (2, 4), (3, 7), (9, 1)]
        );
    }

    #[test]
    fn increment_saturates() {
        let mut a = vc(&[(1, u64::MAX)]);
        assert_eq!(a.increment(1), u64::MAX);
    }

    #[test]
    fn duplicate_nodes_are_rejected() {
        let err = VectorClock::try_from_entries([(4, 1), (4, 2)]).unwrap_err();
        assert_eq!(err, DuplicateNode(4));
        assert!(err.to_string().contains("node 4 more than once"));
    }

    #[test]
    fn serde_round_trip_as_pairs() {
        #[derive(Serialize, Deserialize)]
        struct Doc {
            clock: VectorClock,
        }
        let clock = vc(&[(2, 9), (1, 3)]);
        let text = toml::to_string(&Doc {
            clock: clock.clone(),
        })
        .unwrap();
        let back: Doc = toml::from_str(&text).unwrap();
        assert_eq!(back.clock, clock);

        // Unsorted input with zero counters is normalised; duplicates are an error.
        let back: Doc = toml::from_str("clock = [[5, 1], [2, 0], [1, 4]]").unwrap();
        assert_eq!(back.clock.iter().collect::<Vec<_>>(), vec![(1, 4), (5, 1)]);
        let err = toml::from_str::<Doc>("clock = [[5, 1], [5, 2]]")
            .err()
            .unwrap();
        assert!(err.to_string().contains("more than once"), "{err}");
    }

    fn arb_clock() -> impl Strategy<Value = VectorClock> {
        // Few node ids so that clocks overlap often; counters include 0 to exercise the
        // "missing equals zero" rule.
        proptest::collection::btree_map(0u64..6, 0u64..4, 0..6)
            .prop_map(|m| VectorClock::try_from_entries(m).unwrap())
    }

    fn merged(a: &VectorClock, b: &VectorClock) -> VectorClock {
        let mut out = a.clone();
        out.merge(b);
        out
    }

    proptest! {
        #[test]
        fn merge_is_commutative(a in arb_clock(), b in arb_clock()) {
            prop_assert_eq!(merged(&a, &b), merged(&b, &a));
        }

        #[test]
        fn merge_is_idempotent(a in arb_clock(), b in arb_clock()) {
            prop_assert_eq!(merged(&a, &a), a.clone());
            let ab = merged(&a, &b);
            prop_assert_eq!(merged(&ab, &b), ab);
        }

        #[test]
        fn merge_is_associative(a in arb_clock(), b in arb_clock(), c in arb_clock()) {
            prop_assert_eq!(merged(&merged(&a, &b), &c), merged(&a, &merged(&b, &c)));
        }

        #[test]
        fn merge_is_an_upper_bound(a in arb_clock(), b in arb_clock()) {
            let m = merged(&a, &b);
            prop_assert!(matches!(a.compare(&m), VectorOrdering::Before | VectorOrdering::Equal));
            prop_assert!(matches!(b.compare(&m), VectorOrdering::Before | VectorOrdering::Equal));
        }

        #[test]
        fn compare_matches_pointwise_definition(a in arb_clock(), b in arb_clock()) {
            let nodes: Vec<u64> = (0..6).collect();
            let le = nodes.iter().all(|&n| a.get(n) <= b.get(n));
            let ge = nodes.iter().all(|&n| a.get(n) >= b.get(n));
            let expected = match (le, ge) {
                (true, true) => VectorOrdering::Equal,
                (true, false) => VectorOrdering::Before,
                (false, true) => VectorOrdering::After,
                (false, false) => VectorOrdering::Concurrent,
            };
            prop_assert_eq!(a.compare(&b), expected);
            prop_assert_eq!(a == b, expected == VectorOrdering::Equal);
        }
    }
}
