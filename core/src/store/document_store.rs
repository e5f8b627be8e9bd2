//! `DocumentStore`: documents in a redb table, applied from WAL records.

use std::path::{Path, PathBuf};

use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
};

use super::snapshot;
use crate::wal::{Operation, Record};
use crate::Lsn;

/// Key: u16 LE collection length, collection bytes, document id bytes (the length prefix keeps
/// `("ab", "c")` and `("a", "bc")` apart). Value: the payload.
const DOCS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("docs");
/// Schema changes, by LSN: DDL records are kept for inspection and later logical decoding.
const DDL: TableDefinition<u64, &[u8]> = TableDefinition::new("ddl");
/// "applied_lsn" and "applied_term".
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("document store {path}: {message}")]
    Storage { path: PathBuf, message: String },
    #[error("invalid snapshot: {0}")]
    Snapshot(String),
}

pub struct DocumentStore {
    db: Database,
    path: PathBuf,
    /// Commit every apply with an fsync. Off means the WAL is the durable copy and a restart
    /// re-applies what the store lost (apply is idempotent by LSN).
    sync_on_apply: bool,
}

impl DocumentStore {
    /// Opens (creating if needed) the store at `path`.
    pub fn open(path: impl AsRef<Path>, sync_on_apply: bool) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let db = Database::create(&path).map_err(|e| err(&path, e))?;
        let store = DocumentStore {
            db,
            path,
            sync_on_apply,
        };
        // Create the tables so that readers never meet a missing table.
        let txn = store.db.begin_write().map_err(|e| store.err(e))?;
        {
            txn.open_table(DOCS).map_err(|e| store.err(e))?;
            txn.open_table(DDL).map_err(|e| store.err(e))?;
            txn.open_table(META).map_err(|e| store.err(e))?;
        }
        txn.commit().map_err(|e| store.err(e))?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, e: impl std::fmt::Display) -> StoreError {
        err(&self.path, e)
    }

    /// Applies records in LSN order in one transaction; records at or below the last applied
    /// LSN are skipped (replay after a crash). Returns how many were applied.
    pub fn apply(&self, records: &[Record]) -> Result<usize, StoreError> {
        let mut txn = self.db.begin_write().map_err(|e| self.err(e))?;
        if !self.sync_on_apply {
            txn.set_durability(Durability::None)
                .map_err(|e| self.err(e))?;
        }
        let mut applied = 0;
        {
            let mut meta = txn.open_table(META).map_err(|e| self.err(e))?;
            let mut last = meta
                .get("applied_lsn")
                .map_err(|e| self.err(e))?
                .map_or(0, |g| g.value());
            let mut docs = txn.open_table(DOCS).map_err(|e| self.err(e))?;
            let mut ddl = txn.open_table(DDL).map_err(|e| self.err(e))?;
            let mut last_term = None;
            for r in records {
                if r.lsn <= last {
                    continue;
                }
                let key = doc_key(&r.collection, &r.doc_id);
                match r.op {
                    Operation::Insert | Operation::Update => {
                        docs.insert(key.as_slice(), r.payload.as_ref())
                            .map_err(|e| self.err(e))?;
                    }
                    Operation::Delete => {
                        docs.remove(key.as_slice()).map_err(|e| self.err(e))?;
                    }
                    Operation::Ddl => {
                        ddl.insert(r.lsn, r.payload.as_ref())
                            .map_err(|e| self.err(e))?;
                    }
                    // Kinds this store does not model (consensus bookkeeping and later
                    // additions) only advance the applied position.
                    Operation::Other(_) => {}
                }
                last = r.lsn;
                last_term = Some(r.term);
                applied += 1;
            }
            if let Some(term) = last_term {
                meta.insert("applied_lsn", last).map_err(|e| self.err(e))?;
                meta.insert("applied_term", term).map_err(|e| self.err(e))?;
            }
        }
        txn.commit().map_err(|e| self.err(e))?;
        Ok(applied)
    }

    /// Makes every earlier apply durable (an fsynced empty commit).
    pub fn flush(&self) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(|e| self.err(e))?;
        txn.commit().map_err(|e| self.err(e))
    }

    pub fn get(&self, collection: &str, doc_id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let docs = txn.open_table(DOCS).map_err(|e| self.err(e))?;
        let key = doc_key(collection, doc_id);
        let value = docs.get(key.as_slice()).map_err(|e| self.err(e))?;
        Ok(value.map(|g| g.value().to_vec()))
    }

    /// `(lsn, term)` of the last applied record, if any.
    pub fn last_applied(&self) -> Result<Option<(Lsn, u64)>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let meta = txn.open_table(META).map_err(|e| self.err(e))?;
        let lsn = meta.get("applied_lsn").map_err(|e| self.err(e))?;
        let term = meta.get("applied_term").map_err(|e| self.err(e))?;
        Ok(lsn.map(|l| (l.value(), term.map_or(0, |t| t.value()))))
    }

    /// Number of documents.
    pub fn len(&self) -> Result<u64, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let docs = txn.open_table(DOCS).map_err(|e| self.err(e))?;
        docs.len().map_err(|e| self.err(e))
    }

    pub fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.len()? == 0)
    }

    /// A 64-bit FNV-1a hash over every (key, value) in key order: equal on two replicas iff
    /// they hold the same documents (up to hash collisions). Used to verify replicas agree.
    pub fn content_hash(&self) -> Result<u64, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let docs = txn.open_table(DOCS).map_err(|e| self.err(e))?;
        let mut h = Fnv64::new();
        for entry in docs.iter().map_err(|e| self.err(e))? {
            let (k, v) = entry.map_err(|e| self.err(e))?;
            h.write(&(k.value().len() as u64).to_le_bytes());
            h.write(k.value());
            h.write(&(v.value().len() as u64).to_le_bytes());
            h.write(v.value());
        }
        Ok(h.0)
    }

    /// Serializes every document and the applied position (format in snapshot.rs).
    pub fn snapshot(&self) -> Result<Vec<u8>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let docs = txn.open_table(DOCS).map_err(|e| self.err(e))?;
        let meta = txn.open_table(META).map_err(|e| self.err(e))?;
        let lsn = meta
            .get("applied_lsn")
            .map_err(|e| self.err(e))?
            .map_or(0, |g| g.value());
        let term = meta
            .get("applied_term")
            .map_err(|e| self.err(e))?
            .map_or(0, |g| g.value());
        let mut w = snapshot::Writer::new(lsn, term);
        for entry in docs.iter().map_err(|e| self.err(e))? {
            let (k, v) = entry.map_err(|e| self.err(e))?;
            w.entry(k.value(), v.value());
        }
        Ok(w.finish())
    }

    /// Replaces the whole content with a snapshot made by `snapshot()` (durably). A damaged
    /// snapshot is refused before anything changes.
    pub fn restore(&self, bytes: &[u8]) -> Result<(), StoreError> {
        let parsed = snapshot::parse(bytes).map_err(StoreError::Snapshot)?;
        let txn = self.db.begin_write().map_err(|e| self.err(e))?;
        {
            txn.delete_table(DOCS).map_err(|e| self.err(e))?;
            let mut docs = txn.open_table(DOCS).map_err(|e| self.err(e))?;
            for (k, v) in &parsed.entries {
                docs.insert(*k, *v).map_err(|e| self.err(e))?;
            }
            let mut meta = txn.open_table(META).map_err(|e| self.err(e))?;
            meta.insert("applied_lsn", parsed.applied_lsn)
                .map_err(|e| self.err(e))?;
            meta.insert("applied_term", parsed.applied_term)
                .map_err(|e| self.err(e))?;
        }
        txn.commit().map_err(|e| self.err(e))
    }
}

fn err(path: &Path, e: impl std::fmt::Display) -> StoreError {
    StoreError::Storage {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

fn doc_key(collection: &str, doc_id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + collection.len() + doc_id.len());
    k.extend_from_slice(&(collection.len() as u16).to_le_bytes());
    k.extend_from_slice(collection.as_bytes());
    k.extend_from_slice(doc_id.as_bytes());
    k
}

struct Fnv64(u64);

impl Fnv64 {
    fn new() -> Self {
        Fnv64(0xcbf2_9ce4_8422_2325)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wal::NewRecord;

    fn rec(lsn: Lsn, op: Operation, doc: &str, payload: &str) -> Record {
        let mut r = NewRecord::new(op, "users", doc, payload.as_bytes().to_vec()).with_lsn(lsn);
        r.term = 2;
        r
    }

    #[test]
    fn apply_is_idempotent_and_deletes_work() {
        let dir = tempfile::tempdir().unwrap();
        let s = DocumentStore::open(dir.path().join("db.redb"), true).unwrap();
        let batch = [
            rec(1, Operation::Insert, "a", "1"),
            rec(2, Operation::Insert, "b", "2"),
            rec(3, Operation::Update, "a", "3"),
            rec(4, Operation::Delete, "b", ""),
            rec(5, Operation::Ddl, "", "CREATE INDEX x"),
        ];
        assert_eq!(s.apply(&batch).unwrap(), 5);
        assert_eq!(s.apply(&batch).unwrap(), 0, "replay skips applied LSNs");
        assert_eq!(s.get("users", "a").unwrap().as_deref(), Some(&b"3"[..]));
        assert_eq!(s.get("users", "b").unwrap(), None);
        assert_eq!(s.len().unwrap(), 1);
        assert_eq!(s.last_applied().unwrap(), Some((5, 2)));
    }

    #[test]
    fn snapshot_restore_round_trip_and_hash() {
        let dir = tempfile::tempdir().unwrap();
        let a = DocumentStore::open(dir.path().join("a.redb"), false).unwrap();
        let b = DocumentStore::open(dir.path().join("b.redb"), false).unwrap();
        let recs: Vec<_> = (1..=200)
            .map(|i| rec(i, Operation::Insert, &format!("d{i}"), &format!("v{i}")))
            .collect();
        a.apply(&recs).unwrap();
        assert_ne!(a.content_hash().unwrap(), b.content_hash().unwrap());
        let snap = a.snapshot().unwrap();
        b.restore(&snap).unwrap();
        assert_eq!(a.content_hash().unwrap(), b.content_hash().unwrap());
        assert_eq!(b.last_applied().unwrap(), Some((200, 2)));
        let mut bad = snap.clone();
        let n = bad.len();
        bad[n / 2] ^= 1;
        assert!(matches!(b.restore(&bad), Err(StoreError::Snapshot(_))));
        assert_eq!(
            a.content_hash().unwrap(),
            b.content_hash().unwrap(),
            "a refused snapshot changes nothing"
        );
    }

    #[test]
    fn keys_do_not_collide_across_collections() {
        assert_ne!(doc_key("ab", "c"), doc_key("a", "bc"));
    }
}
