//! A stand-in for the WAL's record encoder, for the `record_encode` and zstd micro-benchmarks.
//!
//! `replication_core` keeps its encoder (`wal::record::encode_into`) and frame builder
//! (`wal::frame::encode_frame`) crate-private, so a benchmark outside the crate cannot call
//! them. This module writes the same byte layout (the `// Format: record` comment in
//! core/src/wal/record.rs) the same way (`extend_from_slice` per field into a reused `Vec`),
//! and a test below checks it byte for byte against what the WAL writes to disk, so the
//! figure cannot silently drift from the real format. If core ever exports its encoder, the
//! benchmarks should call that instead.

use replication_core::NewRecord;

/// Fixed part of an encoded record: term, hlc, origin, op, flags, three lengths.
pub const FIXED_LEN: usize = 34;

/// Encoded length of `rec`.
pub fn encoded_len(rec: &NewRecord) -> usize {
    FIXED_LEN
        + if rec.txn_id.is_some() { 8 } else { 0 }
        + rec.collection.len()
        + rec.doc_id.len()
        + rec.payload.len()
}

/// Appends `rec` to `out` in the WAL record layout (little-endian; LSN implied by position):
/// term u64, hlc u64, origin u64, op u8, flags u8 (bit 0: txn id), collection len u16,
/// doc id len u16, payload len u32, [txn id u64], collection, doc id, payload.
pub fn encode_record(rec: &NewRecord, out: &mut Vec<u8>) {
    out.extend_from_slice(&rec.term.to_le_bytes());
    out.extend_from_slice(&rec.hlc.0.to_le_bytes());
    out.extend_from_slice(&rec.origin.to_le_bytes());
    out.push(rec.op.code());
    out.push(u8::from(rec.txn_id.is_some()));
    out.extend_from_slice(&(rec.collection.len() as u16).to_le_bytes());
    out.extend_from_slice(&(rec.doc_id.len() as u16).to_le_bytes());
    out.extend_from_slice(&(rec.payload.len() as u32).to_le_bytes());
    if let Some(txn) = rec.txn_id {
        out.extend_from_slice(&txn.to_le_bytes());
    }
    out.extend_from_slice(rec.collection.as_bytes());
    out.extend_from_slice(rec.doc_id.as_bytes());
    out.extend_from_slice(&rec.payload);
}

/// Encodes a batch as the body of one uncompressed frame (what `append_batch` builds before
/// compressing and checksumming it).
pub fn encode_batch(records: &[NewRecord], out: &mut Vec<u8>) {
    out.clear();
    out.reserve(records.iter().map(encoded_len).sum());
    for r in records {
        encode_record(r, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::{compression, RecordPool, TempWal};
    use replication_core::wal::{FRAME_HEADER_LEN, SEGMENT_HEADER_LEN};
    use replication_core::Durability;

    #[test]
    fn stand_in_encoder_matches_the_bytes_the_wal_writes() {
        let pool = RecordPool::new(8, 300);
        let mut batch = pool.records()[..3].to_vec();
        batch[1].txn_id = Some(0xDEAD_BEEF);
        let base = std::env::temp_dir();
        let t = TempWal::open(&base, Durability::None, compression(false, 3)).unwrap();
        t.wal.append_batch(&batch).unwrap();
        t.wal.sync().unwrap();
        let seg = &t.wal.segment_paths().unwrap()[0];
        let file = std::fs::read(seg).unwrap();
        // The frame's length field bounds the body: an open segment runs on with zero fill
        // (written by a background thread), so the file may be longer than its frames.
        let len_at = SEGMENT_HEADER_LEN;
        let body_len = u32::from_le_bytes(file[len_at..len_at + 4].try_into().unwrap()) as usize;
        let start = SEGMENT_HEADER_LEN + FRAME_HEADER_LEN;
        let body = &file[start..start + body_len];
        let mut ours = Vec::new();
        encode_batch(&batch, &mut ours);
        assert_eq!(ours.len(), batch.iter().map(encoded_len).sum::<usize>());
        assert_eq!(body, &ours[..]);
    }
}
