//! Helpers shared by the WAL integration tests.
#![allow(dead_code)]

use replication_core::wal::{Compression, Durability, NewRecord, Operation, Record, WalOptions};
use replication_core::HlcTimestamp;

pub fn opts(dir: &std::path::Path) -> WalOptions {
    let mut o = WalOptions::new(dir);
    o.durability = Durability::None;
    o
}

pub fn small_segments(dir: &std::path::Path, size: u64) -> WalOptions {
    let mut o = opts(dir);
    o.segment_size_bytes = size;
    o
}

pub fn no_compression(mut o: WalOptions) -> WalOptions {
    o.compression = Compression {
        enabled: false,
        ..Compression::default()
    };
    o
}

/// A record whose every field is derived from `i`, so a reader can check it from the LSN.
pub fn rec(i: u64) -> NewRecord {
    let op = match i % 4 {
        0 => Operation::Insert,
        1 => Operation::Update,
        2 => Operation::Delete,
        _ => Operation::Ddl,
    };
    NewRecord {
        term: i / 100 + 1,
        hlc: HlcTimestamp(1_000_000 + i * 10),
        origin: i % 3 + 1,
        op,
        collection: format!("coll{}", i % 7).into(),
        doc_id: format!("doc-{i}").into(),
        txn_id: if i.is_multiple_of(5) {
            Some(i * 3)
        } else {
            None
        },
        payload: format!("payload {i} {}", "x".repeat((i % 50) as usize))
            .into_bytes()
            .into(),
    }
}

pub fn assert_rec(r: &Record, i: u64) {
    assert_eq!(r.lsn, i, "lsn");
    assert_eq!(*r, rec(i).with_lsn(i), "record {i}");
}
