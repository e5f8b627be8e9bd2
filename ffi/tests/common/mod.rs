//! Helpers shared by the ffi integration tests (`mod common;` in each test file): the
//! last-error detail, `ok`, configuration and record construction, and forming a single-voter
//! cluster.

// Every test file is its own crate and uses only some of these helpers.
#![allow(dead_code)]

use std::ptr;
use std::time::{Duration, Instant};

use replication::*;

pub fn last_detail() -> String {
    let mut buf = vec![0 as std::ffi::c_char; 4096];
    let mut len = 0usize;
    // SAFETY: valid buffer and out-pointer.
    let rc = unsafe { repl_last_error_detail(buf.as_mut_ptr(), buf.len(), &mut len) };
    assert_eq!(rc, repl_result::REPL_OK);
    buf[..len].iter().map(|&c| c as u8 as char).collect()
}

pub fn ok(rc: repl_result) {
    assert_eq!(rc, repl_result::REPL_OK, "{}", last_detail());
}

/// Parses `toml` into a configuration handle (free it with `repl_config_free`).
pub fn parse_config(toml: &str) -> *mut repl_config {
    let mut cfg = ptr::null_mut();
    // SAFETY: valid text and out-pointer.
    ok(unsafe { repl_config_from_toml(toml.as_ptr(), toml.len(), &mut cfg) });
    cfg
}

/// An insert of `doc` = `payload` into collection "c"; it borrows both.
pub fn record<'a>(doc: &'a str, payload: &'a [u8]) -> repl_record {
    repl_record {
        term: 0,
        hlc: 0,
        origin: 0,
        op: repl_operation::REPL_OP_INSERT as u8,
        collection: b"c".as_ptr(),
        collection_len: 1,
        doc_id: doc.as_ptr(),
        doc_id_len: doc.len(),
        has_txn_id: false,
        txn_id: 0,
        payload: payload.as_ptr(),
        payload_len: payload.len(),
    }
}

/// The address `node` listens on.
///
/// # Safety
/// `node` must be a live handle.
pub unsafe fn local_addr(node: *mut repl_node) -> String {
    let mut addr = [0 as std::ffi::c_char; 64];
    let mut len = 0;
    // SAFETY: `node` is live; buffer and out-pointer are valid.
    unsafe {
        ok(repl_node_local_addr(
            node,
            addr.as_mut_ptr(),
            addr.len(),
            &mut len,
        ))
    };
    addr[..len].iter().map(|&c| c as u8 as char).collect()
}

/// Forms a single-voter cluster of `node` (node 1, at `addr`) and waits for it to lead.
///
/// # Safety
/// `node` must be a live handle.
pub unsafe fn initialize_and_lead(node: *mut repl_node, addr: &str) {
    let member = repl_member {
        node_id: 1,
        address: addr.as_ptr(),
        address_len: addr.len(),
    };
    // SAFETY (whole function): `node` is live; every pointer is valid.
    unsafe {
        ok(repl_node_initialize(node, &member, 1));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut role = u32::MAX;
            ok(repl_node_role(node, &mut role));
            if role == repl_role::REPL_ROLE_LEADER as u32 {
                break;
            }
            assert!(Instant::now() < deadline, "no leader");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
