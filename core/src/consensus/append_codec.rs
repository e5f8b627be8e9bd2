//! Binary encoding of AppendEntries requests and their results (frame kind
//! [`super::rpc_kinds::KIND_APPEND_STREAM`]).
//!
//! AppendEntries carries nearly every byte a cluster moves, so it has its own codec instead of
//! the JSON the rarer RPCs use: JSON turned each payload byte into a decimal number and made
//! encoding and parsing over 40 % of a loaded cluster's CPU (BENCHMARKS.md, "Where the time
//! goes"). Here a write's collection, document id and payload travel as raw length-prefixed
//! bytes. The transport frame around it already carries a CRC32C, so there is no checksum here.
//!
//! Decoding treats the bytes as hostile: every length is checked against what is left, strings
//! must be UTF-8, operation code 0 is refused, and nothing is allocated from an unchecked count.

use bytes::{BufMut, Bytes, BytesMut};
use openraft::raft::{AppendEntriesRequest, StreamAppendError, StreamAppendResult};

use super::rpc_kinds::CodecError;
use super::types::{log_id, ClientWrite, Entry, EntryPayload, LogId, Vote, C};
use crate::wal::Operation;

/// Version byte of both layouts below. Version 2: log ids are (term, index), as there is one
/// leader per term; write entries carry their origin node.
pub const APPEND_CODEC_VERSION: u8 = 2;

const ENTRY_BLANK: u8 = 0;
const ENTRY_WRITE: u8 = 1;
const ENTRY_MEMBERSHIP: u8 = 2;

const RESULT_MATCHED_NONE: u8 = 0;
const RESULT_MATCHED: u8 = 1;
const RESULT_CONFLICT: u8 = 2;
const RESULT_HIGHER_VOTE: u8 = 3;

/// Smallest encoded entry (a blank one): log id (16) + kind (1). Bounds the pre-allocation.
const MIN_ENTRY_LEN: usize = 17;

fn put_vote(b: &mut BytesMut, v: &Vote) {
    b.put_u64_le(v.leader_id.term);
    b.put_u64_le(v.leader_id.voted_for);
    b.put_u8(u8::from(v.committed));
}

fn put_log_id(b: &mut BytesMut, l: &LogId) {
    b.put_u64_le(l.leader_id.term);
    b.put_u64_le(l.index);
}

fn put_opt_log_id(b: &mut BytesMut, l: &Option<LogId>) {
    match l {
        None => b.put_u8(0),
        Some(l) => {
            b.put_u8(1);
            put_log_id(b, l);
        }
    }
}

fn put_bytes(b: &mut BytesMut, bytes: &[u8]) {
    // Frames are at most 16 MiB by default and never over 4 GiB, so a u32 always fits; a
    // larger field would fail the frame size check before it is sent.
    b.put_u32_le(u32::try_from(bytes.len()).unwrap_or(u32::MAX));
    b.put_slice(bytes);
}

fn encoded_entry_len(e: &Entry) -> usize {
    MIN_ENTRY_LEN
        + match &e.payload {
            EntryPayload::Blank => 0,
            EntryPayload::Write(w) => {
                1 + 8 + 8 + 9 + 12 + w.collection.len() + w.doc_id.len() + w.payload.len()
            }
            EntryPayload::Membership(_) => 256,
        }
}

// Format: AppendEntries request, binary (payload of KIND_APPEND_STREAM; integers little-endian)
//   u8        version (2)
//   vote      u64 term, u64 voted-for node id, u8 committed (0/1)
//   log id?   prev_log_id:   u8 present (0/1) [, u64 term, u64 index]
//   log id?   leader_commit: same layout
//   u32       entry count N, then N entries:
//     u64 term, u64 index      the entry's log id
//     u8  kind: 0 blank | 1 write | 2 membership
//     write:      u8 op (1..=249), u64 hlc, u64 origin node id, u8 has_txn (0/1) [, u64 txn id],
//                 u32 len + collection (UTF-8), u32 len + doc id (UTF-8), u32 len + payload
//     membership: u32 len + the openraft Membership as JSON
pub fn encode_request(req: &AppendEntriesRequest<C>) -> Result<Bytes, CodecError> {
    let size = 64 + req.entries.iter().map(encoded_entry_len).sum::<usize>();
    let mut b = BytesMut::with_capacity(size);
    b.put_u8(APPEND_CODEC_VERSION);
    put_vote(&mut b, &req.vote);
    put_opt_log_id(&mut b, &req.prev_log_id);
    put_opt_log_id(&mut b, &req.leader_commit);
    b.put_u32_le(u32::try_from(req.entries.len()).unwrap_or(u32::MAX));
    for e in &req.entries {
        put_log_id(&mut b, &e.log_id);
        match &e.payload {
            EntryPayload::Blank => b.put_u8(ENTRY_BLANK),
            EntryPayload::Write(w) => {
                b.put_u8(ENTRY_WRITE);
                b.put_u8(w.op.code());
                b.put_u64_le(w.hlc);
                b.put_u64_le(w.origin);
                match w.txn_id {
                    None => b.put_u8(0),
                    Some(t) => {
                        b.put_u8(1);
                        b.put_u64_le(t);
                    }
                }
                put_bytes(&mut b, w.collection.as_bytes());
                put_bytes(&mut b, w.doc_id.as_bytes());
                put_bytes(&mut b, &w.payload);
            }
            EntryPayload::Membership(m) => {
                b.put_u8(ENTRY_MEMBERSHIP);
                let json = serde_json::to_vec(m).map_err(|source| CodecError::Json {
                    what: "membership entry",
                    source,
                })?;
                put_bytes(&mut b, &json);
            }
        }
    }
    Ok(b.freeze())
}

/// Decodes [`encode_request`]'s layout. Write payloads are slices of `payload` (shared, not
/// copied): they live as long as the entries do.
pub fn decode_request(payload: &Bytes) -> Result<AppendEntriesRequest<C>, CodecError> {
    let shared = payload;
    let mut r = Reader::new("append-entries request", payload);
    r.version()?;
    let vote = r.vote()?;
    let prev_log_id = r.opt_log_id()?;
    let leader_commit = r.opt_log_id()?;
    let count = r.u32()? as usize;
    let mut entries = Vec::with_capacity(count.min(r.remaining() / MIN_ENTRY_LEN));
    for _ in 0..count {
        let lid = r.log_id()?;
        let payload = match r.u8()? {
            ENTRY_BLANK => EntryPayload::Blank,
            ENTRY_WRITE => {
                let code = r.u8()?;
                let op = match Operation::from_code(code) {
                    Some(op) if code < super::types::RESERVED_OP_FIRST => op,
                    _ => return Err(r.invalid(format!("operation code {code} in a write entry"))),
                };
                let hlc = r.u64()?;
                let origin = r.u64()?;
                let txn_id = match r.u8()? {
                    0 => None,
                    1 => Some(r.u64()?),
                    f => return Err(r.invalid(format!("txn flag {f}"))),
                };
                let collection = r.string("collection")?;
                let doc_id = r.string("document id")?;
                let payload = r.bytes().map(|b| shared.slice_ref(b))?;
                EntryPayload::Write(ClientWrite {
                    op,
                    collection,
                    doc_id,
                    payload,
                    txn_id,
                    hlc,
                    origin,
                    request_id: 0,
                })
            }
            ENTRY_MEMBERSHIP => {
                let json = r.bytes()?;
                EntryPayload::Membership(serde_json::from_slice(json).map_err(|source| {
                    CodecError::Json {
                        what: "membership entry",
                        source,
                    }
                })?)
            }
            k => return Err(r.invalid(format!("entry kind {k}"))),
        };
        entries.push(openraft::Entry {
            log_id: lid,
            payload,
        });
    }
    r.finish()?;
    Ok(AppendEntriesRequest {
        vote,
        prev_log_id,
        leader_commit,
        entries,
    })
}

// Format: AppendEntries result, binary (response payload of KIND_APPEND_STREAM)
//   u8  version (2)
//   u8  outcome: 0 matched nothing | 1 matched log id | 2 conflict at log id | 3 higher vote
//   then for 1 and 2 a log id (u64 term, u64 index), for 3 a vote (as above)
pub fn encode_result(res: &StreamAppendResult<C>) -> Bytes {
    let mut b = BytesMut::with_capacity(2 + 17);
    b.put_u8(APPEND_CODEC_VERSION);
    match res {
        Ok(None) => b.put_u8(RESULT_MATCHED_NONE),
        Ok(Some(l)) => {
            b.put_u8(RESULT_MATCHED);
            put_log_id(&mut b, l);
        }
        Err(StreamAppendError::Conflict(l)) => {
            b.put_u8(RESULT_CONFLICT);
            put_log_id(&mut b, l);
        }
        Err(StreamAppendError::HigherVote(v)) => {
            b.put_u8(RESULT_HIGHER_VOTE);
            put_vote(&mut b, v);
        }
    }
    b.freeze()
}

pub fn decode_result(payload: &[u8]) -> Result<StreamAppendResult<C>, CodecError> {
    let mut r = Reader::new("append-entries result", payload);
    r.version()?;
    let res = match r.u8()? {
        RESULT_MATCHED_NONE => Ok(None),
        RESULT_MATCHED => Ok(Some(r.log_id()?)),
        RESULT_CONFLICT => Err(StreamAppendError::Conflict(r.log_id()?)),
        RESULT_HIGHER_VOTE => Err(StreamAppendError::HigherVote(r.vote()?)),
        t => return Err(r.invalid(format!("outcome {t}"))),
    };
    r.finish()?;
    Ok(res)
}

/// Bounds-checked little-endian reads over a payload.
struct Reader<'a> {
    what: &'static str,
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(what: &'static str, buf: &'a [u8]) -> Self {
        Reader { what, buf, pos: 0 }
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn invalid(&self, detail: String) -> CodecError {
        CodecError::Invalid {
            what: self.what,
            offset: self.pos,
            detail,
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        if self.remaining() < n {
            return Err(CodecError::Short {
                what: self.what,
                len: self.buf.len(),
                need: self.pos.saturating_add(n),
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, CodecError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, CodecError> {
        let s = self.take(4)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }

    fn u64(&mut self) -> Result<u64, CodecError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }

    fn version(&mut self) -> Result<(), CodecError> {
        match self.u8()? {
            APPEND_CODEC_VERSION => Ok(()),
            version => Err(CodecError::Version {
                what: self.what,
                version,
            }),
        }
    }

    fn vote(&mut self) -> Result<Vote, CodecError> {
        let term = self.u64()?;
        let node = self.u64()?;
        match self.u8()? {
            0 => Ok(openraft::Vote::new(term, node)),
            1 => Ok(openraft::Vote::new_committed(term, node)),
            f => Err(self.invalid(format!("vote committed flag {f}"))),
        }
    }

    fn log_id(&mut self) -> Result<LogId, CodecError> {
        let term = self.u64()?;
        let index = self.u64()?;
        Ok(log_id(term, index))
    }

    fn opt_log_id(&mut self) -> Result<Option<LogId>, CodecError> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.log_id()?)),
            f => Err(self.invalid(format!("log id presence flag {f}"))),
        }
    }

    fn bytes(&mut self) -> Result<&'a [u8], CodecError> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    fn string(&mut self, field: &str) -> Result<std::sync::Arc<str>, CodecError> {
        let at = self.pos;
        let b = self.bytes()?;
        std::str::from_utf8(b)
            .map(std::sync::Arc::from)
            .map_err(|e| CodecError::Invalid {
                what: self.what,
                offset: at,
                detail: format!("{field} is not UTF-8: {e}"),
            })
    }

    fn finish(&self) -> Result<(), CodecError> {
        if self.remaining() != 0 {
            return Err(self.invalid(format!("{} trailing bytes", self.remaining())));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use proptest::prelude::*;

    use super::*;

    /// The decoder shares the buffer it is given; tests hand it copies of byte slices.
    fn decode(b: &[u8]) -> Result<AppendEntriesRequest<C>, CodecError> {
        decode_request(&Bytes::copy_from_slice(b))
    }
    use crate::consensus::types::NodeInfo;

    fn write_entry(index: u64, payload: Vec<u8>, txn: Option<u64>) -> Entry {
        let mut w = ClientWrite::new(Operation::Update, "users", format!("u{index}"), payload);
        w.txn_id = txn;
        w.hlc = 0x1234_5678_9abc_def0 ^ index;
        w.origin = 5;
        w.request_id = 99; // local only: must not travel
        openraft::Entry {
            log_id: log_id(3, index),
            payload: EntryPayload::Write(w),
        }
    }

    fn membership_entry(index: u64) -> Entry {
        let nodes: BTreeMap<u64, NodeInfo> = (1..=3)
            .map(|i| (i, NodeInfo::new(format!("127.0.0.{i}:7000"))))
            .collect();
        let voters = vec![BTreeSet::from([1, 2, 3])];
        openraft::Entry {
            log_id: log_id(3, index),
            payload: EntryPayload::Membership(openraft::Membership::new(voters, nodes).unwrap()),
        }
    }

    fn request(entries: Vec<Entry>) -> AppendEntriesRequest<C> {
        AppendEntriesRequest {
            vote: openraft::Vote::new_committed(3, 1),
            prev_log_id: Some(log_id(2, 9)),
            leader_commit: Some(log_id(2, 8)),
            entries,
        }
    }

    fn strip_request_ids(mut req: AppendEntriesRequest<C>) -> AppendEntriesRequest<C> {
        for e in &mut req.entries {
            if let EntryPayload::Write(w) = &mut e.payload {
                w.request_id = 0;
            }
        }
        req
    }

    fn same(a: &AppendEntriesRequest<C>, b: &AppendEntriesRequest<C>) -> bool {
        a.vote == b.vote
            && a.prev_log_id == b.prev_log_id
            && a.leader_commit == b.leader_commit
            && a.entries == b.entries
    }

    #[test]
    fn every_entry_kind_round_trips() {
        let req = request(vec![
            openraft::Entry {
                log_id: log_id(3, 10),
                payload: EntryPayload::Blank,
            },
            write_entry(11, b"{\"a\":1}".to_vec(), None),
            write_entry(12, Vec::new(), Some(7)),
            membership_entry(13),
        ]);
        let back = decode(&encode_request(&req).unwrap()).unwrap();
        assert!(same(&back, &strip_request_ids(req)));
        // A heartbeat: no entries, nothing optional.
        let hb = AppendEntriesRequest::<C> {
            vote: openraft::Vote::new(5, 2),
            prev_log_id: None,
            leader_commit: None,
            entries: vec![],
        };
        assert!(same(&decode(&encode_request(&hb).unwrap()).unwrap(), &hb));
    }

    #[test]
    fn results_round_trip() {
        let cases: Vec<StreamAppendResult<C>> = vec![
            Ok(None),
            Ok(Some(log_id(4, 77))),
            Err(StreamAppendError::Conflict(log_id(1, 3))),
            Err(StreamAppendError::HigherVote(
                openraft::Vote::new_committed(9, 3),
            )),
        ];
        for c in cases {
            assert_eq!(decode_result(&encode_result(&c)).unwrap(), c);
        }
        let v = APPEND_CODEC_VERSION;
        assert!(decode_result(&[v, 9]).is_err());
        assert!(decode_result(&[v + 1, 0]).is_err());
        assert!(decode_result(&[v - 1, 0]).is_err()); // version 1 (adv log ids) is refused
        assert!(decode_result(&[v, 1, 0]).is_err());
        assert!(decode_result(&[v, 0, 0]).is_err()); // trailing byte
    }

    #[test]
    fn hostile_requests_are_refused() {
        let good = encode_request(&request(vec![write_entry(10, b"xyz".to_vec(), None)]))
            .unwrap()
            .to_vec();
        // Every truncation fails cleanly.
        for n in 0..good.len() {
            assert!(decode(&good[..n]).is_err(), "prefix of {n} bytes");
        }
        // A trailing byte is refused.
        let mut long = good.clone();
        long.push(0);
        assert!(decode(&long).is_err());
        // A huge entry count allocates nothing up front and fails.
        let mut huge = good.clone();
        // version, vote (8 + 8 + 1), two optional log ids (1 + 8 + 8 each)
        let count_at = 1 + 17 + 17 + 17;
        huge[count_at..count_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode(&huge).is_err());
        // Operation code 0 and reserved codes are refused.
        let op_at = count_at + 4 + 16 + 1;
        for code in [0u8, 250, 255] {
            let mut bad = good.clone();
            bad[op_at] = code;
            assert!(decode(&bad).is_err(), "op code {code}");
        }
        // A collection that is not UTF-8.
        // op, hlc, origin, txn flag, collection length
        let coll_at = op_at + 1 + 8 + 8 + 1 + 4;
        let mut bad = good.clone();
        bad[coll_at] = 0xff;
        let err = decode(&bad).unwrap_err().to_string();
        assert!(err.contains("not UTF-8"), "{err}");
        // Unknown version.
        for version in [1, APPEND_CODEC_VERSION + 1] {
            let mut bad = good.clone();
            bad[0] = version;
            assert!(decode(&bad).is_err(), "version {version}");
        }
    }

    proptest! {
        #[test]
        fn random_writes_round_trip(
            payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..20),
            txn in proptest::option::of(any::<u64>()),
        ) {
            let entries: Vec<Entry> = payloads
                .into_iter()
                .enumerate()
                .map(|(i, p)| write_entry(10 + i as u64, p, txn))
                .collect();
            let req = request(entries);
            let back = decode(&encode_request(&req).unwrap()).unwrap();
            prop_assert!(same(&back, &strip_request_ids(req)));
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&bytes);
            let _ = decode_result(&bytes);
        }
    }
}
