//! The logical WAL record and its byte encoding inside a frame body.

use std::sync::Arc;

use bytes::Bytes;

use crate::clock::HlcTimestamp;
use crate::{Lsn, NodeId};

/// What a record does to the host's data. The numeric codes are part of the on-disk format and
/// are never reused; `Other` keeps codes this version does not know, so newer writers'
/// records survive a round trip through an older reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    Insert,
    Update,
    Delete,
    Ddl,
    /// Any other code (5..=255). Code 0 is reserved as invalid.
    Other(u8),
}

impl Operation {
    pub fn code(self) -> u8 {
        match self {
            Operation::Insert => 1,
            Operation::Update => 2,
            Operation::Delete => 3,
            Operation::Ddl => 4,
            Operation::Other(c) => c,
        }
    }

    /// Decodes a code; `None` for the reserved code 0.
    pub fn from_code(code: u8) -> Option<Operation> {
        Some(match code {
            0 => return None,
            1 => Operation::Insert,
            2 => Operation::Update,
            3 => Operation::Delete,
            4 => Operation::Ddl,
            c => Operation::Other(c),
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Operation::Insert => "INSERT",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
            Operation::Ddl => "DDL",
            Operation::Other(_) => "OTHER",
        }
    }
}

/// A record as handed to `Wal::append`: everything but the LSN, which the WAL assigns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRecord {
    pub term: u64,
    pub hlc: HlcTimestamp,
    pub origin: NodeId,
    pub op: Operation,
    /// Shared rather than owned, like the payload: the Raft log store turns every entry into a
    /// record, and sharing the entry's names costs no allocation or copy.
    pub collection: Arc<str>,
    pub doc_id: Arc<str>,
    pub txn_id: Option<u64>,
    pub payload: Bytes,
}

impl NewRecord {
    /// A record with term 0, no HLC, origin 0 and no transaction: handy for tests and tools.
    pub fn new(
        op: Operation,
        collection: impl Into<Arc<str>>,
        doc_id: impl Into<Arc<str>>,
        payload: impl Into<Bytes>,
    ) -> Self {
        NewRecord {
            term: 0,
            hlc: HlcTimestamp::default(),
            origin: 0,
            op,
            collection: collection.into(),
            doc_id: doc_id.into(),
            txn_id: None,
            payload: payload.into(),
        }
    }

    pub fn with_lsn(self, lsn: Lsn) -> Record {
        Record {
            lsn,
            term: self.term,
            hlc: self.hlc,
            origin: self.origin,
            op: self.op,
            collection: self.collection.to_string(),
            doc_id: self.doc_id.to_string(),
            txn_id: self.txn_id,
            payload: self.payload,
        }
    }
}

/// A record read back from the WAL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub lsn: Lsn,
    pub term: u64,
    pub hlc: HlcTimestamp,
    pub origin: NodeId,
    pub op: Operation,
    pub collection: String,
    pub doc_id: String,
    pub txn_id: Option<u64>,
    /// Shares the decoded frame buffer: no copy per record.
    pub payload: Bytes,
}

impl Record {
    pub fn into_new(self) -> NewRecord {
        NewRecord {
            term: self.term,
            hlc: self.hlc,
            origin: self.origin,
            op: self.op,
            collection: self.collection.into(),
            doc_id: self.doc_id.into(),
            txn_id: self.txn_id,
            payload: self.payload,
        }
    }
}

/// Largest payload one record may carry. Frames store lengths as u32; keeping a record well below
/// that leaves room for a batch and keeps a corrupt length from asking for gigabytes.
pub const MAX_PAYLOAD_BYTES: usize = 256 << 20;

const FIXED_LEN: usize = 34;
const FLAG_HAS_TXN: u8 = 1;

/// Checks the limits the encoding imposes, so `encode_into` cannot fail later under a lock.
pub(crate) fn validate(rec: &NewRecord) -> Result<(), String> {
    if rec.collection.len() > u16::MAX as usize {
        return Err(format!(
            "collection name is {} bytes; the limit is {}",
            rec.collection.len(),
            u16::MAX
        ));
    }
    if rec.doc_id.len() > u16::MAX as usize {
        return Err(format!(
            "document id is {} bytes; the limit is {}",
            rec.doc_id.len(),
            u16::MAX
        ));
    }
    if rec.payload.len() > MAX_PAYLOAD_BYTES {
        return Err(format!(
            "payload is {} bytes; the limit is {MAX_PAYLOAD_BYTES}",
            rec.payload.len()
        ));
    }
    if rec.op.code() == 0 {
        return Err("operation code 0 is reserved".into());
    }
    Ok(())
}

pub(crate) fn encoded_len(rec: &NewRecord) -> usize {
    FIXED_LEN
        + if rec.txn_id.is_some() { 8 } else { 0 }
        + rec.collection.len()
        + rec.doc_id.len()
        + rec.payload.len()
}

// Format: record (little-endian; the LSN is implied by the frame's first LSN + position)
//   0  u64 term
//   8  u64 hlc
//  16  u64 origin node id
//  24  u8  operation code
//  25  u8  flags (bit 0: transaction id present)
//  26  u16 collection length C
//  28  u16 document id length D
//  30  u32 payload length P
//  34  [u64 transaction id, only when flag bit 0 is set]
//  ..  C bytes collection (UTF-8), D bytes document id (UTF-8), P bytes payload
pub(crate) fn encode_into(rec: &NewRecord, out: &mut Vec<u8>) {
    out.extend_from_slice(&rec.term.to_le_bytes());
    out.extend_from_slice(&rec.hlc.0.to_le_bytes());
    out.extend_from_slice(&rec.origin.to_le_bytes());
    out.push(rec.op.code());
    out.push(if rec.txn_id.is_some() {
        FLAG_HAS_TXN
    } else {
        0
    });
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

/// Decodes `count` records from a frame body. The frame checksum has already passed, so a
/// failure here means a writer bug or a deliberately forged file; the error says which field.
pub(crate) fn decode_body(
    body: &Bytes,
    first_lsn: Lsn,
    count: u32,
    out: &mut Vec<Record>,
) -> Result<(), String> {
    let mut pos = 0usize;
    let buf = &body[..];
    for i in 0..count as u64 {
        let fixed = buf
            .get(pos..pos + FIXED_LEN)
            .ok_or_else(|| format!("record {i} header runs past the frame body"))?;
        let u64_at = |o: usize| u64::from_le_bytes(fixed[o..o + 8].try_into().unwrap());
        let term = u64_at(0);
        let hlc = u64_at(8);
        let origin = u64_at(16);
        let op = Operation::from_code(fixed[24])
            .ok_or_else(|| format!("record {i} has reserved operation code 0"))?;
        let flags = fixed[25];
        let clen = u16::from_le_bytes([fixed[26], fixed[27]]) as usize;
        let dlen = u16::from_le_bytes([fixed[28], fixed[29]]) as usize;
        let plen = u32::from_le_bytes(fixed[30..34].try_into().unwrap()) as usize;
        pos += FIXED_LEN;
        let txn_id = if flags & FLAG_HAS_TXN != 0 {
            let b = buf
                .get(pos..pos + 8)
                .ok_or_else(|| format!("record {i} transaction id runs past the frame body"))?;
            pos += 8;
            Some(u64::from_le_bytes(b.try_into().unwrap()))
        } else {
            None
        };
        let end = pos + clen + dlen + plen;
        if end > buf.len() {
            return Err(format!("record {i} fields run past the frame body"));
        }
        let collection = std::str::from_utf8(&buf[pos..pos + clen])
            .map_err(|_| format!("record {i} collection is not UTF-8"))?
            .to_owned();
        pos += clen;
        let doc_id = std::str::from_utf8(&buf[pos..pos + dlen])
            .map_err(|_| format!("record {i} document id is not UTF-8"))?
            .to_owned();
        pos += dlen;
        let payload = body.slice(pos..pos + plen);
        pos += plen;
        out.push(Record {
            lsn: first_lsn + i,
            term,
            hlc: HlcTimestamp(hlc),
            origin,
            op,
            collection,
            doc_id,
            txn_id,
            payload,
        });
    }
    if pos != buf.len() {
        return Err(format!(
            "frame body has {} trailing bytes after {count} records",
            buf.len() - pos
        ));
    }
    Ok(())
}
