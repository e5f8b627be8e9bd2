//! The one tokio runtime of the process, shared by every `Node`.
//!
//! Created on first use (importing the package starts no threads). Its worker threads are named
//! `replication-rt`; the apply callback of a `Node` runs on one of them. Blocking calls from
//! Python wait on the caller's own thread ([`block_on`], with the GIL released by
//! [`gil::blocking`](crate::gil::blocking)), never inside the runtime.

use std::future::Future;
use std::sync::OnceLock;

use replication_core::consensus::ConsensusError;

static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();

/// Name of the runtime's worker threads (documented on `Node`).
pub(crate) const THREAD_NAME: &str = "replication-rt";

pub(crate) fn runtime() -> Result<&'static tokio::runtime::Runtime, ConsensusError> {
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_name(THREAD_NAME)
                .build()
                .map_err(|e| format!("cannot start the tokio runtime: {e}"))
        })
        .as_ref()
        .map_err(|e| ConsensusError::Raft(e.clone()))
}

/// Runs `fut` to completion on the calling thread. Refused on a runtime thread (that is, from
/// inside an apply callback), where waiting would stall the very workers the future needs.
pub(crate) fn block_on<T>(
    fut: impl Future<Output = Result<T, ConsensusError>>,
) -> Result<T, ConsensusError> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(ConsensusError::Invalid(
            "blocking Node calls cannot be made from inside the apply callback (it runs on a \
             replication-rt thread); hand the work to another thread"
                .into(),
        ));
    }
    runtime()?.block_on(fut)
}
