//! The recorded history of a chaos run: what each client asked of the key-value store, when,
//! and what it learned about the outcome.
//!
//! Times are nanoseconds since the recorder started, taken from one monotonic clock
//! ([`std::time::Instant`]) shared by every client of the run, so the real-time order of two
//! operations ("a completed before b was invoked") can be read off their times. Wall-clock
//! time would not do: it can step backwards under NTP.

use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};

use super::HistoryError;

/// A log sequence number, as the replication core assigns them.
pub type Lsn = u64;

/// Who issued an operation. A process runs one operation at a time; after an [`Unknown`]
/// outcome a test client should continue under a fresh id, since the old operation may still
/// be in flight (the checkers do not rely on it: they use times only).
///
/// [`Unknown`]: Completion::Unknown
pub type ProcessId = u64;

/// One request to the key-value register store.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Operation {
    /// Set `key` to `value`. Values are strings so that saved histories stay readable; encode
    /// binary values (hex, base64) before recording them.
    Write { key: String, value: String },
    /// Read the value of `key`.
    Read { key: String },
    /// Remove `key`; for the checkers this is a write of "absent".
    Delete { key: String },
}

impl Operation {
    /// The key the operation touches.
    pub fn key(&self) -> &str {
        match self {
            Operation::Write { key, .. } | Operation::Read { key } | Operation::Delete { key } => {
                key
            }
        }
    }

    /// The value a write leaves behind (`None` for a delete), or `None` for a read.
    pub fn written_value(&self) -> Option<Option<&str>> {
        match self {
            Operation::Write { value, .. } => Some(Some(value)),
            Operation::Delete { .. } => Some(None),
            Operation::Read { .. } => None,
        }
    }

    /// Whether the operation changes the register (writes and deletes).
    pub fn is_write(&self) -> bool {
        !matches!(self, Operation::Read { .. })
    }
}

/// What the client learned about an operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Completion {
    /// The store acknowledged the operation.
    Ok {
        /// For a read: the value seen, `None` when the key was absent. Unused for writes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        read: Option<String>,
        /// For a write: the LSN the store assigned, when it says.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lsn: Option<Lsn>,
    },
    /// The store said the operation was definitely not applied.
    Fail,
    /// Timeout, lost connection, crashed client: the operation may or may not take effect,
    /// and may do so at any time after its invocation, even after this record was made.
    Unknown,
}

/// One operation of the history, from invocation to completion.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpRecord {
    /// Position in invocation order, unique within a history.
    pub id: u64,
    /// The client that issued it.
    pub process: ProcessId,
    /// What was asked.
    pub op: Operation,
    /// When it was invoked, in nanoseconds since the recorder started.
    pub invoke_ns: u64,
    /// When the outcome was recorded. `None` for an operation still pending when the history
    /// was taken. For [`Completion::Unknown`] this is when the client gave up, not a bound on
    /// when the operation can take effect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub complete_ns: Option<u64>,
    /// The outcome.
    pub completion: Completion,
}

impl OpRecord {
    /// The end of the interval in which the operation can take effect: its completion time
    /// when acknowledged or failed, never for an unknown outcome (`u64::MAX`).
    pub fn effect_deadline_ns(&self) -> u64 {
        match self.completion {
            Completion::Unknown => u64::MAX,
            _ => self.complete_ns.unwrap_or(u64::MAX),
        }
    }

    /// Whether the store acknowledged it.
    pub fn is_ok(&self) -> bool {
        matches!(self.completion, Completion::Ok { .. })
    }

    /// Whether the outcome is unknown.
    pub fn is_unknown(&self) -> bool {
        matches!(self.completion, Completion::Unknown)
    }

    /// Whether `self` completed, acknowledged or failed, strictly before `other` was invoked:
    /// the real-time order linearizability must respect. Equal times count as concurrent.
    pub fn precedes(&self, other: &OpRecord) -> bool {
        self.effect_deadline_ns() < other.invoke_ns
    }
}

impl std::fmt::Display for OpRecord {
    /// One line for violation reports: `#12 p3 write x="a" ok [100, 250] ns`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{} p{} ", self.id, self.process)?;
        match &self.op {
            Operation::Write { key, value } => write!(f, "write {key}={value:?}")?,
            Operation::Delete { key } => write!(f, "delete {key}")?,
            Operation::Read { key } => write!(f, "read {key}")?,
        }
        match &self.completion {
            Completion::Ok { read, lsn } => {
                f.write_str(" ok")?;
                if !self.op.is_write() {
                    match read {
                        Some(v) => write!(f, " -> {v:?}")?,
                        None => f.write_str(" -> absent")?,
                    }
                }
                if let Some(lsn) = lsn {
                    write!(f, " lsn {lsn}")?;
                }
            }
            Completion::Fail => f.write_str(" fail")?,
            Completion::Unknown => f.write_str(" unknown")?,
        }
        match self.complete_ns {
            Some(end) => write!(f, " [{}, {end}] ns", self.invoke_ns),
            None => write!(f, " [{}, ...] ns", self.invoke_ns),
        }
    }
}

/// A complete history: every operation of a run, in invocation order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    /// The operations, ordered by `invoke_ns` then `id`.
    pub ops: Vec<OpRecord>,
}

impl History {
    /// A history from records in any order; they are sorted by invocation time.
    pub fn from_records(mut ops: Vec<OpRecord>) -> Self {
        ops.sort_by_key(|o| (o.invoke_ns, o.id));
        History { ops }
    }

    /// The operations on each key, keys in order, each list in invocation order.
    pub fn by_key(&self) -> std::collections::BTreeMap<&str, Vec<&OpRecord>> {
        let mut map: std::collections::BTreeMap<&str, Vec<&OpRecord>> = Default::default();
        for op in &self.ops {
            map.entry(op.op.key()).or_default().push(op);
        }
        map
    }

    /// Saves the history as JSON lines, one operation per line, so a failing run can be kept
    /// and checked again (or by another tool) later.
    pub fn write_json_lines(&self, mut out: impl Write) -> Result<(), HistoryError> {
        for op in &self.ops {
            serde_json::to_writer(&mut out, op).map_err(HistoryError::Encode)?;
            out.write_all(b"\n").map_err(HistoryError::Io)?;
        }
        out.flush().map_err(HistoryError::Io)
    }

    /// Loads a history saved by [`History::write_json_lines`]. Blank lines are skipped; an
    /// error names the line that could not be parsed.
    pub fn read_json_lines(input: impl BufRead) -> Result<Self, HistoryError> {
        let mut ops = Vec::new();
        for (i, line) in input.lines().enumerate() {
            let line = line.map_err(HistoryError::Io)?;
            if line.trim().is_empty() {
                continue;
            }
            let op = serde_json::from_str(&line).map_err(|source| HistoryError::Decode {
                line: i + 1,
                source,
            })?;
            ops.push(op);
        }
        Ok(History::from_records(ops))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: u64, op: Operation, completion: Completion, t: (u64, Option<u64>)) -> OpRecord {
        OpRecord {
            id,
            process: id,
            op,
            invoke_ns: t.0,
            complete_ns: t.1,
            completion,
        }
    }

    #[test]
    fn unknown_ops_have_no_effect_deadline_and_equal_times_are_concurrent() {
        let w = Operation::Write {
            key: "k".into(),
            value: "v".into(),
        };
        let a = rec(0, w.clone(), Completion::Unknown, (0, Some(10)));
        let b = rec(1, w.clone(), Completion::Fail, (0, Some(10)));
        let c = rec(
            2,
            w,
            Completion::Ok {
                read: None,
                lsn: None,
            },
            (10, Some(20)),
        );
        assert_eq!(a.effect_deadline_ns(), u64::MAX);
        assert!(
            !a.precedes(&c),
            "an unknown op can take effect after anything"
        );
        assert!(
            !b.precedes(&c),
            "ending at the instant c starts is concurrent"
        );
        assert!(c.precedes(&rec(
            3,
            Operation::Read { key: "k".into() },
            Completion::Fail,
            (21, None)
        )));
    }

    #[test]
    fn display_names_the_op_and_its_outcome() {
        let r = rec(
            7,
            Operation::Read { key: "x".into() },
            Completion::Ok {
                read: None,
                lsn: None,
            },
            (5, Some(9)),
        );
        assert_eq!(r.to_string(), "#7 p7 read x ok -> absent [5, 9] ns");
    }

    #[test]
    fn a_bad_line_is_named_in_the_error() {
        let input = "\n{\"not\": \"an op\"}\n";
        match History::read_json_lines(input.as_bytes()) {
            Err(HistoryError::Decode { line, .. }) => assert_eq!(line, 2),
            other => panic!("expected a decode error, got {other:?}"),
        }
    }
}
