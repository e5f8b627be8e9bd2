//! Acknowledged writes survive: after the faults stop, each key holds the value of a write
//! that may legitimately have been the last one.
//!
//! The rule is deliberately simple and sound (no false alarm): a write is a *possible last
//! write* of its key unless another acknowledged write of the key was invoked strictly after it
//! completed, in which case that later write must take effect after it. Unknown writes have no
//! completion that bounds them, so they are always possible last writes. The final value must be
//! the value of a possible last write; otherwise the acknowledged possible-last writes are lost.
//!
//! In SYNC and SEMI_SYNC a loss is a violation. In ASYNC it is allowed (the primary acknowledges
//! before any replica has the change), so [`LossPolicy::CountOnly`] reports the count without
//! failing.

use std::collections::BTreeMap;

use super::model::{Completion, History, OpRecord};
use super::report::CheckResult;

/// Whether losing an acknowledged write is a violation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossPolicy {
    /// SYNC and SEMI_SYNC: every loss is a violation.
    MustSurvive,
    /// ASYNC: losses are allowed but reported.
    CountOnly,
}

/// A key whose final value contradicts the acknowledged writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LostWrites {
    /// The key.
    pub key: String,
    /// What the replica holds (`None`: absent).
    pub final_value: Option<String>,
    /// The acknowledged writes, any one of which should have been the final value.
    pub lost: Vec<OpRecord>,
}

/// A final value that no write (acknowledged or unknown) of the key produced: corruption, a
/// failed write that was applied, or data the history does not cover.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnexpectedValue {
    /// The key.
    pub key: String,
    /// What the replica holds.
    pub final_value: Option<String>,
}

/// What [`acknowledged_writes_survive`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SurvivalResult {
    /// How losses count.
    pub policy: LossPolicy,
    /// Keys that lost acknowledged writes.
    pub lost: Vec<LostWrites>,
    /// Keys holding a value nobody wrote.
    pub unexpected: Vec<UnexpectedValue>,
}

impl SurvivalResult {
    /// The number of acknowledged writes lost (one per key: the final value can hold at most
    /// one, so a key with several possible last writes lost one of them).
    pub fn lost_count(&self) -> usize {
        self.lost.len()
    }

    /// The result as a report entry named `acknowledged_writes_survive`.
    pub fn to_check(&self) -> CheckResult {
        let mut details = Vec::new();
        for l in &self.lost {
            let mut d = format!(
                "key {:?} holds {}; lost acknowledged write(s):",
                l.key,
                show(&l.final_value)
            );
            for op in &l.lost {
                d.push_str(&format!("\n    {op}"));
            }
            details.push(d);
        }
        for u in &self.unexpected {
            details.push(format!(
                "key {:?} holds {}, which no write produced",
                u.key,
                show(&u.final_value)
            ));
        }
        let counted = match self.policy {
            LossPolicy::MustSurvive => self.lost.len(),
            LossPolicy::CountOnly => {
                details.insert(
                    0,
                    format!(
                        "{} acknowledged write(s) lost (allowed by the policy)",
                        self.lost.len()
                    ),
                );
                0
            }
        };
        CheckResult::new(
            "acknowledged_writes_survive",
            counted + self.unexpected.len(),
            false,
            details,
        )
    }
}

fn show(v: &Option<String>) -> String {
    match v {
        Some(v) => format!("{v:?}"),
        None => "absent".to_owned(),
    }
}

/// Checks the final content of a replica (`key -> value`; a key not in the map is absent)
/// against the writes of `history`. Keys that no write of the history touches must be absent.
pub fn acknowledged_writes_survive(
    history: &History,
    final_state: &BTreeMap<String, String>,
    policy: LossPolicy,
) -> SurvivalResult {
    let by_key = history.by_key();
    let mut result = SurvivalResult {
        policy,
        lost: Vec::new(),
        unexpected: Vec::new(),
    };

    for (key, ops) in &by_key {
        let writes: Vec<&OpRecord> = ops
            .iter()
            .copied()
            .filter(|o| o.op.is_write() && !matches!(o.completion, Completion::Fail))
            .collect();
        let final_value = final_state.get(*key).map(String::as_str);
        let acked: Vec<&OpRecord> = writes.iter().copied().filter(|w| w.is_ok()).collect();
        let last_candidates: Vec<&OpRecord> = writes
            .iter()
            .copied()
            .filter(|w| !acked.iter().any(|later| w.precedes(later)))
            .collect();

        if last_candidates
            .iter()
            .any(|w| w.op.written_value() == Some(final_value))
        {
            continue;
        }
        let acked_last: Vec<OpRecord> = last_candidates
            .iter()
            .filter(|w| w.is_ok())
            .map(|w| (*w).clone())
            .collect();
        let owned = final_value.map(str::to_owned);
        if acked_last.is_empty() {
            // Only unknown writes (or none) could be last, and none matches: absent is what
            // "no write took effect" leaves; anything else came from nowhere.
            if final_value.is_some() {
                result.unexpected.push(UnexpectedValue {
                    key: (*key).to_owned(),
                    final_value: owned,
                });
            }
            continue;
        }
        let ever_written = writes
            .iter()
            .any(|w| w.op.written_value() == Some(final_value));
        if final_value.is_some() && !ever_written {
            result.unexpected.push(UnexpectedValue {
                key: (*key).to_owned(),
                final_value: owned.clone(),
            });
        }
        result.lost.push(LostWrites {
            key: (*key).to_owned(),
            final_value: owned,
            lost: acked_last,
        });
    }

    for (key, value) in final_state {
        if !by_key.contains_key(key.as_str()) {
            result.unexpected.push(UnexpectedValue {
                key: key.clone(),
                final_value: Some(value.clone()),
            });
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::model::Operation;

    fn w(id: u64, key: &str, value: &str, t: (u64, u64), completion: Completion) -> OpRecord {
        OpRecord {
            id,
            process: id,
            op: Operation::Write {
                key: key.into(),
                value: value.into(),
            },
            invoke_ns: t.0,
            complete_ns: Some(t.1),
            completion,
        }
    }

    fn ok() -> Completion {
        Completion::Ok {
            read: None,
            lsn: None,
        }
    }

    fn state(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_last_write_or_a_concurrent_one_may_win() {
        let h = History::from_records(vec![
            w(0, "k", "a", (0, 10), ok()),
            w(1, "k", "b", (20, 40), ok()),
            w(2, "k", "c", (30, 50), ok()),
        ]);
        for v in ["b", "c"] {
            let r = acknowledged_writes_survive(&h, &state(&[("k", v)]), LossPolicy::MustSurvive);
            assert!(r.to_check().passed(), "{v}: {r:?}");
        }
        let r = acknowledged_writes_survive(&h, &state(&[("k", "a")]), LossPolicy::MustSurvive);
        assert_eq!(r.lost.len(), 1);
        let lost_ids: Vec<u64> = r.lost[0].lost.iter().map(|o| o.id).collect();
        assert_eq!(lost_ids, vec![1, 2]);
        assert!(r.unexpected.is_empty(), "a was written, just overwritten");
        assert_eq!(r.to_check().violations, 1);
    }
}
