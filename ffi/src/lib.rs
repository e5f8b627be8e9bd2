//! C ABI of the replication engine, built as `libreplication.so` / `libreplication.a`; the
//! header `include/replication.h` is generated from this crate by cbindgen.
//!
//! This crate is thin on purpose: it checks and converts C arguments, forwards to
//! `replication-core`, and converts results back. No replication logic lives here.
//!
//! Rules every exported function follows (stated for C users in the header's preamble):
//! - it runs inside `boundary::boundary`, so a Rust panic becomes `REPL_ERR_PANIC` and never
//!   unwinds into C;
//! - it checks every pointer (NULL, alignment) and every string (UTF-8) before doing anything;
//! - it writes its outputs, which come last in the argument list, only when it succeeds;
//! - a `const` handle argument means the call does not change the object.

// `unsafe extern "C"` functions document their contract in a `# Safety` section; inside them,
// every unsafe operation still gets its own block and justification.
#![deny(unsafe_op_in_unsafe_fn)]

// The generated header lists the functions of this file first, then those of each module in
// declaration order (alphabetical: rustfmt sorts them).
mod boundary;
mod config;
mod dev;
mod hlc;
mod iter;
mod node;
mod result;
mod runtime;
mod vclock;
mod wal;

use std::ffi::c_char;

pub use config::*;
pub use dev::*;
pub use hlc::*;
pub use iter::*;
pub use node::*;
pub use result::repl_result;
pub use vclock::*;
pub use wal::*;

use boundary::{arg_out, arg_text_buf, boundary, last_error};
use result::Failure;

/// Version of the library, e.g. "0.1.0": a static NUL-terminated string the caller must not
/// free. Cannot fail.
///
/// Thread safety: any thread.
#[no_mangle]
pub extern "C" fn repl_version() -> *const c_char {
    // A constant: nothing here can panic, so there is no boundary to run it in.
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// Copies the fixed description of result code `code` (a `repl_result` value), NUL-terminated,
/// into `buf` of `len` bytes, and stores the description's length without the NUL in
/// `*out_len`. Unknown codes get a generic description naming the number.
///
/// If `len` is too small, returns `REPL_ERR_BUFFER_TOO_SMALL`, leaves `buf` untouched and
/// still stores the length in `*out_len` (the one case where an output is written on failure):
/// retry with a buffer of `*out_len + 1` bytes. `buf` may be NULL when `len` is 0, to ask for
/// the length only. Never changes the thread's last-error detail.
///
/// Thread safety: any thread.
///
/// # Safety
/// `buf` must be NULL or writable for `len` bytes; `out_len` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn repl_error_message(
    code: u32,
    buf: *mut c_char,
    len: usize,
    out_len: *mut usize,
) -> repl_result {
    boundary("repl_error_message", || {
        let copy = || {
            // SAFETY: the caller's contract.
            let (buf, out_len) = unsafe {
                (
                    arg_text_buf(buf, len, &"buf")?,
                    arg_out(out_len, &"out_len")?,
                )
            };
            match repl_result::from_code(code) {
                Some(r) => buf.write(r.message(), out_len),
                None => buf.write(&format!("unknown repl_result code {code}"), out_len),
            }
        };
        // A caller may be about to read the last-error detail: do not replace it.
        copy().map_err(Failure::quiet)
    })
}

/// Copies the full text of the most recent failure of a `repl_*` call on the calling thread,
/// NUL-terminated, into `buf` of `len` bytes, and stores its length without the NUL in
/// `*out_len`. The text starts with the function name and carries what the code alone cannot:
/// file names, byte offsets of corruption, LSN ranges, the OS error. It is empty if no call
/// failed on this thread yet; successful calls leave it unchanged, so read it right after the
/// failure.
///
/// Size protocol as for `repl_error_message` (`REPL_ERR_BUFFER_TOO_SMALL` still stores the
/// length). Never changes the detail itself, even when it fails.
///
/// Thread safety: any thread; each thread has its own detail.
///
/// # Safety
/// `buf` must be NULL or writable for `len` bytes; `out_len` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn repl_last_error_detail(
    buf: *mut c_char,
    len: usize,
    out_len: *mut usize,
) -> repl_result {
    boundary("repl_last_error_detail", || {
        let copy = || {
            // SAFETY: the caller's contract.
            let (buf, out_len) = unsafe {
                (
                    arg_text_buf(buf, len, &"buf")?,
                    arg_out(out_len, &"out_len")?,
                )
            };
            buf.write(&last_error(), out_len)
        };
        // Failing to read the detail must not replace it (e.g. a too-small buffer).
        copy().map_err(Failure::quiet)
    })
}
