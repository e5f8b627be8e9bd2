//! The C ABI driven from Rust, the way C calls it: round trip through raw pointers, outputs
//! left alone on failure, and `repl_wal_close` racing with appends on other threads.
//! (tests/c and tests/cpp drive the same functions from real C and C++ programs.)

use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use replication::*;

mod common;
use common::{last_detail, ok};

fn options(dir: &std::path::Path) -> (repl_wal_options, String) {
    let dir = dir.to_str().expect("temp dir is UTF-8").to_owned();
    let mut o = std::mem::MaybeUninit::<repl_wal_options>::uninit();
    // SAFETY: valid out-pointer; initialised on success, which `ok` asserts.
    let mut o = unsafe {
        ok(repl_wal_options_default(o.as_mut_ptr()));
        o.assume_init()
    };
    o.durability = repl_durability::REPL_DURABILITY_NONE as u32;
    o.dir = dir.as_ptr();
    o.dir_len = dir.len();
    (o, dir) // the String keeps `o.dir` alive
}

fn open(o: &repl_wal_options) -> *mut repl_wal {
    let mut w = ptr::null_mut();
    // SAFETY: valid options and out-pointer.
    ok(unsafe { repl_wal_open(o, &mut w) });
    w
}

struct Rec {
    collection: String,
    doc_id: String,
    payload: Vec<u8>,
    i: u64,
}

impl Rec {
    fn new(i: u64) -> Rec {
        Rec {
            collection: format!("c{}", i % 3),
            doc_id: format!("d{i}"),
            payload: (0..(i % 40) as u8).collect(),
            i,
        }
    }

    fn c(&self) -> repl_record {
        repl_record {
            term: self.i / 10,
            hlc: 1000 + self.i,
            origin: 7,
            op: (1 + self.i % 4) as u8,
            collection: self.collection.as_ptr(),
            collection_len: self.collection.len(),
            doc_id: self.doc_id.as_ptr(),
            doc_id_len: self.doc_id.len(),
            has_txn_id: self.i.is_multiple_of(2),
            txn_id: if self.i.is_multiple_of(2) {
                self.i * 11
            } else {
                0
            },
            payload: if self.payload.is_empty() {
                ptr::null()
            } else {
                self.payload.as_ptr()
            },
            payload_len: self.payload.len(),
        }
    }
}

/// # Safety
/// `p` points to `len` readable bytes (or `len` is 0).
unsafe fn bytes<'a>(p: *const u8, len: usize) -> &'a [u8] {
    if len == 0 {
        &[]
    } else {
        // SAFETY: the caller's contract.
        unsafe { std::slice::from_raw_parts(p, len) }
    }
}

#[test]
fn round_trip_through_the_abi() {
    let dir = tempfile::tempdir().unwrap();
    let (o, _keep) = options(dir.path());
    let w = open(&o);
    for i in 1..=300 {
        let r = Rec::new(i);
        let mut lsn = 0;
        // SAFETY: live handle, valid record and out-pointer.
        ok(unsafe { repl_wal_append(w, &r.c(), &mut lsn) });
        assert_eq!(lsn, i);
    }
    let batch: Vec<Rec> = (301..=400).map(Rec::new).collect();
    let recs: Vec<repl_record> = batch.iter().map(Rec::c).collect();
    let (mut first, mut last) = (0, 0);
    // SAFETY: live handle, valid array and out-pointers.
    ok(unsafe { repl_wal_append_batch(w, recs.as_ptr(), recs.len(), &mut first, &mut last) });
    assert_eq!((first, last), (301, 400));

    let mut it = ptr::null_mut();
    // SAFETY: live handle and out-pointer.
    ok(unsafe { repl_wal_read_from(w, 1, &mut it) });
    let mut n = 0;
    loop {
        let mut view = std::mem::MaybeUninit::<repl_record_view>::uninit();
        let mut has = false;
        // SAFETY: live iterator and out-pointers.
        ok(unsafe { repl_wal_iter_next(it, view.as_mut_ptr(), &mut has) });
        // SAFETY: written on success.
        let view = unsafe { view.assume_init() };
        if !has {
            break;
        }
        n += 1;
        let want = Rec::new(n);
        let wc = want.c();
        let r = view.record;
        assert_eq!(view.lsn, n);
        assert_eq!(
            (r.term, r.hlc, r.origin, r.op, r.has_txn_id, r.txn_id),
            (wc.term, wc.hlc, wc.origin, wc.op, wc.has_txn_id, wc.txn_id)
        );
        // SAFETY: the view's pointers are valid until the next call on the iterator.
        unsafe {
            assert_eq!(
                bytes(r.collection, r.collection_len),
                want.collection.as_bytes()
            );
            assert_eq!(bytes(r.doc_id, r.doc_id_len), want.doc_id.as_bytes());
            assert_eq!(bytes(r.payload, r.payload_len), &want.payload[..]);
        }
    }
    assert_eq!(n, 400);
    // SAFETY: live handles, freed once.
    unsafe {
        repl_wal_iter_free(it);
        ok(repl_wal_close(w));
        repl_wal_free(w);
    }
}

#[test]
fn failures_leave_outputs_alone_and_explain_themselves() {
    let dir = tempfile::tempdir().unwrap();
    let (o, _keep) = options(dir.path());
    let w = open(&o);
    let r = Rec::new(1);
    let mut bad = r.c();
    bad.doc_id = b"\xe2\x82".as_ptr(); // truncated 3-byte sequence
    bad.doc_id_len = 2;
    let mut lsn = 42;
    // SAFETY: live handle, valid record and out-pointer.
    let rc = unsafe { repl_wal_append(w, &bad, &mut lsn) };
    assert_eq!(rc, repl_result::REPL_ERR_INVALID_UTF8);
    assert_eq!(lsn, 42);
    let detail = last_detail();
    assert!(
        detail.starts_with("repl_wal_append: argument `record.doc_id` is not valid UTF-8"),
        "{detail}"
    );

    let mut first = 5;
    let mut it = ptr::null_mut();
    // SAFETY: live handle and out-pointers.
    unsafe {
        assert_eq!(
            repl_wal_read_from(w, 2, &mut it),
            repl_result::REPL_ERR_WAL_LSN_OUT_OF_RANGE
        );
        assert!(it.is_null());
        assert_eq!(
            repl_wal_first_lsn(w, ptr::null_mut()),
            repl_result::REPL_ERR_NULL_ARGUMENT
        );
        ok(repl_wal_first_lsn(w, &mut first));
        assert_eq!(first, 1);
        repl_wal_free(w); // closes
    }
}

#[test]
fn close_racing_with_appends_never_loses_an_acknowledged_record() {
    let dir = tempfile::tempdir().unwrap();
    let (o, _keep) = options(dir.path());
    struct Handle(*mut repl_wal);
    // SAFETY: repl_wal is documented as usable from many threads at once.
    unsafe impl Send for Handle {}
    unsafe impl Sync for Handle {}
    let w = Arc::new(Handle(open(&o)));
    let started = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (w, started) = (Arc::clone(&w), Arc::clone(&started));
            std::thread::spawn(move || {
                let mut acked = Vec::new();
                for k in 0.. {
                    let r = Rec::new(t * 1_000_000 + k + 1);
                    let mut lsn = 0;
                    // SAFETY: the handle is live until every thread has been joined.
                    let rc = unsafe { repl_wal_append(w.0, &r.c(), &mut lsn) };
                    started.store(true, Ordering::Release);
                    match rc {
                        repl_result::REPL_OK => acked.push(lsn),
                        repl_result::REPL_ERR_HANDLE_CLOSED => return acked,
                        other => panic!("append returned {other:?}: {}", last_detail()),
                    }
                }
                unreachable!()
            })
        })
        .collect();
    while !started.load(Ordering::Acquire) {
        std::thread::yield_now();
    }
    std::thread::sleep(std::time::Duration::from_millis(20));
    // SAFETY: live handle.
    ok(unsafe { repl_wal_close(w.0) });
    let mut acked: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    acked.sort_unstable();
    assert!(!acked.is_empty());
    // SAFETY: every other thread is done; freed once.
    unsafe { repl_wal_free(w.0) };

    // Every acknowledged append survived the close, and nothing else was appended.
    let w = open(&o);
    let mut last = 0;
    // SAFETY: live handle and out-pointer.
    ok(unsafe { repl_wal_last_lsn(w, &mut last) });
    assert_eq!(acked, (1..=last).collect::<Vec<_>>());
    // SAFETY: freed once.
    unsafe { repl_wal_free(w) };
}
