//! `repl_vclock`: a vector clock behind an opaque handle.

use replication_core::{VectorClock, VectorOrdering};

use crate::boundary::{arg_mut, arg_out, arg_ref, arg_slice, boundary};
use crate::result::{repl_result, Failure};

/// Values of `repl_vclock_compare`: how the first clock relates causally to the second.
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum repl_vclock_ordering {
    /// The first happened before the second: every counter is <=, at least one <.
    REPL_VCLOCK_BEFORE = 0,
    /// The first happened after the second (the mirror of BEFORE).
    REPL_VCLOCK_AFTER = 1,
    /// Same history: every counter is equal.
    REPL_VCLOCK_EQUAL = 2,
    /// Neither saw all of the other's events: concurrent updates, i.e. a conflict.
    REPL_VCLOCK_CONCURRENT = 3,
}

/// A vector clock: one event counter per node id; a node without an entry has counter 0.
/// Create with `repl_vclock_new`, `repl_vclock_from_entries` or `repl_vclock_clone`; release
/// with `repl_vclock_free`.
///
/// Thread safety: a plain value with no lock inside. Calls taking a `const repl_vclock *` may
/// run concurrently with each other; a call that changes a clock (`repl_vclock_increment`,
/// `repl_vclock_merge` into it, `repl_vclock_free`) must not run concurrently with any other
/// call on that clock.
#[allow(non_camel_case_types)]
pub struct repl_vclock {
    clock: VectorClock,
}

fn new_handle(clock: VectorClock) -> *mut repl_vclock {
    Box::into_raw(Box::new(repl_vclock { clock }))
}

/// Creates an empty clock (every counter 0) and stores it in `*out`. The caller owns it and
/// must release it with `repl_vclock_free`.
///
/// Thread safety: any thread.
///
/// # Safety
/// `out` must be NULL or valid for writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn repl_vclock_new(out: *mut *mut repl_vclock) -> repl_result {
    boundary("repl_vclock_new", || {
        // SAFETY: the caller's contract.
        let out = unsafe { arg_out(out, &"out")? };
        out.write(new_handle(VectorClock::new()));
        Ok(())
    })
}

/// Creates a clock with counter `counters[k]` for node `nodes[k]`, for k < `n`, and stores it
/// in `*out` (what a clock received from another node is rebuilt from). Order does not matter;
/// zero counters are dropped. A node listed twice gives `REPL_ERR_CLOCK_DUPLICATE_NODE`. The
/// caller owns the clock and must release it with `repl_vclock_free`.
///
/// Thread safety: any thread.
///
/// # Safety
/// `nodes` and `counters` must each be NULL (only if `n` is 0) or readable for `n` values;
/// `out` NULL or valid for writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn repl_vclock_from_entries(
    nodes: *const u64,
    counters: *const u64,
    n: usize,
    out: *mut *mut repl_vclock,
) -> repl_result {
    boundary("repl_vclock_from_entries", || {
        // SAFETY: the caller's contract.
        let (nodes, counters, out) = unsafe {
            (
                arg_slice(nodes, n, &"nodes")?,
                arg_slice(counters, n, &"counters")?,
                arg_out(out, &"out")?,
            )
        };
        let clock =
            VectorClock::try_from_entries(nodes.iter().copied().zip(counters.iter().copied()))?;
        out.write(new_handle(clock));
        Ok(())
    })
}

/// Stores in `*out` a new clock equal to `clock` and independent of it. The caller owns it and
/// must release it with `repl_vclock_free`.
///
/// Thread safety: concurrently with other calls that do not change `clock`.
///
/// # Safety
/// `clock` must be NULL or a live clock; `out` NULL or valid for writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn repl_vclock_clone(
    clock: *const repl_vclock,
    out: *mut *mut repl_vclock,
) -> repl_result {
    boundary("repl_vclock_clone", || {
        // SAFETY: the caller's contract.
        let (clock, out) = unsafe { (arg_ref(clock, &"clock")?, arg_out(out, &"out")?) };
        out.write(new_handle(clock.clock.clone()));
        Ok(())
    })
}

/// Records a local event on `node` and stores its new counter in `*out_counter`. The counter
/// saturates at `UINT64_MAX` instead of wrapping around.
///
/// Thread safety: no other call on `clock` may run concurrently.
///
/// # Safety
/// `clock` must be NULL or a live clock; `out_counter` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn repl_vclock_increment(
    clock: *mut repl_vclock,
    node: u64,
    out_counter: *mut u64,
) -> repl_result {
    boundary("repl_vclock_increment", || {
        // SAFETY: the caller's contract.
        let (clock, out_counter) = unsafe {
            (
                arg_mut(clock, &"clock")?,
                arg_out(out_counter, &"out_counter")?,
            )
        };
        out_counter.write(clock.clock.increment(node));
        Ok(())
    })
}

/// Stores the counter of `node` in `*out` (0 if the clock has no entry for it).
///
/// Thread safety: concurrently with other calls that do not change `clock`.
///
/// # Safety
/// `clock` must be NULL or a live clock; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn repl_vclock_get(
    clock: *const repl_vclock,
    node: u64,
    out: *mut u64,
) -> repl_result {
    boundary("repl_vclock_get", || {
        // SAFETY: the caller's contract.
        let (clock, out) = unsafe { (arg_ref(clock, &"clock")?, arg_out(out, &"out")?) };
        out.write(clock.clock.get(node));
        Ok(())
    })
}

/// Sets every counter of `clock` to the larger of its own and `other`'s (pointwise maximum):
/// afterwards `clock` has seen every event either had seen. `other` is not changed and may be
/// `clock` itself (nothing changes then).
///
/// Thread safety: no other call on `clock` may run concurrently; calls that do not change
/// `other` may.
///
/// # Safety
/// `clock` and `other` must each be NULL or a live clock.
#[no_mangle]
pub unsafe extern "C" fn repl_vclock_merge(
    clock: *mut repl_vclock,
    other: *const repl_vclock,
) -> repl_result {
    boundary("repl_vclock_merge", || {
        if std::ptr::eq(clock.cast_const(), other) {
            // Merging a clock into itself changes nothing. Checked before borrowing: a `&mut`
            // and a `&` to the same clock must never exist at once.
            // SAFETY: the caller's contract.
            unsafe { arg_ref(other, &"clock")? };
            return Ok(());
        }
        // SAFETY: the caller's contract; the two clocks are distinct objects.
        let (clock, other) = unsafe { (arg_mut(clock, &"clock")?, arg_ref(other, &"other")?) };
        clock.clock.merge(&other.clock);
        Ok(())
    })
}

/// Stores how `a` relates causally to `b` in `*out_ordering`, as a `repl_vclock_ordering`
/// value. `a` and `b` may be the same clock (`REPL_VCLOCK_EQUAL`).
///
/// Thread safety: concurrently with other calls that change neither clock.
///
/// # Safety
/// `a` and `b` must each be NULL or a live clock; `out_ordering` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn repl_vclock_compare(
    a: *const repl_vclock,
    b: *const repl_vclock,
    out_ordering: *mut u32,
) -> repl_result {
    boundary("repl_vclock_compare", || {
        // SAFETY: the caller's contract.
        let (a, b, out_ordering) = unsafe {
            (
                arg_ref(a, &"a")?,
                arg_ref(b, &"b")?,
                arg_out(out_ordering, &"out_ordering")?,
            )
        };
        let ordering = match a.clock.compare(&b.clock) {
            VectorOrdering::Before => repl_vclock_ordering::REPL_VCLOCK_BEFORE,
            VectorOrdering::After => repl_vclock_ordering::REPL_VCLOCK_AFTER,
            VectorOrdering::Equal => repl_vclock_ordering::REPL_VCLOCK_EQUAL,
            VectorOrdering::Concurrent => repl_vclock_ordering::REPL_VCLOCK_CONCURRENT,
        };
        out_ordering.write(ordering as u32);
        Ok(())
    })
}

/// Stores the number of nodes with a non-zero counter in `*out`.
///
/// Thread safety: concurrently with other calls that do not change `clock`.
///
/// # Safety
/// `clock` must be NULL or a live clock; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn repl_vclock_len(
    clock: *const repl_vclock,
    out: *mut usize,
) -> repl_result {
    boundary("repl_vclock_len", || {
        // SAFETY: the caller's contract.
        let (clock, out) = unsafe { (arg_ref(clock, &"clock")?, arg_out(out, &"out")?) };
        out.write(clock.clock.len());
        Ok(())
    })
}

/// Stores entry `i` (0-based, in increasing node order, non-zero counters only) in
/// `*out_node` and `*out_counter`; with `repl_vclock_len` this lists the clock, e.g. to send
/// it to another node, which rebuilds it with `repl_vclock_from_entries`. `i` at or beyond
/// `repl_vclock_len` gives `REPL_ERR_INVALID_ARGUMENT`.
///
/// Thread safety: concurrently with other calls that do not change `clock`.
///
/// # Safety
/// `clock` must be NULL or a live clock; `out_node` and `out_counter` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn repl_vclock_entry(
    clock: *const repl_vclock,
    i: usize,
    out_node: *mut u64,
    out_counter: *mut u64,
) -> repl_result {
    boundary("repl_vclock_entry", || {
        // SAFETY: the caller's contract.
        let (clock, out_node, out_counter) = unsafe {
            (
                arg_ref(clock, &"clock")?,
                arg_out(out_node, &"out_node")?,
                arg_out(out_counter, &"out_counter")?,
            )
        };
        let (node, counter) = clock.clock.iter().nth(i).ok_or_else(|| {
            Failure::new(
                repl_result::REPL_ERR_INVALID_ARGUMENT,
                format!(
                    "index {i} is out of range: the clock has {} entries",
                    clock.clock.len()
                ),
            )
        })?;
        out_node.write(node);
        out_counter.write(counter);
        Ok(())
    })
}

/// Releases a clock. NULL is accepted and ignored.
///
/// Thread safety: must be the last call on the clock.
///
/// # Safety
/// `clock` must be NULL or a clock from this library that has not been freed.
#[no_mangle]
pub unsafe extern "C" fn repl_vclock_free(clock: *mut repl_vclock) {
    let _ = boundary("repl_vclock_free", || {
        if !clock.is_null() {
            // SAFETY: the caller's contract: a clock we allocated with Box::into_raw.
            drop(unsafe { Box::from_raw(clock) });
        }
        Ok(())
    });
}
