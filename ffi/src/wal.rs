//! `repl_wal`: the write-ahead log behind an opaque handle.

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use replication_core::wal::Compression;
use replication_core::{
    Durability, HlcTimestamp, NewRecord, Operation, RecoveryMode, Wal, WalOptions,
};

use crate::boundary::{arg_out, arg_ref, arg_slice, arg_str, boundary};
use crate::iter::repl_wal_iter;
use crate::result::{repl_result, Failure, FfiResult};

/// When appended records are forced to stable storage (`repl_wal_options.durability`).
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum repl_durability {
    /// Every append returns only after an fdatasync covering it; concurrent appenders share one
    /// fdatasync (group commit).
    REPL_DURABILITY_EVERY_COMMIT = 0,
    /// A background thread fdatasyncs every `sync_interval_ms`; a crash may lose up to one
    /// interval of acknowledged appends.
    REPL_DURABILITY_INTERVAL = 1,
    /// Never fdatasync (tests and benchmarks only).
    REPL_DURABILITY_NONE = 2,
}

/// What opening a WAL does with damaged bytes at its end (`repl_wal_options.recovery_mode`).
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum repl_recovery_mode {
    /// Truncate a torn tail of the last segment (what a crash mid-write leaves); any other
    /// damage fails the open with `REPL_ERR_WAL_CORRUPT`.
    REPL_RECOVERY_TOLERATE_TORN_TAIL = 0,
    /// Any damage, a torn tail included, fails the open: nothing is removed silently.
    REPL_RECOVERY_ABSOLUTE_CONSISTENCY = 1,
}

/// Operation codes of `repl_record.op`. Codes 5..255 are stored and returned unchanged (records
/// of newer writers); 0 is reserved and rejected with `REPL_ERR_WAL_INVALID_RECORD`.
#[allow(non_camel_case_types)]
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum repl_operation {
    REPL_OP_INSERT = 1,
    REPL_OP_UPDATE = 2,
    REPL_OP_DELETE = 3,
    REPL_OP_DDL = 4,
}

/// Options for `repl_wal_open`. Fill it with `repl_wal_options_default`, then set `dir`.
///
/// Enumerated fields are plain integers so that any value C stores is safe to pass; unknown
/// values fail `repl_wal_open` with `REPL_ERR_WAL_INVALID_OPTIONS`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct repl_wal_options {
    /// Directory of the WAL, UTF-8, `dir_len` bytes, no NUL needed. Created if missing. Only
    /// read during `repl_wal_open`.
    pub dir: *const u8,
    pub dir_len: usize,
    /// A new segment file starts once the current one would grow past this (at least 4096).
    pub segment_size_bytes: u64,
    /// One of `repl_durability`.
    pub durability: u32,
    /// Period of the background fdatasync; used only with `REPL_DURABILITY_INTERVAL`, where it
    /// must be greater than 0.
    pub sync_interval_ms: u64,
    /// Compress each appended batch with zstd.
    pub compression_enabled: bool,
    /// zstd level, 1..=22 (checked only when compression is enabled).
    pub compression_level: i32,
    /// Batches smaller than this are stored uncompressed.
    pub compression_min_batch_bytes: usize,
    /// One of `repl_recovery_mode`.
    pub recovery_mode: u32,
    /// Keep the active segment zero-filled a few MiB past its last frame, which makes commit
    /// fdatasyncs cheaper (default true). Segment files of an open WAL are then longer than
    /// their data; closing trims them.
    pub zero_fill_ahead: bool,
}

/// A record handed to `repl_wal_append`, and the record part of `repl_record_view`.
///
/// Every (pointer, length) pair may have a NULL pointer only when its length is 0. The library
/// copies what it needs during the call and keeps no pointer into the record.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct repl_record {
    /// Raft term of the leader that created the record.
    pub term: u64,
    /// HLC timestamp (see `repl_hlc_now`).
    pub hlc: u64,
    /// Node id of the node where the change originated.
    pub origin: u64,
    /// One of `repl_operation` (other non-zero codes are stored unchanged).
    pub op: u8,
    /// Collection (table) name, UTF-8, at most 65535 bytes.
    pub collection: *const u8,
    pub collection_len: usize,
    /// Document (row) id, UTF-8, at most 65535 bytes.
    pub doc_id: *const u8,
    pub doc_id_len: usize,
    /// Whether `txn_id` holds a transaction id.
    pub has_txn_id: bool,
    pub txn_id: u64,
    /// Opaque payload bytes (at most 256 MiB).
    pub payload: *const u8,
    pub payload_len: usize,
}

/// An open write-ahead log. Create with `repl_wal_open`, release with `repl_wal_free`.
///
/// Thread safety: every function may be called on the same handle from any number of threads at
/// once, except `repl_wal_free`, which must be the last call on the handle.
#[allow(non_camel_case_types)]
pub struct repl_wal {
    /// `None` once closed. Each call clones the `Wal` (a reference count) and releases the
    /// mutex before doing any work, so calls never wait on each other here; closing drops the
    /// handle's reference so the directory lock goes away once running calls and iterators end.
    wal: Mutex<Option<Wal>>,
}

impl repl_wal {
    pub(crate) fn new(wal: Wal) -> Self {
        repl_wal {
            wal: Mutex::new(Some(wal)),
        }
    }

    fn slot(&self) -> MutexGuard<'_, Option<Wal>> {
        // Nothing panics while the mutex is held, but a poisoned mutex must not panic again.
        self.wal.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn get(&self) -> FfiResult<Wal> {
        self.slot().clone().ok_or_else(closed)
    }
}

pub(crate) fn closed() -> Failure {
    Failure::new(
        repl_result::REPL_ERR_HANDLE_CLOSED,
        "the WAL handle was closed; only repl_wal_free may be called on it",
    )
}

fn invalid_options(detail: String) -> Failure {
    Failure::new(repl_result::REPL_ERR_WAL_INVALID_OPTIONS, detail)
}

fn options_from_c(o: &repl_wal_options) -> FfiResult<WalOptions> {
    // SAFETY: the caller of repl_wal_open promises `dir` points to `dir_len` readable bytes.
    let dir = unsafe { arg_str(o.dir, o.dir_len, &"options->dir")? };
    if dir.is_empty() {
        return Err(invalid_options(
            "options->dir is empty; set it to the WAL directory".into(),
        ));
    }
    let durability = match o.durability {
        x if x == repl_durability::REPL_DURABILITY_EVERY_COMMIT as u32 => Durability::EveryCommit,
        x if x == repl_durability::REPL_DURABILITY_INTERVAL as u32 => {
            Durability::Interval(Duration::from_millis(o.sync_interval_ms))
        }
        x if x == repl_durability::REPL_DURABILITY_NONE as u32 => Durability::None,
        other => {
            return Err(invalid_options(format!(
                "options->durability = {other} is not a repl_durability value (0, 1 or 2)"
            )))
        }
    };
    let recovery_mode = match o.recovery_mode {
        x if x == repl_recovery_mode::REPL_RECOVERY_TOLERATE_TORN_TAIL as u32 => {
            RecoveryMode::TolerateTornTail
        }
        x if x == repl_recovery_mode::REPL_RECOVERY_ABSOLUTE_CONSISTENCY as u32 => {
            RecoveryMode::AbsoluteConsistency
        }
        other => {
            return Err(invalid_options(format!(
                "options->recovery_mode = {other} is not a repl_recovery_mode value (0 or 1)"
            )))
        }
    };
    Ok(WalOptions {
        dir: PathBuf::from(dir),
        segment_size_bytes: o.segment_size_bytes,
        durability,
        compression: Compression {
            enabled: o.compression_enabled,
            level: o.compression_level,
            min_batch_bytes: o.compression_min_batch_bytes,
        },
        recovery_mode,
        zero_fill_ahead: o.zero_fill_ahead,
    })
}

fn options_to_c(o: &WalOptions) -> repl_wal_options {
    let (durability, interval) = match o.durability {
        Durability::EveryCommit => (repl_durability::REPL_DURABILITY_EVERY_COMMIT, 0),
        Durability::Interval(d) => (
            repl_durability::REPL_DURABILITY_INTERVAL,
            u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
        ),
        Durability::None => (repl_durability::REPL_DURABILITY_NONE, 0),
    };
    let recovery_mode = match o.recovery_mode {
        RecoveryMode::TolerateTornTail => repl_recovery_mode::REPL_RECOVERY_TOLERATE_TORN_TAIL,
        RecoveryMode::AbsoluteConsistency => repl_recovery_mode::REPL_RECOVERY_ABSOLUTE_CONSISTENCY,
    };
    repl_wal_options {
        dir: std::ptr::null(),
        dir_len: 0,
        segment_size_bytes: o.segment_size_bytes,
        durability: durability as u32,
        sync_interval_ms: interval,
        compression_enabled: o.compression.enabled,
        compression_level: o.compression.level,
        compression_min_batch_bytes: o.compression.min_batch_bytes,
        recovery_mode: recovery_mode as u32,
        zero_fill_ahead: o.zero_fill_ahead,
    }
}

/// Converts a C record; `name` is how the detail text refers to it (`record`, `records[3]`).
///
/// # Safety
/// The record's (pointer, length) pairs must be readable for the duration of the call.
pub(crate) unsafe fn record_from_c(
    r: &repl_record,
    name: &dyn std::fmt::Display,
) -> FfiResult<NewRecord> {
    // SAFETY: forwarded contract.
    let (collection, doc_id, payload) = unsafe {
        (
            arg_str(
                r.collection,
                r.collection_len,
                &format_args!("{name}.collection"),
            )?,
            arg_str(r.doc_id, r.doc_id_len, &format_args!("{name}.doc_id"))?,
            arg_slice(r.payload, r.payload_len, &format_args!("{name}.payload"))?,
        )
    };
    let op = Operation::from_code(r.op).ok_or_else(|| {
        Failure::new(
            repl_result::REPL_ERR_WAL_INVALID_RECORD,
            format!("{name}.op = 0 is reserved; use a repl_operation value such as REPL_OP_INSERT"),
        )
    })?;
    Ok(NewRecord {
        term: r.term,
        hlc: HlcTimestamp(r.hlc),
        origin: r.origin,
        op,
        collection: collection.into(),
        doc_id: doc_id.into(),
        txn_id: r.has_txn_id.then_some(r.txn_id),
        payload: payload.to_vec().into(),
    })
}

/// Fills `*out` with the default options (durable every commit, zstd level 3, 64 MiB segments,
/// tolerate a torn tail) and an empty `dir`, which the caller must set.
///
/// Thread safety: any thread.
///
/// # Safety
/// `out` must be NULL or valid for writing a `repl_wal_options`.
#[no_mangle]
pub unsafe extern "C" fn repl_wal_options_default(out: *mut repl_wal_options) -> repl_result {
    boundary("repl_wal_options_default", || {
        // SAFETY: the caller's contract.
        let out = unsafe { arg_out(out, &"out")? };
        out.write(options_to_c(&WalOptions::new(PathBuf::new())));
        Ok(())
    })
}

/// Opens (creating if needed) the WAL in `options->dir`, running recovery, and stores a new
/// handle in `*out`. The caller owns the handle and must release it with `repl_wal_free`.
///
/// Only one handle per directory may be open at a time, in any process
/// (`REPL_ERR_WAL_DIR_LOCKED`). Recovery failures name the damaged file and offset in
/// `repl_last_error_detail`. Blocks for the duration of recovery. To open the WAL a
/// configuration describes, use `repl_wal_open_from_config`.
///
/// Thread safety: any thread.
///
/// # Safety
/// `options` must be NULL or point to a valid `repl_wal_options` whose `dir` is readable for
/// `dir_len` bytes; `out` must be NULL or valid for writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn repl_wal_open(
    options: *const repl_wal_options,
    out: *mut *mut repl_wal,
) -> repl_result {
    boundary("repl_wal_open", || {
        // SAFETY: the caller's contract.
        let (options, out) = unsafe { (arg_ref(options, &"options")?, arg_out(out, &"out")?) };
        let wal = Wal::open(options_from_c(options)?)?;
        out.write(Box::into_raw(Box::new(repl_wal::new(wal))));
        Ok(())
    })
}

/// Appends one record and stores its LSN in `*out_lsn`. Under `REPL_DURABILITY_EVERY_COMMIT`
/// the record is durable when this returns. Blocks for the write (and fdatasync).
///
/// Thread safety: may run concurrently with other calls on the same handle; concurrent appends
/// get distinct, increasing LSNs in the order they take the WAL's internal lock.
///
/// # Safety
/// `wal` must be NULL or a live handle from `repl_wal_open`; `record` NULL or a valid record;
/// `out_lsn` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn repl_wal_append(
    wal: *mut repl_wal,
    record: *const repl_record,
    out_lsn: *mut u64,
) -> repl_result {
    boundary("repl_wal_append", || {
        // SAFETY: the caller's contract.
        let (wal, record, out_lsn) = unsafe {
            (
                arg_ref(wal.cast_const(), &"wal")?,
                arg_ref(record, &"record")?,
                arg_out(out_lsn, &"out_lsn")?,
            )
        };
        let wal = wal.get()?;
        // SAFETY: the caller's contract covers the record's pointers.
        let record = unsafe { record_from_c(record, &"record")? };
        out_lsn.write(wal.append(&record)?);
        Ok(())
    })
}

/// Appends `n` records as one atomic batch (one checksummed, compressed frame) and stores the
/// first and last LSN assigned. All or nothing: after a failure no record of the batch is
/// returned by a later read or reopen. `n` must be at least 1.
///
/// Thread safety: as `repl_wal_append`.
///
/// # Safety
/// `wal` must be NULL or a live handle; `records` NULL or an array of `n` valid records;
/// `out_first` and `out_last` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn repl_wal_append_batch(
    wal: *mut repl_wal,
    records: *const repl_record,
    n: usize,
    out_first: *mut u64,
    out_last: *mut u64,
) -> repl_result {
    boundary("repl_wal_append_batch", || {
        // SAFETY: the caller's contract.
        let (wal, records, out_first, out_last) = unsafe {
            (
                arg_ref(wal.cast_const(), &"wal")?,
                arg_slice(records, n, &"records")?,
                arg_out(out_first, &"out_first")?,
                arg_out(out_last, &"out_last")?,
            )
        };
        let wal = wal.get()?;
        let records = records
            .iter()
            .enumerate()
            // SAFETY: the caller's contract covers every record's pointers.
            .map(|(i, r)| unsafe { record_from_c(r, &format_args!("records[{i}]")) })
            .collect::<FfiResult<Vec<_>>>()?;
        let (first, last) = wal.append_batch(&records)?;
        out_first.write(first);
        out_last.write(last);
        Ok(())
    })
}

/// Starts reading at `lsn` and stores a new iterator in `*out`; it yields the records from
/// `lsn` up to the last LSN at the time of this call. `lsn` may be `last_lsn + 1` (an empty
/// iterator); below `first_lsn` or beyond `last_lsn + 1` is `REPL_ERR_WAL_LSN_OUT_OF_RANGE`.
/// The caller owns the iterator and must release it with `repl_wal_iter_free`.
///
/// Thread safety: any thread; the WAL handle is not modified.
///
/// # Safety
/// `wal` must be NULL or a live handle; `out` NULL or valid for writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn repl_wal_read_from(
    wal: *const repl_wal,
    lsn: u64,
    out: *mut *mut repl_wal_iter,
) -> repl_result {
    boundary("repl_wal_read_from", || {
        // SAFETY: the caller's contract.
        let (wal, out) = unsafe { (arg_ref(wal, &"wal")?, arg_out(out, &"out")?) };
        let wal = wal.get()?;
        let iter = wal.read_from(lsn)?;
        out.write(Box::into_raw(Box::new(repl_wal_iter::new(wal, iter))));
        Ok(())
    })
}

/// Finds the first record whose HLC timestamp is >= `hlc` (where a point-in-time replay
/// starts). Stores whether there is one in `*out_found` and its LSN in `*out_lsn` (0 when not
/// found). Blocks while it reads the segments involved.
///
/// Thread safety: any thread.
///
/// # Safety
/// `wal` must be NULL or a live handle; `out_found` and `out_lsn` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn repl_wal_find_lsn_by_timestamp(
    wal: *const repl_wal,
    hlc: u64,
    out_found: *mut bool,
    out_lsn: *mut u64,
) -> repl_result {
    boundary("repl_wal_find_lsn_by_timestamp", || {
        // SAFETY: the caller's contract.
        let (wal, out_found, out_lsn) = unsafe {
            (
                arg_ref(wal, &"wal")?,
                arg_out(out_found, &"out_found")?,
                arg_out(out_lsn, &"out_lsn")?,
            )
        };
        let found = wal.get()?.find_lsn_by_timestamp(HlcTimestamp(hlc))?;
        out_found.write(found.is_some());
        out_lsn.write(found.unwrap_or(0));
        Ok(())
    })
}

/// Removes every record with LSN > `lsn` (a Raft log conflict); `lsn` may be `first_lsn - 1`
/// to remove everything. Durable on return. Iterators reading the removed range end with an
/// error.
///
/// Thread safety: any thread; appends wait while it runs.
///
/// # Safety
/// `wal` must be NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn repl_wal_truncate_after(wal: *mut repl_wal, lsn: u64) -> repl_result {
    boundary("repl_wal_truncate_after", || {
        // SAFETY: the caller's contract.
        let wal = unsafe { arg_ref(wal.cast_const(), &"wal")? };
        wal.get()?.truncate_after(lsn)?;
        Ok(())
    })
}

/// Deletes whole segment files whose records all have LSN < `lsn` (retention, or after a
/// snapshot) and stores how many were deleted in `*out_segments_removed`. The active segment is
/// never deleted, so older records may remain: `repl_wal_first_lsn` tells what is left.
///
/// Thread safety: any thread.
///
/// # Safety
/// `wal` must be NULL or a live handle; `out_segments_removed` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn repl_wal_purge_before(
    wal: *mut repl_wal,
    lsn: u64,
    out_segments_removed: *mut usize,
) -> repl_result {
    boundary("repl_wal_purge_before", || {
        // SAFETY: the caller's contract.
        let (wal, out) = unsafe {
            (
                arg_ref(wal.cast_const(), &"wal")?,
                arg_out(out_segments_removed, &"out_segments_removed")?,
            )
        };
        out.write(wal.get()?.purge_before(lsn)?);
        Ok(())
    })
}

/// Stores the LSN of the oldest record still held (`last_lsn + 1` when the WAL is empty).
///
/// Thread safety: any thread.
///
/// # Safety
/// `wal` must be NULL or a live handle; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn repl_wal_first_lsn(wal: *const repl_wal, out: *mut u64) -> repl_result {
    boundary("repl_wal_first_lsn", || {
        // SAFETY: the caller's contract.
        let (wal, out) = unsafe { (arg_ref(wal, &"wal")?, arg_out(out, &"out")?) };
        out.write(wal.get()?.first_lsn());
        Ok(())
    })
}

/// Stores the LSN of the last appended record (0 when nothing was ever appended).
///
/// Thread safety: any thread.
///
/// # Safety
/// `wal` must be NULL or a live handle; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn repl_wal_last_lsn(wal: *const repl_wal, out: *mut u64) -> repl_result {
    boundary("repl_wal_last_lsn", || {
        // SAFETY: the caller's contract.
        let (wal, out) = unsafe { (arg_ref(wal, &"wal")?, arg_out(out, &"out")?) };
        out.write(wal.get()?.last_lsn());
        Ok(())
    })
}

/// Stores the LSN up to which every record is covered by a completed fdatasync.
///
/// Thread safety: any thread.
///
/// # Safety
/// `wal` must be NULL or a live handle; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn repl_wal_durable_lsn(wal: *const repl_wal, out: *mut u64) -> repl_result {
    boundary("repl_wal_durable_lsn", || {
        // SAFETY: the caller's contract.
        let (wal, out) = unsafe { (arg_ref(wal, &"wal")?, arg_out(out, &"out")?) };
        out.write(wal.get()?.durable_lsn());
        Ok(())
    })
}

/// Writes everything appended so far and fdatasyncs it, whatever the durability policy.
/// Blocks for the write and fdatasync.
///
/// Thread safety: any thread.
///
/// # Safety
/// `wal` must be NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn repl_wal_sync(wal: *mut repl_wal) -> repl_result {
    boundary("repl_wal_sync", || {
        // SAFETY: the caller's contract.
        let wal = unsafe { arg_ref(wal.cast_const(), &"wal")? };
        wal.get()?.sync()?;
        Ok(())
    })
}

/// Writes and (unless durability is `REPL_DURABILITY_NONE`) fdatasyncs what is pending, then
/// closes the WAL. The handle stays allocated: release it with `repl_wal_free`. Every later
/// call on it, a second close included, returns `REPL_ERR_HANDLE_CLOSED`; so do iterators
/// created from it. The directory is unlocked once calls running concurrently have returned and
/// every iterator from this handle has been freed.
///
/// The WAL is closed even when this returns an error (the error says what could not be
/// written).
///
/// Thread safety: any thread; calls running concurrently on other threads either complete or
/// fail with `REPL_ERR_HANDLE_CLOSED`.
///
/// # Safety
/// `wal` must be NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn repl_wal_close(wal: *mut repl_wal) -> repl_result {
    boundary("repl_wal_close", || {
        // SAFETY: the caller's contract.
        let wal = unsafe { arg_ref(wal.cast_const(), &"wal")? };
        let taken = wal.slot().take().ok_or_else(closed)?;
        taken.close()?;
        Ok(())
    })
}

/// Releases a handle from `repl_wal_open`, closing the WAL first if it is still open. NULL is
/// accepted and ignored. An error from that implicit close cannot be returned; it is recorded
/// for `repl_last_error_detail` (call `repl_wal_close` first to see it).
///
/// Thread safety: must be the last call on the handle; no other thread may be using it.
///
/// # Safety
/// `wal` must be NULL or a handle from `repl_wal_open` that has not been freed.
#[no_mangle]
pub unsafe extern "C" fn repl_wal_free(wal: *mut repl_wal) {
    let _ = boundary("repl_wal_free", || {
        if wal.is_null() {
            return Ok(());
        }
        // SAFETY: the caller's contract: a live handle we allocated with Box::into_raw.
        let wal = unsafe { Box::from_raw(wal) };
        let taken = wal.slot().take();
        if let Some(open) = taken {
            open.close()?;
        }
        Ok(())
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_options_come_from_core_and_convert_back() {
        let core = WalOptions::new("/tmp/x");
        let c = options_to_c(&core);
        let dir = "/tmp/x";
        let c = repl_wal_options {
            dir: dir.as_ptr(),
            dir_len: dir.len(),
            ..c
        };
        assert_eq!(options_from_c(&c).unwrap(), core);
    }

    #[test]
    fn unknown_enum_values_are_invalid_options() {
        let dir = "/tmp/x";
        let base = repl_wal_options {
            dir: dir.as_ptr(),
            dir_len: dir.len(),
            ..options_to_c(&WalOptions::new(""))
        };
        for bad in [
            repl_wal_options {
                durability: 3,
                ..base
            },
            repl_wal_options {
                recovery_mode: 9,
                ..base
            },
            repl_wal_options { dir_len: 0, ..base },
        ] {
            let e = options_from_c(&bad).unwrap_err();
            assert_eq!(
                e.code,
                repl_result::REPL_ERR_WAL_INVALID_OPTIONS,
                "{}",
                e.detail
            );
        }
        let interval = repl_wal_options {
            durability: repl_durability::REPL_DURABILITY_INTERVAL as u32,
            sync_interval_ms: 25,
            ..base
        };
        assert_eq!(
            options_from_c(&interval).unwrap().durability,
            Durability::Interval(Duration::from_millis(25))
        );
    }
}
