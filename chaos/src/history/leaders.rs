//! Election safety: at most one leader per term (Raft's first safety property).
//!
//! Observations come from anywhere a leader shows itself (metrics polled from each node, the
//! leader a client was redirected to, log lines): each is a `(term, leader)` pair. Seeing the
//! same pair many times is normal; two different leaders for one term is split brain.

use std::collections::{BTreeMap, BTreeSet};

use super::report::CheckResult;
use crate::NodeId;

/// A term with more than one leader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitBrain {
    /// The term.
    pub term: u64,
    /// Every node seen leading it, ascending.
    pub leaders: Vec<NodeId>,
}

/// The terms that had two or more leaders, ascending.
pub fn one_leader_per_term(observations: &[(u64, NodeId)]) -> Vec<SplitBrain> {
    let mut by_term: BTreeMap<u64, BTreeSet<NodeId>> = BTreeMap::new();
    for &(term, leader) in observations {
        by_term.entry(term).or_default().insert(leader);
    }
    by_term
        .into_iter()
        .filter(|(_, leaders)| leaders.len() > 1)
        .map(|(term, leaders)| SplitBrain {
            term,
            leaders: leaders.into_iter().collect(),
        })
        .collect()
}

/// The result of [`one_leader_per_term`] as a report entry named `one_leader_per_term`.
pub fn leaders_check(violations: &[SplitBrain]) -> CheckResult {
    let details = violations
        .iter()
        .map(|v| {
            let names: Vec<String> = v.leaders.iter().map(|l| l.to_string()).collect();
            format!("term {}: leaders {}", v.term, names.join(", "))
        })
        .collect();
    CheckResult::new("one_leader_per_term", violations.len(), false, details)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_observations_of_one_leader_are_fine_two_leaders_are_not() {
        let obs = [
            (1, 1),
            (1, 1),
            (2, 2),
            (3, 3),
            (3, 1),
            (3, 3),
            (4, 1),
            (4, 2),
            (4, 3),
        ];
        let v = one_leader_per_term(&obs);
        assert_eq!(
            v,
            vec![
                SplitBrain {
                    term: 3,
                    leaders: vec![1, 3]
                },
                SplitBrain {
                    term: 4,
                    leaders: vec![1, 2, 3]
                },
            ]
        );
        let c = leaders_check(&v);
        assert_eq!(c.violations, 2);
        assert_eq!(c.details[0], "term 3: leaders 1, 3");
        assert!(one_leader_per_term(&obs[..3]).is_empty());
        assert!(leaders_check(&[]).passed());
    }
}
