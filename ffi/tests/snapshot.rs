//! Snapshot callbacks driven from Rust the way C calls them (`repl_node_start_with_snapshots`,
//! `repl_snapshot_write`, `repl_node_trigger_snapshot`) on a single-voter cluster: the host's
//! snapshot is taken, persisted and restored on restart; NULL arguments are refused; a failing
//! snapshot or restore callback surfaces as `REPL_ERR_CLUSTER_STORAGE` with its code in the
//! detail. tests/c/snapshot.c and tests/cpp/snapshot_test.cpp make a 3-node cluster catch up a
//! follower through a snapshot.

use std::collections::BTreeMap;
use std::ffi::c_void;
use std::path::Path;
use std::ptr;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use replication::*;

mod common;
use common::{initialize_and_lead, last_detail, local_addr, ok, parse_config, record};

/// The host's state machine: documents by id, plus what the callbacks saw.
#[derive(Default)]
struct Host {
    docs: Mutex<BTreeMap<String, Vec<u8>>>,
    snapshots: AtomicUsize,
    restores: AtomicUsize,
    /// Non-zero: the snapshot / restore callback returns it.
    fail_snapshot: AtomicI32,
    fail_restore: AtomicI32,
}

unsafe extern "C" fn on_apply(userdata: *mut c_void, e: *const repl_applied_entry) {
    // SAFETY: userdata is the `Host` the test passed; `e` is valid during the call.
    let (host, e) = unsafe { (&*(userdata as *const Host), &*e) };
    // SAFETY: the entry's pointers are valid for their lengths during the call.
    let (doc, payload) = unsafe {
        (
            std::slice::from_raw_parts(e.doc_id, e.doc_id_len),
            std::slice::from_raw_parts(e.payload, e.payload_len),
        )
    };
    host.docs
        .lock()
        .unwrap()
        .insert(String::from_utf8(doc.to_vec()).unwrap(), payload.to_vec());
}

// Snapshot format of this host: per document, u32 id length, id, u32 payload length, payload.
unsafe extern "C" fn on_snapshot(userdata: *mut c_void, w: *mut repl_snapshot_writer) -> i32 {
    // SAFETY: userdata is the `Host` the test passed.
    let host = unsafe { &*(userdata as *const Host) };
    host.snapshots.fetch_add(1, Ordering::SeqCst);
    let fail = host.fail_snapshot.load(Ordering::SeqCst);
    if fail != 0 {
        return fail;
    }
    for (doc, payload) in host.docs.lock().unwrap().iter() {
        for part in [
            &(doc.len() as u32).to_le_bytes()[..],
            doc.as_bytes(),
            &(payload.len() as u32).to_le_bytes()[..],
            payload,
        ] {
            // SAFETY: `w` is the live writer of this call; `part` is readable.
            if unsafe { repl_snapshot_write(w, part.as_ptr(), part.len()) } != repl_result::REPL_OK
            {
                return -1;
            }
        }
    }
    0
}

unsafe extern "C" fn on_restore(userdata: *mut c_void, data: *const u8, len: usize) -> i32 {
    // SAFETY: userdata is the `Host` the test passed; `data` is readable for `len` bytes.
    let (host, mut data) = unsafe {
        (
            &*(userdata as *const Host),
            std::slice::from_raw_parts(data, len),
        )
    };
    host.restores.fetch_add(1, Ordering::SeqCst);
    let fail = host.fail_restore.load(Ordering::SeqCst);
    if fail != 0 {
        return fail;
    }
    let take = |data: &mut &[u8]| {
        let n = u32::from_le_bytes(data[..4].try_into().unwrap()) as usize;
        let v = data[4..4 + n].to_vec();
        *data = &data[4 + n..];
        v
    };
    let mut docs = BTreeMap::new();
    while !data.is_empty() {
        let doc = String::from_utf8(take(&mut data)).unwrap();
        docs.insert(doc, take(&mut data));
    }
    *host.docs.lock().unwrap() = docs;
    0
}

fn config(dir: &Path) -> *mut repl_config {
    let tls = dir.join("tls");
    let tls_s = tls.to_str().unwrap();
    if !tls.exists() {
        // SAFETY: valid text and id array.
        ok(unsafe { repl_dev_cluster_materials(tls_s.as_ptr(), tls_s.len(), [1u64].as_ptr(), 1) });
    }
    let toml = format!(
        "node_id = 1\nlisten_address = \"127.0.0.1:0\"\nheartbeat_interval_ms = 50\n\
         election_timeout_min_ms = 150\nelection_timeout_max_ms = 300\n\
         wal_directory = \"{}\"\ncert_path = \"{tls_s}/node-1.pem\"\n\
         key_path = \"{tls_s}/node-1.key\"\nca_path = \"{tls_s}/ca.pem\"\n\
         node_key_path = \"{tls_s}/node-1.ed25519\"\n",
        dir.join("wal").display()
    );
    parse_config(&toml)
}

/// Starts node 1 with the snapshot callbacks on `host`.
fn start(dir: &Path, host: &Host) -> Result<*mut repl_node, repl_result> {
    let cfg = config(dir);
    let mut node = ptr::null_mut();
    // SAFETY: live config, callbacks with their contracts, `host` outlives the node.
    let rc = unsafe {
        repl_node_start_with_snapshots(
            cfg,
            Some(on_apply),
            Some(on_snapshot),
            Some(on_restore),
            host as *const Host as *mut c_void,
            &mut node,
        )
    };
    // SAFETY: freed once; the node keeps its own copy.
    unsafe { repl_config_free(cfg) };
    if rc == repl_result::REPL_OK {
        Ok(node)
    } else {
        assert!(node.is_null());
        Err(rc)
    }
}

/// Forms a single-voter cluster of `node` and waits for it to lead.
unsafe fn lead(node: *mut repl_node) {
    // SAFETY: `node` is live (the caller's contract).
    unsafe { initialize_and_lead(node, &local_addr(node)) }
}

/// Appends `doc` = `payload` and waits until it is applied; returns its LSN.
unsafe fn write(node: *mut repl_node, doc: &str, payload: &str) -> u64 {
    let rec = record(doc, payload.as_bytes());
    let mut lsn = 0;
    // SAFETY: `node` is live; the record's pointers are valid.
    unsafe {
        ok(repl_node_append(node, &rec, REPL_MODE_DEFAULT, &mut lsn));
        ok(repl_node_wait_for_lsn(node, lsn, 5000));
    }
    lsn
}

#[test]
fn null_arguments_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let host = Host::default();
    let ud = &host as *const Host as *mut c_void;
    let null = repl_result::REPL_ERR_NULL_ARGUMENT;
    let mut node = ptr::null_mut();
    // SAFETY: every non-NULL pointer is valid; the NULL ones are what is tested.
    unsafe {
        let a: repl_apply_fn = Some(on_apply);
        let s: repl_snapshot_fn = Some(on_snapshot);
        let r: repl_restore_fn = Some(on_restore);
        let start = |cfg: *const repl_config,
                     a: repl_apply_fn,
                     s: repl_snapshot_fn,
                     r: repl_restore_fn,
                     out: *mut *mut repl_node| {
            repl_node_start_with_snapshots(cfg, a, s, r, ud, out)
        };
        assert_eq!(start(ptr::null(), a, s, r, &mut node), null);
        assert_eq!(start(cfg, a, s, r, ptr::null_mut()), null);
        for (a, s, r, name) in [
            (None, s, r, "on_apply"),
            (a, None, r, "on_snapshot"),
            (a, s, None, "on_restore"),
        ] {
            assert_eq!(start(cfg, a, s, r, &mut node), null);
            assert!(last_detail().contains(name), "{}", last_detail());
        }
        assert!(node.is_null());

        let mut out = 9u64;
        assert_eq!(
            repl_node_trigger_snapshot(ptr::null_mut(), 1000, &mut out),
            null
        );
        assert_eq!(out, 9);
        assert_eq!(repl_snapshot_write(ptr::null_mut(), b"x".as_ptr(), 1), null);
        repl_config_free(cfg);
    }
    assert_eq!(host.snapshots.load(Ordering::SeqCst), 0);
}

#[test]
fn snapshot_is_taken_persisted_and_restored_on_restart() {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::default();
    let node = start(dir.path(), &host).unwrap();
    // SAFETY (whole block): `node` is live until freed; every pointer is valid.
    unsafe {
        let mut out = 0u64;
        assert_eq!(
            repl_node_trigger_snapshot(node, 1000, ptr::null_mut()),
            repl_result::REPL_ERR_NULL_ARGUMENT
        );
        lead(node);
        let mut last = 0;
        for i in 0..10 {
            last = write(node, &format!("d{i}"), &format!("v{i}"));
        }
        ok(repl_node_trigger_snapshot(node, 10_000, &mut out));
        assert!(out >= last, "snapshot LSN {out} < last write {last}");
        assert_eq!(host.snapshots.load(Ordering::SeqCst), 1);
        // Writes after the snapshot are re-applied from the log on restart.
        write(node, "d3", "changed");
        write(node, "late", "x");
        ok(repl_node_shutdown(node));
        repl_node_free(node);
    }
    let want = host.docs.lock().unwrap().clone();
    assert_eq!(want.len(), 11);

    // A new host: the snapshot is restored during start, then the log after it applied.
    let fresh = Host::default();
    let node = start(dir.path(), &fresh).unwrap();
    assert_eq!(fresh.restores.load(Ordering::SeqCst), 1);
    let deadline = Instant::now() + Duration::from_secs(10);
    while *fresh.docs.lock().unwrap() != want {
        assert!(Instant::now() < deadline, "restarted host never matched");
        std::thread::sleep(Duration::from_millis(10));
    }
    // SAFETY: live handle, freed once.
    unsafe {
        ok(repl_node_shutdown(node));
        repl_node_free(node);
    }

    // A restore callback that fails makes the start fail with its code in the detail.
    let failing = Host::default();
    failing.fail_restore.store(7, Ordering::SeqCst);
    assert_eq!(
        start(dir.path(), &failing).unwrap_err(),
        repl_result::REPL_ERR_CLUSTER_STORAGE
    );
    let detail = last_detail();
    assert!(detail.contains("restore callback"), "{detail}");
    assert!(detail.contains("code 7"), "{detail}");
}

#[test]
fn failing_snapshot_callback_is_a_storage_error() {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::default();
    host.fail_snapshot.store(5, Ordering::SeqCst);
    let node = start(dir.path(), &host).unwrap();
    // SAFETY: `node` is live until freed; every pointer is valid.
    unsafe {
        lead(node);
        write(node, "d", "v");
        let mut out = 42u64;
        let rc = repl_node_trigger_snapshot(node, 10_000, &mut out);
        assert_eq!(
            rc,
            repl_result::REPL_ERR_CLUSTER_STORAGE,
            "{}",
            last_detail()
        );
        let detail = last_detail();
        assert!(detail.contains("snapshot callback"), "{detail}");
        assert!(detail.contains("code 5"), "{detail}");
        assert_eq!(out, 42);
        // The node stopped; shutting it down reports that or succeeds, freeing always works.
        let _ = repl_node_shutdown(node);
        repl_node_free(node);
    }
}

#[test]
fn apply_callback_alone_cannot_trigger_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::default();
    let cfg = config(dir.path());
    let mut node = ptr::null_mut();
    // SAFETY: live config, a callback with its contract, `host` outlives the node.
    unsafe {
        ok(repl_node_start(
            cfg,
            Some(on_apply),
            &host as *const Host as *mut c_void,
            &mut node,
        ));
        repl_config_free(cfg);
        lead(node);
        write(node, "d", "v");
        let mut out = 0u64;
        assert_eq!(
            repl_node_trigger_snapshot(node, 1000, &mut out),
            repl_result::REPL_ERR_INVALID_ARGUMENT
        );
        assert!(
            last_detail().contains("repl_node_start_with_snapshots"),
            "{}",
            last_detail()
        );
        ok(repl_node_shutdown(node));
        repl_node_free(node);
    }
}
