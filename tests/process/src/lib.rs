//! Shared by the crash child and the test that kills it: the deterministic content of every
//! record, so the checker can tell a fully written record from a damaged one by itself.

use replication_core::wal::{NewRecord, Operation};
use replication_core::HlcTimestamp;

/// Document id of the `seq`-th record of writer `writer` in crash round `round`.
pub fn doc_id(round: u32, writer: u32, seq: u64) -> String {
    format!("r{round}-w{writer}-{seq}")
}

/// Payload for a document id: length and bytes derived from the id, so any mix-up or partial
/// write shows as a mismatch.
pub fn payload_for(doc_id: &str) -> Vec<u8> {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in doc_id.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    let len = 16 + (h % 2000) as usize;
    (0..len)
        .map(|i| {
            h ^= h << 13;
            h ^= h >> 7;
            h ^= h << 17;
            // Mostly text-like bytes so that zstd frames occur too.
            b"abcdefghij {}\":,0123456789"[(h as usize + i) % 26]
        })
        .collect()
}

pub fn record(round: u32, writer: u32, seq: u64) -> NewRecord {
    let id = doc_id(round, writer, seq);
    NewRecord {
        term: round as u64,
        hlc: HlcTimestamp(seq),
        origin: writer as u64,
        op: Operation::Insert,
        collection: "crash".into(),
        payload: payload_for(&id).into(),
        doc_id: id.into(),
        txn_id: None,
    }
}
