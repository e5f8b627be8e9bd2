//! The API boundary: the one panic-catching wrapper every exported function runs in, the
//! per-thread last-error detail, and the checks that turn raw C arguments into Rust values.
//!
//! Pattern of every exported function: check and convert all arguments (`arg_*`), do the work,
//! and only then write the outputs (`Out::write`), so a failing call leaves them untouched.

use std::cell::RefCell;
use std::fmt::Display;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::NonNull;

use crate::result::{repl_result, Failure, FfiResult};

thread_local! {
    /// Detail of the most recent failed call on this thread (see `repl_last_error_detail`).
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Runs `body` for the exported function `func`, turning its error or panic into a code and
/// recording the detail for `repl_last_error_detail`.
///
/// This is the only place where panics are caught: no panic unwinds into C.
pub(crate) fn boundary(func: &'static str, body: impl FnOnce() -> FfiResult<()>) -> repl_result {
    let failure = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => return repl_result::REPL_OK,
        Ok(Err(failure)) => failure,
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic payload".to_owned());
            // A payload whose destructor panics again must not escape either; leak that one.
            if let Err(second) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
                std::mem::forget(second);
            }
            Failure::new(
                repl_result::REPL_ERR_PANIC,
                format!("panic inside the replication library: {what}"),
            )
        }
    };
    if !failure.quiet {
        set_last_error(func, failure.detail);
    }
    failure.code
}

/// Records `detail` as this thread's last error, prefixed with the function name.
fn set_last_error(func: &str, detail: String) {
    // C strings end at the first NUL; keep the whole text readable.
    let detail = detail.replace('\0', "\u{FFFD}");
    // `try_with` fails only while the thread is being torn down; nobody could read it then.
    let _ = LAST_ERROR.try_with(|last| {
        if let Ok(mut last) = last.try_borrow_mut() {
            last.clear();
            last.push_str(func);
            last.push_str(": ");
            last.push_str(&detail);
        }
    });
}

/// A copy of this thread's last-error text (empty if no call failed on this thread).
pub(crate) fn last_error() -> String {
    LAST_ERROR
        .try_with(|last| last.try_borrow().map(|s| s.clone()).unwrap_or_default())
        .unwrap_or_default()
}

fn null(name: &dyn Display) -> Failure {
    Failure::new(
        repl_result::REPL_ERR_NULL_ARGUMENT,
        format!("argument `{name}` is NULL"),
    )
}

fn check_aligned<T>(ptr: *const T, name: &dyn Display) -> FfiResult<()> {
    if ptr.is_aligned() {
        Ok(())
    } else {
        Err(Failure::new(
            repl_result::REPL_ERR_INVALID_ARGUMENT,
            format!(
                "argument `{name}` ({ptr:p}) is not aligned to {} bytes",
                std::mem::align_of::<T>()
            ),
        ))
    }
}

/// Borrows the object behind a non-NULL, aligned input pointer.
///
/// # Safety
/// `ptr` is NULL or points to a valid `T` that outlives `'a` and is not mutated meanwhile.
pub(crate) unsafe fn arg_ref<'a, T>(ptr: *const T, name: &dyn Display) -> FfiResult<&'a T> {
    if ptr.is_null() {
        return Err(null(name));
    }
    check_aligned(ptr, name)?;
    // SAFETY: non-NULL and aligned; validity is the caller's contract.
    Ok(unsafe { &*ptr })
}

/// Exclusively borrows the object behind a non-NULL, aligned pointer.
///
/// # Safety
/// `ptr` is NULL or points to a valid `T` that outlives `'a` and that nothing else accesses
/// meanwhile.
pub(crate) unsafe fn arg_mut<'a, T>(ptr: *mut T, name: &dyn Display) -> FfiResult<&'a mut T> {
    if ptr.is_null() {
        return Err(null(name));
    }
    check_aligned(ptr, name)?;
    // SAFETY: non-NULL and aligned; validity and exclusivity are the caller's contract.
    Ok(unsafe { &mut *ptr })
}

/// Borrows `len` elements at `ptr`. `ptr` may be NULL only when `len` is 0.
///
/// # Safety
/// Unless NULL, `ptr` points to `len` valid, initialised `T`s that outlive `'a`.
pub(crate) unsafe fn arg_slice<'a, T>(
    ptr: *const T,
    len: usize,
    name: &dyn Display,
) -> FfiResult<&'a [T]> {
    if ptr.is_null() {
        return if len == 0 { Ok(&[]) } else { Err(null(name)) };
    }
    check_aligned(ptr, name)?;
    if len.saturating_mul(std::mem::size_of::<T>()) > isize::MAX as usize {
        return Err(Failure::new(
            repl_result::REPL_ERR_INVALID_ARGUMENT,
            format!("length {len} of argument `{name}` is larger than any object can be"),
        ));
    }
    // SAFETY: non-NULL, aligned, size checked above; validity is the caller's contract.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// Borrows `len` bytes at `ptr` as UTF-8 text. `ptr` may be NULL only when `len` is 0.
///
/// # Safety
/// As for [`arg_slice`].
pub(crate) unsafe fn arg_str<'a>(
    ptr: *const u8,
    len: usize,
    name: &dyn Display,
) -> FfiResult<&'a str> {
    // SAFETY: forwarded contract.
    let bytes = unsafe { arg_slice(ptr, len, name)? };
    std::str::from_utf8(bytes).map_err(|e| {
        Failure::new(
            repl_result::REPL_ERR_INVALID_UTF8,
            format!("argument `{name}` is not valid UTF-8: {e}"),
        )
    })
}

/// A checked output pointer. Written at most once, after all the work succeeded.
pub(crate) struct Out<T>(NonNull<T>);

impl<T> Out<T> {
    pub fn write(self, value: T) {
        // SAFETY: `arg_out` checked non-NULL and alignment; the caller of the exported function
        // promised it is valid for writes. `write` does not drop the (possibly uninitialised)
        // old value.
        unsafe { self.0.as_ptr().write(value) }
    }
}

/// Checks an output pointer: non-NULL and aligned.
///
/// # Safety
/// Unless NULL, `ptr` must be valid for writes of a `T` until the exported function returns.
pub(crate) unsafe fn arg_out<T>(ptr: *mut T, name: &dyn Display) -> FfiResult<Out<T>> {
    let Some(p) = NonNull::new(ptr) else {
        return Err(null(name));
    };
    check_aligned(ptr.cast_const(), name)?;
    Ok(Out(p))
}

/// A caller's text buffer (`char *buf, size_t len`): NULL is allowed only with `len == 0`.
pub(crate) struct OutText {
    buf: *mut u8,
    len: usize,
}

/// Checks a caller-provided text buffer.
///
/// # Safety
/// Unless NULL, `buf` must be valid for writes of `len` bytes until the exported function
/// returns.
pub(crate) unsafe fn arg_text_buf(
    buf: *mut std::ffi::c_char,
    len: usize,
    name: &dyn Display,
) -> FfiResult<OutText> {
    if buf.is_null() && len != 0 {
        return Err(null(name));
    }
    Ok(OutText {
        buf: buf.cast(),
        len,
    })
}

impl OutText {
    /// Copies `text` and a terminating NUL into the buffer and reports the text's length
    /// (without the NUL) through `out_len`.
    ///
    /// When the buffer is too small nothing is copied, `out_len` still receives the length, and
    /// the result is `REPL_ERR_BUFFER_TOO_SMALL`: the one documented case where an output is
    /// written on failure, because it is the answer the caller needs to retry.
    pub fn write(self, text: &str, out_len: Out<usize>) -> FfiResult<()> {
        let n = text.len();
        out_len.write(n);
        if self.len <= n {
            return Err(Failure::new(
                repl_result::REPL_ERR_BUFFER_TOO_SMALL,
                format!(
                    "the buffer holds {} bytes; {} are needed (text plus NUL)",
                    self.len,
                    n + 1
                ),
            ));
        }
        // SAFETY: `self.len > n` so the buffer is non-NULL and has room for n + 1 bytes; the
        // source is a Rust string that cannot overlap a caller buffer we were handed.
        unsafe {
            std::ptr::copy_nonoverlapping(text.as_ptr(), self.buf, n);
            self.buf.add(n).write(0);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundary_turns_a_panic_into_a_code_and_a_detail() {
        let code = boundary("repl_test_fn", || panic!("deliberate test panic {}", 42));
        assert_eq!(code, repl_result::REPL_ERR_PANIC);
        assert_eq!(
            last_error(),
            "repl_test_fn: panic inside the replication library: deliberate test panic 42"
        );
        let code = boundary("repl_test_fn", || std::panic::panic_any(7u32));
        assert_eq!(code, repl_result::REPL_ERR_PANIC);
        assert!(
            last_error().ends_with("non-string panic payload"),
            "{}",
            last_error()
        );
    }

    #[test]
    fn boundary_records_failures_and_leaves_the_detail_alone_on_success() {
        let code = boundary("repl_a", || {
            Err(Failure::new(repl_result::REPL_ERR_WAL_IO, "disk\0gone"))
        });
        assert_eq!(code, repl_result::REPL_ERR_WAL_IO);
        assert_eq!(boundary("repl_b", || Ok(())), repl_result::REPL_OK);
        assert_eq!(last_error(), "repl_a: disk\u{FFFD}gone");
    }

    #[test]
    fn slices_accept_null_only_when_empty() {
        unsafe {
            assert_eq!(
                arg_slice::<u8>(std::ptr::null(), 0, &"p").unwrap(),
                &[] as &[u8]
            );
            let e = arg_slice::<u8>(std::ptr::null(), 1, &"p").unwrap_err();
            assert_eq!(e.code, repl_result::REPL_ERR_NULL_ARGUMENT);
            let e = arg_str(b"\xff".as_ptr(), 1, &"name").unwrap_err();
            assert_eq!(e.code, repl_result::REPL_ERR_INVALID_UTF8);
            assert!(e.detail.contains("`name`"), "{}", e.detail);
            let big = arg_slice::<u64>(std::ptr::dangling(), usize::MAX / 4, &"p").unwrap_err();
            assert_eq!(big.code, repl_result::REPL_ERR_INVALID_ARGUMENT);
        }
    }

    #[test]
    fn misaligned_pointers_are_rejected() {
        let words = [0u64; 2];
        let odd = (words.as_ptr() as *const u8).wrapping_add(1) as *const u64;
        let e = unsafe { arg_ref(odd, &"x") }.unwrap_err();
        assert_eq!(e.code, repl_result::REPL_ERR_INVALID_ARGUMENT);
    }

    #[test]
    fn text_buffer_reports_the_length_needed() {
        let mut buf = [0x55 as std::ffi::c_char; 4];
        let mut n = 0usize;
        let out = unsafe { arg_text_buf(buf.as_mut_ptr(), buf.len(), &"buf") }.unwrap();
        let e = out
            .write("four", unsafe { arg_out(&mut n, &"n") }.unwrap())
            .unwrap_err();
        assert_eq!((e.code, n), (repl_result::REPL_ERR_BUFFER_TOO_SMALL, 4));
        assert!(buf.iter().all(|&b| b == 0x55), "nothing copied on failure");
        let out = unsafe { arg_text_buf(buf.as_mut_ptr(), buf.len(), &"buf") }.unwrap();
        out.write("abc", unsafe { arg_out(&mut n, &"n") }.unwrap())
            .unwrap();
        assert_eq!(n, 3);
        assert_eq!(buf.map(|b| b as u8), *b"abc\0");
    }
}
