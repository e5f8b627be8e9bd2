//! CDC delivers every committed change exactly once per slot.
//!
//! Each replication slot is an independent consumer: a change committed at LSN `l` must reach
//! every slot once, however many reconnects and failovers happened. A missing LSN is lost data
//! for the consumer; a duplicated one breaks consumers that are not idempotent; an LSN that was
//! never committed means the slot saw an uncommitted (possibly later rolled back) change.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::model::Lsn;
use super::report::CheckResult;

/// The name of a CDC slot.
pub type SlotName = String;

/// What went wrong for one slot; every list ascending.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SlotDelivery {
    /// Committed but never delivered.
    pub missing: Vec<Lsn>,
    /// Delivered more than once, with the number of deliveries.
    pub duplicated: Vec<(Lsn, usize)>,
    /// Delivered but not in the committed set.
    pub uncommitted: Vec<Lsn>,
}

impl SlotDelivery {
    /// Whether the slot got exactly the committed changes, once each.
    pub fn is_exact(&self) -> bool {
        self.missing.is_empty() && self.duplicated.is_empty() && self.uncommitted.is_empty()
    }
}

/// The slots that did not get exactly `committed`, by name. `committed` holds the LSNs every
/// slot should see: for a slot created mid-run, pass only what was committed after it.
pub fn cdc_exactly_once(
    committed: &[Lsn],
    delivered_per_slot: &HashMap<SlotName, Vec<Lsn>>,
) -> BTreeMap<SlotName, SlotDelivery> {
    let committed: BTreeSet<Lsn> = committed.iter().copied().collect();
    let mut out = BTreeMap::new();
    for (slot, delivered) in delivered_per_slot {
        let mut counts: BTreeMap<Lsn, usize> = BTreeMap::new();
        for &lsn in delivered {
            *counts.entry(lsn).or_default() += 1;
        }
        let d = SlotDelivery {
            missing: committed
                .iter()
                .copied()
                .filter(|l| !counts.contains_key(l))
                .collect(),
            duplicated: counts
                .iter()
                .filter(|(_, n)| **n > 1)
                .map(|(l, n)| (*l, *n))
                .collect(),
            uncommitted: counts
                .keys()
                .copied()
                .filter(|l| !committed.contains(l))
                .collect(),
        };
        if !d.is_exact() {
            out.insert(slot.clone(), d);
        }
    }
    out
}

/// The result of [`cdc_exactly_once`] as a report entry named `cdc_exactly_once`; each
/// missing, duplicated or uncommitted LSN is one violation.
pub fn cdc_check(result: &BTreeMap<SlotName, SlotDelivery>) -> CheckResult {
    let mut count = 0;
    let mut details = Vec::new();
    for (slot, d) in result {
        count += d.missing.len() + d.duplicated.len() + d.uncommitted.len();
        let mut parts = Vec::new();
        if !d.missing.is_empty() {
            parts.push(format!("missing {}", list(d.missing.iter())));
        }
        if !d.duplicated.is_empty() {
            let dups = d.duplicated.iter().map(|(l, n)| format!("{l} x{n}"));
            parts.push(format!(
                "duplicated {}",
                dups.collect::<Vec<_>>().join(", ")
            ));
        }
        if !d.uncommitted.is_empty() {
            parts.push(format!("uncommitted {}", list(d.uncommitted.iter())));
        }
        details.push(format!("slot {slot}: {}", parts.join("; ")));
    }
    CheckResult::new("cdc_exactly_once", count, false, details)
}

/// At most 20 LSNs, then a count, so a slot that lost everything stays one readable line.
fn list<'a>(lsns: impl ExactSizeIterator<Item = &'a Lsn>) -> String {
    let n = lsns.len();
    let mut s: Vec<String> = lsns.take(20).map(|l| l.to_string()).collect();
    if n > 20 {
        s.push(format!("... ({n} in all)"));
    }
    s.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_duplicated_and_uncommitted_are_reported_per_slot() {
        let delivered: HashMap<SlotName, Vec<Lsn>> = [
            ("good".to_string(), vec![3, 1, 2]),
            ("bad".to_string(), vec![1, 1, 1, 4]),
        ]
        .into();
        let r = cdc_exactly_once(&[1, 2, 3], &delivered);
        assert_eq!(r.len(), 1, "slot good is exact in any order");
        assert_eq!(
            r["bad"],
            SlotDelivery {
                missing: vec![2, 3],
                duplicated: vec![(1, 3)],
                uncommitted: vec![4]
            }
        );
        let c = cdc_check(&r);
        assert_eq!(c.violations, 4);
        assert_eq!(
            c.details,
            vec!["slot bad: missing 2, 3; duplicated 1 x3; uncommitted 4"]
        );
    }
}
