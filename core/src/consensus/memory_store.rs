//! `MemoryStore`: an in-memory [`ApplyHandler`] (collection, document id) -> payload.
//!
//! Used by tests and as the default state machine until the embedded redb store lands. It is
//! idempotent by LSN (an entry at or below the last applied LSN is skipped), so it behaves like
//! a durable host when the same instance survives a node restart.

use std::collections::BTreeMap;

use bytes::Bytes;
use parking_lot::Mutex;

use super::state_machine::{AppliedEntry, ApplyError, ApplyHandler};
use crate::wal::Operation;
use crate::Lsn;

#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<MemState>,
}

#[derive(Default)]
struct MemState {
    data: BTreeMap<(String, String), Bytes>,
    last_lsn: Lsn,
    applied: u64,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn get(&self, collection: &str, doc_id: &str) -> Option<Vec<u8>> {
        let key = (collection.to_string(), doc_id.to_string());
        self.state.lock().data.get(&key).map(|b| b.to_vec())
    }

    pub fn len(&self) -> usize {
        self.state.lock().data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// LSN of the last write applied (0 if none).
    pub fn last_applied_lsn(&self) -> Lsn {
        self.state.lock().last_lsn
    }

    /// Number of `apply` calls that changed something (skipped duplicates are not counted).
    pub fn applied_count(&self) -> u64 {
        self.state.lock().applied
    }

    /// FNV-1a 64 over the encoded contents (not the LSN): equal on replicas holding the same
    /// documents, stable across processes and versions.
    pub fn content_hash(&self) -> u64 {
        let state = self.state.lock();
        let mut buf = Vec::new();
        encode_map(&state.data, &mut buf);
        fnv1a(&buf)
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u64).to_le_bytes());
    out.extend_from_slice(b);
}

// Format: MemoryStore snapshot (little-endian)
//   u64 last applied LSN, u64 document count N, then N times:
//   u64 len + collection bytes, u64 len + document id bytes, u64 len + payload bytes
fn encode_map(data: &BTreeMap<(String, String), Bytes>, out: &mut Vec<u8>) {
    out.extend_from_slice(&(data.len() as u64).to_le_bytes());
    for ((c, d), p) in data {
        put_bytes(out, c.as_bytes());
        put_bytes(out, d.as_bytes());
        put_bytes(out, p);
    }
}

struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn u64(&mut self) -> Result<u64, ApplyError> {
        let (head, rest) = self
            .0
            .split_at_checked(8)
            .ok_or_else(|| ApplyError("snapshot is truncated".into()))?;
        self.0 = rest;
        Ok(u64::from_le_bytes(head.try_into().expect("8 bytes")))
    }

    fn bytes(&mut self) -> Result<Vec<u8>, ApplyError> {
        let n = usize::try_from(self.u64()?).map_err(|e| ApplyError(e.to_string()))?;
        let (head, rest) = self
            .0
            .split_at_checked(n)
            .ok_or_else(|| ApplyError("snapshot is truncated".into()))?;
        self.0 = rest;
        Ok(head.to_vec())
    }

    fn string(&mut self) -> Result<String, ApplyError> {
        String::from_utf8(self.bytes()?).map_err(|e| ApplyError(format!("snapshot: {e}")))
    }
}

impl ApplyHandler for MemoryStore {
    fn apply(&self, e: &AppliedEntry<'_>) -> Result<(), ApplyError> {
        let mut state = self.state.lock();
        if e.lsn <= state.last_lsn {
            return Ok(());
        }
        let key = (e.collection.to_string(), e.doc_id.to_string());
        match e.op {
            Operation::Insert | Operation::Update => {
                state.data.insert(key, Bytes::copy_from_slice(e.payload));
            }
            Operation::Delete => {
                state.data.remove(&key);
            }
            Operation::Ddl | Operation::Other(_) => {}
        }
        state.last_lsn = e.lsn;
        state.applied += 1;
        Ok(())
    }

    fn snapshot(&self) -> Result<Vec<u8>, ApplyError> {
        let state = self.state.lock();
        let mut out = state.last_lsn.to_le_bytes().to_vec();
        encode_map(&state.data, &mut out);
        Ok(out)
    }

    fn read(&self, collection: &str, doc_id: &str) -> Result<Option<Bytes>, ApplyError> {
        let key = (collection.to_string(), doc_id.to_string());
        Ok(self.state.lock().data.get(&key).cloned())
    }

    fn restore(&self, bytes: &[u8]) -> Result<(), ApplyError> {
        let mut cur = Cursor(bytes);
        let last_lsn = cur.u64()?;
        let n = cur.u64()?;
        let mut data = BTreeMap::new();
        for _ in 0..n {
            let c = cur.string()?;
            let d = cur.string()?;
            data.insert((c, d), Bytes::from(cur.bytes()?));
        }
        let mut state = self.state.lock();
        state.data = data;
        state.last_lsn = last_lsn;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::HlcTimestamp;

    fn entry<'a>(lsn: Lsn, op: Operation, doc: &'a str, payload: &'a [u8]) -> AppliedEntry<'a> {
        AppliedEntry {
            lsn,
            term: 1,
            hlc: HlcTimestamp::default(),
            op,
            collection: "c",
            doc_id: doc,
            txn_id: None,
            payload,
        }
    }

    #[test]
    fn apply_is_idempotent_and_snapshot_round_trips() {
        let a = MemoryStore::new();
        a.apply(&entry(1, Operation::Insert, "x", b"1")).unwrap();
        a.apply(&entry(2, Operation::Insert, "y", b"2")).unwrap();
        a.apply(&entry(3, Operation::Delete, "x", b"")).unwrap();
        // A replay after restart must not resurrect x.
        a.apply(&entry(1, Operation::Insert, "x", b"1")).unwrap();
        assert_eq!(a.get("c", "x"), None);
        assert_eq!(a.get("c", "y").as_deref(), Some(&b"2"[..]));
        assert_eq!(a.read("c", "y").unwrap().as_deref(), Some(&b"2"[..]));
        assert_eq!(a.read("c", "x").unwrap(), None);
        let b = MemoryStore::new();
        assert_ne!(a.content_hash(), b.content_hash());
        b.restore(&a.snapshot().unwrap()).unwrap();
        assert_eq!(a.content_hash(), b.content_hash());
        assert_eq!(b.last_applied_lsn(), 3);
        assert!(b.restore(&[1, 2, 3]).is_err());
    }
}
