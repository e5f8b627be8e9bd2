//! `repl_node` driven from Rust the way C calls it: a single-voter cluster with the built-in
//! store (start, initialize, append, read, status, shutdown, closed handle), and the error
//! contract (NULL pointers, missing node key, bad dev-material ids). tests/c/cluster.c and
//! tests/cpp/cluster_test.cpp drive 3-node clusters over mutual TLS.

use std::ptr;

use replication::*;

mod common;
use common::{initialize_and_lead, last_detail, local_addr, ok, parse_config, record};

#[test]
fn single_node_with_the_builtin_store() {
    let dir = tempfile::tempdir().unwrap();
    let tls = dir.path().join("tls");
    let tls_s = tls.to_str().unwrap();
    // SAFETY: valid text and id array.
    ok(unsafe { repl_dev_cluster_materials(tls_s.as_ptr(), tls_s.len(), [1u64].as_ptr(), 1) });
    for f in [
        "ca.pem",
        "node-1.pem",
        "node-1.key",
        "node-1.ed25519",
        "node-1.pub",
    ] {
        assert!(tls.join(f).exists(), "{f} missing");
    }
    let base = format!(
        "node_id = 1\nlisten_address = \"127.0.0.1:0\"\nheartbeat_interval_ms = 50\n\
         election_timeout_min_ms = 150\nelection_timeout_max_ms = 300\n\
         wal_directory = \"{}\"\ncert_path = \"{tls_s}/node-1.pem\"\n\
         key_path = \"{tls_s}/node-1.key\"\nca_path = \"{tls_s}/ca.pem\"\n",
        dir.path().join("wal").display()
    );

    // Without node_key_path the node does not start, and `out` is left alone.
    let cfg = parse_config(&base);
    let mut node = ptr::null_mut();
    // SAFETY: live config, NULL callback, valid out-pointer.
    let rc = unsafe { repl_node_start(cfg, None, ptr::null_mut(), &mut node) };
    assert_eq!(rc, repl_result::REPL_ERR_CONFIG_INVALID);
    assert!(last_detail().contains("node_key_path"), "{}", last_detail());
    assert!(node.is_null());
    // SAFETY: freed once.
    unsafe { repl_config_free(cfg) };

    let cfg = parse_config(&format!(
        "{base}node_key_path = \"{tls_s}/node-1.ed25519\"\n"
    ));
    // SAFETY: as above.
    ok(unsafe { repl_node_start(cfg, None, ptr::null_mut(), &mut node) });
    // SAFETY: freed once; the node keeps its own copy.
    unsafe { repl_config_free(cfg) };

    // SAFETY (whole block): `node` is live until repl_node_free; every pointer is valid.
    unsafe {
        let addr = local_addr(node);
        assert!(
            addr.starts_with("127.0.0.1:") && !addr.ends_with(":0"),
            "{addr}"
        );
        initialize_and_lead(node, &addr);

        let mut lsn = 0;
        let rec = record("d1", b"hello");
        ok(repl_node_append(node, &rec, REPL_MODE_DEFAULT, &mut lsn));
        assert!(lsn > 0);
        ok(repl_node_wait_for_lsn(node, lsn, 5000));
        let mut buf = [0u8; 16];
        let (mut n, mut found) = (0usize, false);
        let linearizable = repl_read_consistency::REPL_READ_LINEARIZABLE as u32;
        ok(repl_node_read(
            node,
            b"c".as_ptr(),
            1,
            b"d1".as_ptr(),
            2,
            linearizable,
            0,
            buf.as_mut_ptr(),
            buf.len(),
            &mut n,
            &mut found,
        ));
        assert!(found);
        assert_eq!(&buf[..n], b"hello");

        let mut info = repl_node_info::default();
        ok(repl_node_status(node, &mut info));
        assert_eq!((info.node_id, info.leader, info.voter_count), (1, 1, 1));
        assert!(info.applied_lsn >= lsn);

        // NULL checks and outputs left alone.
        let mut out = 42u64;
        let null = repl_result::REPL_ERR_NULL_ARGUMENT;
        assert_eq!(repl_node_append(node, ptr::null(), 0, &mut out), null);
        assert_eq!(repl_node_leader(ptr::null(), &mut out), null);
        assert_eq!(repl_node_start_election(ptr::null_mut(), &mut out), null);
        assert_eq!(out, 42);

        ok(repl_node_shutdown(node));
        let closed = repl_result::REPL_ERR_HANDLE_CLOSED;
        assert_eq!(repl_node_shutdown(node), closed);
        assert_eq!(
            repl_node_append(node, &rec, REPL_MODE_DEFAULT, &mut out),
            closed
        );
        assert_eq!(repl_node_set_mode(node, 0), closed);
        let mut role = 0;
        ok(repl_node_role(node, &mut role));
        assert_eq!(role, repl_role::REPL_ROLE_SHUTDOWN as u32);
        repl_node_free(node);
    }
}

#[test]
fn dev_materials_refuse_bad_ids() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    // SAFETY: valid text and id arrays.
    unsafe {
        for ids in [&[0u64][..], &[3, 3]] {
            let rc = repl_dev_cluster_materials(d.as_ptr(), d.len(), ids.as_ptr(), ids.len());
            assert_eq!(rc, repl_result::REPL_ERR_INVALID_ARGUMENT);
        }
        let rc = repl_dev_cluster_materials(d.as_ptr(), d.len(), ptr::null(), 1);
        assert_eq!(rc, repl_result::REPL_ERR_NULL_ARGUMENT);
    }
}
