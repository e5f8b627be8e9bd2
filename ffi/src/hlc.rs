//! `repl_hlc`: a hybrid logical clock behind an opaque handle.

use std::time::Duration;

use replication_core::{HlcClock, HlcTimestamp};

use crate::boundary::{arg_out, arg_ref, boundary};
use crate::result::repl_result;

/// A hybrid logical clock reading the system wall clock. Timestamps are `uint64_t`: the upper 48
/// bits are milliseconds since the Unix epoch, the lower 16 a logical counter, so integer order
/// is timestamp order.
///
/// Thread safety: every function except `repl_hlc_free` may be called from any number of
/// threads at once; readings are strictly increasing across all of them.
#[allow(non_camel_case_types)]
pub struct repl_hlc {
    clock: HlcClock,
}

/// Creates a clock that rejects remote timestamps more than `max_drift_ms` ahead of the local
/// wall clock, and stores it in `*out`. The caller owns it and must release it with
/// `repl_hlc_free`.
///
/// Thread safety: any thread.
///
/// # Safety
/// `out` must be NULL or valid for writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn repl_hlc_new(max_drift_ms: u64, out: *mut *mut repl_hlc) -> repl_result {
    boundary("repl_hlc_new", || {
        // SAFETY: the caller's contract.
        let out = unsafe { arg_out(out, &"out")? };
        let clock = HlcClock::new(Duration::from_millis(max_drift_ms));
        out.write(Box::into_raw(Box::new(repl_hlc { clock })));
        Ok(())
    })
}

/// Stores a timestamp for a local event (a write, or a message about to be sent) in `*out`:
/// greater than every timestamp this clock returned before.
///
/// Thread safety: any thread, concurrently.
///
/// # Safety
/// `hlc` must be NULL or a live clock; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn repl_hlc_now(hlc: *const repl_hlc, out: *mut u64) -> repl_result {
    boundary("repl_hlc_now", || {
        // SAFETY: the caller's contract.
        let (hlc, out) = unsafe { (arg_ref(hlc, &"hlc")?, arg_out(out, &"out")?) };
        out.write(hlc.clock.now().as_u64());
        Ok(())
    })
}

/// Merges a timestamp received from another node and stores the receive event's timestamp in
/// `*out`: greater than `remote` and than every timestamp this clock returned before.
/// `REPL_ERR_CLOCK_DRIFT_EXCEEDED` if `remote` is more than the max drift ahead of the local
/// wall clock; the clock is then left unchanged.
///
/// Thread safety: any thread, concurrently.
///
/// # Safety
/// `hlc` must be NULL or a live clock; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn repl_hlc_update(
    hlc: *const repl_hlc,
    remote: u64,
    out: *mut u64,
) -> repl_result {
    boundary("repl_hlc_update", || {
        // SAFETY: the caller's contract.
        let (hlc, out) = unsafe { (arg_ref(hlc, &"hlc")?, arg_out(out, &"out")?) };
        out.write(hlc.clock.update(HlcTimestamp(remote))?.as_u64());
        Ok(())
    })
}

/// Releases a clock from `repl_hlc_new`. NULL is accepted and ignored.
///
/// Thread safety: must be the last call on the clock.
///
/// # Safety
/// `hlc` must be NULL or a clock from `repl_hlc_new` that has not been freed.
#[no_mangle]
pub unsafe extern "C" fn repl_hlc_free(hlc: *mut repl_hlc) {
    let _ = boundary("repl_hlc_free", || {
        if !hlc.is_null() {
            // SAFETY: the caller's contract: a clock we allocated with Box::into_raw.
            drop(unsafe { Box::from_raw(hlc) });
        }
        Ok(())
    });
}
