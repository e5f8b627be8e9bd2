//! Replicas converge: once the faults stop and replication catches up, every node holds the
//! same content, bit for bit.
//!
//! The caller chooses what to compare: the whole content for a small test store, or a digest
//! of it (e.g. a CRC or hash over the sorted key-value pairs) for a big one.

use std::collections::BTreeMap;

use super::report::CheckResult;
use crate::NodeId;

/// Replicas that disagree, grouped by content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Divergence {
    /// The nodes holding the most common content (the first such group when tied), ascending.
    pub majority: Vec<NodeId>,
    /// Every other group of nodes with identical content, each ascending.
    pub differing: Vec<Vec<NodeId>>,
}

/// `Ok` when every node has the same content, else the groups of nodes that agree with each
/// other. Takes any map of node to content or digest (`&HashMap`, `&BTreeMap`, ...).
pub fn replicas_converge<'a, C: PartialEq + 'a>(
    contents: impl IntoIterator<Item = (&'a NodeId, &'a C)>,
) -> Result<(), Divergence> {
    let sorted: BTreeMap<NodeId, &C> = contents.into_iter().map(|(n, c)| (*n, c)).collect();
    // Contents need not be hashable or ordered, so the groups are found by comparison; a cluster
    // has a handful of nodes.
    let mut groups: Vec<(&C, Vec<NodeId>)> = Vec::new();
    for (node, content) in sorted {
        match groups.iter_mut().find(|(c, _)| *c == content) {
            Some((_, nodes)) => nodes.push(node),
            None => groups.push((content, vec![node])),
        }
    }
    if groups.len() <= 1 {
        return Ok(());
    }
    let biggest = groups
        .iter()
        .enumerate()
        .max_by(|(i, a), (j, b)| a.1.len().cmp(&b.1.len()).then(j.cmp(i)))
        .map(|(i, _)| i)
        .unwrap_or(0);
    let majority = groups.remove(biggest).1;
    Err(Divergence {
        majority,
        differing: groups.into_iter().map(|(_, nodes)| nodes).collect(),
    })
}

/// The result of [`replicas_converge`] as a report entry named `replicas_converge`; one
/// violation per node outside the majority group.
pub fn convergence_check(result: &Result<(), Divergence>) -> CheckResult {
    match result {
        Ok(()) => CheckResult::new("replicas_converge", 0, false, vec![]),
        Err(d) => {
            let list = |nodes: &[NodeId]| {
                nodes
                    .iter()
                    .map(|n| n.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let mut details = vec![format!("majority content on nodes {}", list(&d.majority))];
            details.extend(
                d.differing
                    .iter()
                    .map(|g| format!("differs: nodes {}", list(g))),
            );
            let count = d.differing.iter().map(Vec::len).sum();
            CheckResult::new("replicas_converge", count, false, details)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn equal_contents_converge_and_odd_nodes_are_named() {
        let same: HashMap<NodeId, u32> = [(1, 7), (2, 7), (3, 7)].into();
        assert_eq!(replicas_converge(&same), Ok(()));
        assert_eq!(replicas_converge(&HashMap::<NodeId, u32>::new()), Ok(()));

        let split: BTreeMap<NodeId, &str> = [(1, "a"), (2, "b"), (3, "a"), (4, "c")].into();
        let d = replicas_converge(&split).unwrap_err();
        assert_eq!(d.majority, vec![1, 3]);
        assert_eq!(d.differing, vec![vec![2], vec![4]]);
        let c = convergence_check(&Err(d));
        assert_eq!(c.violations, 2);
        assert_eq!(
            c.details,
            vec![
                "majority content on nodes 1, 3",
                "differs: nodes 2",
                "differs: nodes 4"
            ]
        );
    }
}
