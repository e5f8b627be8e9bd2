//! The one tokio runtime of the library, shared by every `repl_node`, and the rule that blocking
//! calls wait on the caller's thread, never inside the runtime.
//!
//! The runtime is created on the first `repl_node_start` (loading the library starts no
//! threads). Its worker threads are named `replication-rt`; apply callbacks run on them.
//!
//! SIGPIPE: a Rust program ignores it, but a C or C++ host usually keeps the default action,
//! which kills the process when a peer closes a connection the node is writing to (vectored
//! writes cannot pass `MSG_NOSIGNAL`). Every runtime thread blocks SIGPIPE, so such a write
//! fails with `EPIPE` instead; the host's own threads and signal handling are left alone.

use std::cell::Cell;
use std::future::Future;
use std::sync::OnceLock;

use crate::result::{repl_result, Failure, FfiResult};

static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();

/// Name of the runtime's worker threads (documented on `repl_apply_fn`).
pub(crate) const THREAD_NAME: &str = "replication-rt";

thread_local! {
    /// Set while this thread runs a C apply callback.
    static IN_CALLBACK: Cell<bool> = const { Cell::new(false) };
}

pub(crate) fn runtime() -> FfiResult<&'static tokio::runtime::Runtime> {
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_name(THREAD_NAME)
                .on_thread_start(block_sigpipe)
                .build()
                .map_err(|e| format!("cannot start the tokio runtime: {e}"))
        })
        .as_ref()
        .map_err(|e| Failure::new(repl_result::REPL_ERR_CLUSTER_CONSENSUS, e.clone()))
}

/// Blocks SIGPIPE on the calling thread (a runtime thread; see the module docs).
fn block_sigpipe() {
    // SAFETY: plain libc calls on a local, initialised signal set; they only change the calling
    // thread's signal mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// Whether this thread may wait for the runtime: not inside an apply callback and not on a
/// runtime thread, where waiting would stall the very workers the wait needs.
pub(crate) fn may_block() -> bool {
    !IN_CALLBACK.with(Cell::get) && tokio::runtime::Handle::try_current().is_err()
}

/// Fails with `REPL_ERR_CLUSTER_REENTRANT_CALL` when this thread must not block.
pub(crate) fn check_may_block() -> FfiResult<()> {
    if may_block() {
        Ok(())
    } else {
        Err(Failure::new(
            repl_result::REPL_ERR_CLUSTER_REENTRANT_CALL,
            format!(
                "blocking repl_node calls cannot be made from inside an apply callback (it runs \
                 on a {THREAD_NAME} thread); hand the work to another thread"
            ),
        ))
    }
}

/// Runs `fut` to completion on the calling thread (never on a runtime thread).
pub(crate) fn block_on<T, E: Into<Failure>>(
    fut: impl Future<Output = Result<T, E>>,
) -> FfiResult<T> {
    check_may_block()?;
    runtime()?.block_on(fut).map_err(Into::into)
}

/// Marks the current thread as running an apply callback until dropped.
pub(crate) struct CallbackScope(bool);

impl CallbackScope {
    pub fn enter() -> Self {
        CallbackScope(IN_CALLBACK.with(|c| c.replace(true)))
    }
}

impl Drop for CallbackScope {
    fn drop(&mut self) {
        let previous = self.0;
        IN_CALLBACK.with(|c| c.set(previous));
    }
}
