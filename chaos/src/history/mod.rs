//! Client histories of a chaos run and the checkers that judge them (issue 4, point 3).
//!
//! Test clients record every request to the key-value store with a [`HistoryRecorder`]:
//! invocation time, outcome (`Ok`, `Fail`, `Unknown`) and completion time on one monotonic
//! clock. After the run the checkers decide whether the cluster kept its promises:
//!
//! | check | function | promise |
//! |---|---|---|
//! | linearizability | [`check_linearizability`] | linearizable reads and writes behave as one register per key |
//! | durability | [`acknowledged_writes_survive`] | acknowledged SYNC / SEMI_SYNC writes are never lost (ASYNC: counted) |
//! | election safety | [`one_leader_per_term`] | at most one leader per term |
//! | convergence | [`replicas_converge`] | replicas agree bit for bit once faults stop |
//! | CDC | [`cdc_exactly_once`] | every committed change reaches each slot exactly once |
//!
//! Each result converts to a [`CheckResult`]; a [`Report`] collects them and renders text whose
//! last line is `violations: N`. A history saves to and loads from JSON lines
//! ([`History::write_json_lines`]) so that a failing run can be checked again offline.

mod cdc;
mod convergence;
mod durability;
mod leaders;
mod linearizability;
mod model;
mod recorder;
mod report;

pub use cdc::{cdc_check, cdc_exactly_once, SlotDelivery, SlotName};
pub use convergence::{convergence_check, replicas_converge, Divergence};
pub use durability::{
    acknowledged_writes_survive, LossPolicy, LostWrites, SurvivalResult, UnexpectedValue,
};
pub use leaders::{leaders_check, one_leader_per_term, SplitBrain};
pub use linearizability::{
    check_linearizability, check_register, KeyVerdict, LinearizabilityOptions,
    LinearizabilityResult, LinearizabilityViolation,
};
pub use model::{Completion, History, Lsn, OpRecord, Operation, ProcessId};
pub use recorder::{HistoryRecorder, OpHandle};
pub use report::{CheckResult, Report, Verdict};

/// Saving or loading a history failed.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// Reading or writing the file failed.
    #[error("history I/O failed: {0}")]
    Io(#[source] std::io::Error),
    /// An operation could not be encoded (should not happen: every field is plain data).
    #[error("cannot encode a history operation as JSON: {0}")]
    Encode(#[source] serde_json::Error),
    /// A line is not an operation as [`History::write_json_lines`] writes them.
    #[error("history line {line} is not a valid operation ({source}); was it written by History::write_json_lines?")]
    Decode {
        /// 1-based line number.
        line: usize,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
}
