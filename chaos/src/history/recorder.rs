//! Recording a history while concurrent test clients run.

use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;

use super::model::{Completion, History, Lsn, OpRecord, Operation, ProcessId};

/// Collects the operations of every client of a run. Cheap to clone; all clones record into
/// the same history.
///
/// All times come from one [`Instant`] taken at creation, so the times of different clients
/// (threads or tasks) are comparable. The lock is held only to push or update one record, never
/// across the request to the store, so recording does not serialize the clients.
#[derive(Clone)]
pub struct HistoryRecorder {
    inner: Arc<Inner>,
}

struct Inner {
    start: Instant,
    ops: Mutex<Vec<OpRecord>>,
}

impl Default for HistoryRecorder {
    fn default() -> Self {
        Self::new()
    }
}

impl HistoryRecorder {
    /// An empty recorder whose clock starts now.
    pub fn new() -> Self {
        HistoryRecorder {
            inner: Arc::new(Inner {
                start: Instant::now(),
                ops: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Records that `process` invokes `op` now. Call it just before sending the request, and
    /// complete the handle just after the answer (or the give-up) so that the recorded interval
    /// contains the moment the store acted.
    pub fn invoke(&self, process: ProcessId, op: Operation) -> OpHandle {
        let mut ops = self.inner.ops.lock();
        // Taking the time under the lock keeps ids in invocation-time order.
        let invoke_ns = self.now_ns();
        let index = ops.len();
        ops.push(OpRecord {
            id: index as u64,
            process,
            op,
            invoke_ns,
            complete_ns: None,
            completion: Completion::Unknown,
        });
        OpHandle {
            recorder: self.clone(),
            index,
            done: false,
        }
    }

    /// The history so far. Operations still pending are reported as [`Completion::Unknown`]
    /// with no completion time: they may yet take effect.
    pub fn history(&self) -> History {
        History::from_records(self.inner.ops.lock().clone())
    }

    fn now_ns(&self) -> u64 {
        // u64 nanoseconds last 584 years: no run comes near.
        self.inner.start.elapsed().as_nanos() as u64
    }

    fn complete(&self, index: usize, completion: Completion) {
        let mut ops = self.inner.ops.lock();
        let now = self.now_ns();
        let rec = &mut ops[index];
        rec.complete_ns = Some(now);
        rec.completion = completion;
    }
}

/// One invoked operation waiting for its outcome. Completing consumes the handle; a handle
/// dropped without completion (a client that panicked or was cancelled) records
/// [`Completion::Unknown`], which is the truth: nobody knows whether the request took effect.
#[must_use = "complete the operation with ok, fail or unknown"]
pub struct OpHandle {
    recorder: HistoryRecorder,
    index: usize,
    done: bool,
}

impl OpHandle {
    /// The id of the operation in the history.
    pub fn id(&self) -> u64 {
        self.index as u64
    }

    /// A read was answered: `value` is what it saw, `None` when the key was absent.
    pub fn ok_read(mut self, value: Option<String>) {
        self.finish(Completion::Ok {
            read: value,
            lsn: None,
        });
    }

    /// A write or delete was acknowledged, at `lsn` when the store says.
    pub fn ok_write(mut self, lsn: Option<Lsn>) {
        self.finish(Completion::Ok { read: None, lsn });
    }

    /// The store said the operation was not applied.
    pub fn fail(mut self) {
        self.finish(Completion::Fail);
    }

    /// No answer (timeout, connection lost): the operation may still take effect.
    pub fn unknown(mut self) {
        self.finish(Completion::Unknown);
    }

    fn finish(&mut self, completion: Completion) {
        self.done = true;
        self.recorder.complete(self.index, completion);
    }
}

impl Drop for OpHandle {
    fn drop(&mut self) {
        if !self.done {
            self.finish(Completion::Unknown);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_clients_record_ordered_comparable_intervals() {
        let rec = HistoryRecorder::new();
        std::thread::scope(|s| {
            for p in 0..4u64 {
                let rec = rec.clone();
                s.spawn(move || {
                    for i in 0..50 {
                        let key = format!("k{}", i % 3);
                        let h = rec.invoke(
                            p,
                            Operation::Write {
                                key,
                                value: format!("{p}-{i}"),
                            },
                        );
                        h.ok_write(Some(i));
                    }
                });
            }
        });
        let h = rec.history();
        assert_eq!(h.ops.len(), 200);
        for (i, w) in h.ops.windows(2).enumerate() {
            assert!(w[0].invoke_ns <= w[1].invoke_ns, "op {i} out of order");
        }
        for op in &h.ops {
            assert!(op.is_ok());
            assert!(op.complete_ns.expect("completed") >= op.invoke_ns);
        }
        // Ids are unique.
        let mut ids: Vec<_> = h.ops.iter().map(|o| o.id).collect();
        ids.dedup();
        assert_eq!(ids.len(), 200);
    }

    #[test]
    fn pending_and_dropped_handles_are_unknown() {
        let rec = HistoryRecorder::new();
        let pending = rec.invoke(1, Operation::Read { key: "a".into() });
        drop(rec.invoke(2, Operation::Delete { key: "a".into() }));
        rec.invoke(3, Operation::Read { key: "a".into() }).fail();

        let h = rec.history();
        assert_eq!(h.ops[0].completion, Completion::Unknown);
        assert_eq!(h.ops[0].complete_ns, None, "still pending");
        assert_eq!(h.ops[1].completion, Completion::Unknown);
        assert!(
            h.ops[1].complete_ns.is_some(),
            "dropped: the client gave up"
        );
        assert_eq!(h.ops[2].completion, Completion::Fail);

        pending.ok_read(Some("v".into()));
        assert_eq!(
            rec.history().ops[0].completion,
            Completion::Ok {
                read: Some("v".into()),
                lsn: None
            }
        );
    }
}
