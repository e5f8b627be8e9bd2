//! `repl_wal_iter`: sequential reads from a WAL.

use replication_core::wal::WalIter;
use replication_core::{Record, Wal};

use crate::boundary::{arg_mut, arg_out, boundary};
use crate::result::repl_result;
use crate::wal::{closed, repl_record};

/// A record read back from the WAL, with its LSN.
///
/// Its pointers point into memory owned by the iterator that produced it and stay valid until
/// the next call on that iterator (`repl_wal_iter_next` or `repl_wal_iter_free`); copy what
/// must live longer. The strings are UTF-8 and not NUL-terminated.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct repl_record_view {
    /// Log sequence number of the record.
    pub lsn: u64,
    pub record: repl_record,
}

impl repl_record_view {
    fn empty() -> Self {
        repl_record_view {
            lsn: 0,
            record: repl_record {
                term: 0,
                hlc: 0,
                origin: 0,
                op: 0,
                collection: std::ptr::null(),
                collection_len: 0,
                doc_id: std::ptr::null(),
                doc_id_len: 0,
                has_txn_id: false,
                txn_id: 0,
                payload: std::ptr::null(),
                payload_len: 0,
            },
        }
    }

    /// A view borrowing from `r`: valid while `r` is neither moved nor dropped.
    fn of(r: &Record) -> Self {
        repl_record_view {
            lsn: r.lsn,
            record: repl_record {
                term: r.term,
                hlc: r.hlc.0,
                origin: r.origin,
                op: r.op.code(),
                collection: r.collection.as_ptr(),
                collection_len: r.collection.len(),
                doc_id: r.doc_id.as_ptr(),
                doc_id_len: r.doc_id.len(),
                has_txn_id: r.txn_id.is_some(),
                txn_id: r.txn_id.unwrap_or(0),
                payload: r.payload.as_ptr(),
                payload_len: r.payload.len(),
            },
        }
    }
}

/// Iterator over WAL records, from `repl_wal_read_from`. Release with `repl_wal_iter_free`.
///
/// Thread safety: an iterator may be used from any thread, but from one thread at a time. It
/// is independent of other iterators and may be used while other threads use the WAL handle.
#[allow(non_camel_case_types)]
pub struct repl_wal_iter {
    /// Kept to notice that the WAL was closed.
    wal: Wal,
    iter: WalIter,
    /// The record the last view points into.
    current: Option<Record>,
}

impl repl_wal_iter {
    pub(crate) fn new(wal: Wal, iter: WalIter) -> Self {
        repl_wal_iter {
            wal,
            iter,
            current: None,
        }
    }
}

/// Advances the iterator. On success stores whether a record was read in `*out_has_record`
/// and, if so, the record in `*out` (otherwise `*out` is zeroed: the iteration is finished).
/// The view's pointers stay valid until the next call on this iterator.
///
/// After an error (e.g. `REPL_ERR_WAL_CORRUPT` naming the file and offset, or a concurrent
/// truncation of the range) the iteration is over: later calls report no record. Returns
/// `REPL_ERR_HANDLE_CLOSED` once the WAL it reads was closed. Blocks while reading a segment.
///
/// Thread safety: one thread at a time per iterator.
///
/// # Safety
/// `iter` must be NULL or a live iterator not used concurrently; `out` and `out_has_record`
/// NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn repl_wal_iter_next(
    iter: *mut repl_wal_iter,
    out: *mut repl_record_view,
    out_has_record: *mut bool,
) -> repl_result {
    boundary("repl_wal_iter_next", || {
        // SAFETY: the caller's contract.
        let (it, out, out_has_record) = unsafe {
            (
                arg_mut(iter, &"iter")?,
                arg_out(out, &"out")?,
                arg_out(out_has_record, &"out_has_record")?,
            )
        };
        // Views handed out before are invalid from here on, whatever happens.
        it.current = None;
        if it.wal.is_closed() {
            return Err(closed());
        }
        match it.iter.next().transpose()? {
            Some(record) => {
                let record = it.current.insert(record);
                out.write(repl_record_view::of(record));
                out_has_record.write(true);
            }
            None => {
                out.write(repl_record_view::empty());
                out_has_record.write(false);
            }
        }
        Ok(())
    })
}

/// Releases an iterator from `repl_wal_read_from`, invalidating its last view. NULL is accepted
/// and ignored.
///
/// Thread safety: must be the last call on the iterator.
///
/// # Safety
/// `iter` must be NULL or an iterator from `repl_wal_read_from` that has not been freed.
#[no_mangle]
pub unsafe extern "C" fn repl_wal_iter_free(iter: *mut repl_wal_iter) {
    let _ = boundary("repl_wal_iter_free", || {
        if !iter.is_null() {
            // SAFETY: the caller's contract: an iterator we allocated with Box::into_raw.
            drop(unsafe { Box::from_raw(iter) });
        }
        Ok(())
    });
}
