//! Property tests: any batch of records, compressed or not, reads back exactly as written,
//! across reopen.

mod common;

use proptest::prelude::*;
use replication_core::wal::{Compression, NewRecord, Operation, Wal};
use replication_core::HlcTimestamp;

fn arb_record() -> impl Strategy<Value = NewRecord> {
    (
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        1u8..=255,
        ".{0,20}",
        ".{0,40}",
        proptest::option::of(any::<u64>()),
        proptest::collection::vec(any::<u8>(), 0..3000),
    )
        .prop_map(
            |(term, hlc, origin, op, collection, doc_id, txn_id, payload)| NewRecord {
                term,
                hlc: HlcTimestamp(hlc),
                origin,
                op: Operation::from_code(op).unwrap(),
                collection: collection.into(),
                doc_id: doc_id.into(),
                txn_id,
                payload: payload.into(),
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn batches_round_trip(
        batches in proptest::collection::vec(proptest::collection::vec(arb_record(), 1..8), 1..10),
        compress in any::<bool>(),
        level in 1i32..6,
        min_batch in 0usize..4096,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut o = common::opts(dir.path());
        o.segment_size_bytes = 8192;
        o.compression = Compression { enabled: compress, level, min_batch_bytes: min_batch };
        let expected: Vec<NewRecord> = batches.iter().flatten().cloned().collect();
        {
            let wal = Wal::open(o.clone()).unwrap();
            for b in &batches {
                wal.append_batch(b).unwrap();
            }
            wal.close().unwrap();
        }
        let wal = Wal::open(o).unwrap();
        let got: Vec<_> = wal.read_from(1).unwrap().map(|r| r.unwrap()).collect();
        prop_assert_eq!(got.len(), expected.len());
        for (i, (g, e)) in got.into_iter().zip(expected).enumerate() {
            prop_assert_eq!(g, e.with_lsn(i as u64 + 1));
        }
    }
}

#[test]
fn operation_codes_are_stable() {
    assert_eq!(Operation::Insert.code(), 1);
    assert_eq!(Operation::Update.code(), 2);
    assert_eq!(Operation::Delete.code(), 3);
    assert_eq!(Operation::Ddl.code(), 4);
    assert_eq!(Operation::from_code(0), None);
    assert_eq!(Operation::from_code(77), Some(Operation::Other(77)));
}
