//! [`StoreHandler`]: the embedded [`DocumentStore`] as the Raft state machine of a standalone
//! node.
//!
//! Durability: the store commits applies without an fsync (`sync_on_apply = false`). The WAL
//! (the Raft log) is the durable copy: after a crash the state machine layer replays committed
//! entries from its last snapshot, and [`DocumentStore::apply`] skips every LSN at or below the
//! one it recorded in the same transaction as the data, so a replay never applies an entry
//! twice and a lost store commit is simply re-applied.
//!
//! Reads: [`ApplyHandler::read`] serves the admin API's document reads once
//! [`ReplicationNode::read`](replication_core::consensus::ReplicationNode::read) has decided
//! the store is fresh enough for the requested consistency.

use std::path::Path;
use std::sync::Arc;

use axum::body::Bytes;
use replication_core::consensus::{AppliedEntry, ApplyError, ApplyHandler};
use replication_core::store::{DocumentStore, StoreError};
use replication_core::wal::{NewRecord, Record};

/// File name of the store inside `wal_directory` (the WAL ignores files that are not segments).
pub const STORE_FILE: &str = "store.redb";

/// Applies committed writes to a shared [`DocumentStore`]. Cheap to clone.
#[derive(Clone)]
pub struct StoreHandler {
    store: Arc<DocumentStore>,
}

impl StoreHandler {
    pub fn new(store: Arc<DocumentStore>) -> Self {
        StoreHandler { store }
    }

    /// Opens (creating if needed) `<wal_directory>/store.redb`.
    pub fn open_in(wal_directory: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(wal_directory).map_err(|e| StoreError::Storage {
            path: wal_directory.to_path_buf(),
            message: format!("cannot create the directory: {e}"),
        })?;
        let store = DocumentStore::open(wal_directory.join(STORE_FILE), false)?;
        Ok(Self::new(Arc::new(store)))
    }

    pub fn store(&self) -> &Arc<DocumentStore> {
        &self.store
    }
}

/// The store's record form of a committed entry. The origin node is not carried by
/// `AppliedEntry` and the store does not use it, so it stays 0.
fn to_record(e: &AppliedEntry<'_>) -> Record {
    let mut r = NewRecord::new(e.op, e.collection, e.doc_id, e.payload.to_vec()).with_lsn(e.lsn);
    r.term = e.term;
    r.hlc = e.hlc;
    r.txn_id = e.txn_id;
    r
}

fn apply_err(e: StoreError) -> ApplyError {
    ApplyError(e.to_string())
}

impl ApplyHandler for StoreHandler {
    fn apply(&self, entry: &AppliedEntry<'_>) -> Result<(), ApplyError> {
        // Idempotence by LSN is the store's: an entry at or below its applied LSN is skipped.
        self.store
            .apply(std::slice::from_ref(&to_record(entry)))
            .map(|_| ())
            .map_err(apply_err)
    }

    fn snapshot(&self) -> Result<Vec<u8>, ApplyError> {
        self.store.snapshot().map_err(apply_err)
    }

    fn restore(&self, data: &[u8]) -> Result<(), ApplyError> {
        self.store.restore(data).map_err(apply_err)
    }

    fn read(&self, collection: &str, doc_id: &str) -> Result<Option<Bytes>, ApplyError> {
        self.store
            .get(collection, doc_id)
            .map(|found| found.map(Bytes::from))
            .map_err(apply_err)
    }
}

#[cfg(test)]
mod tests {
    use replication_core::clock::HlcTimestamp;
    use replication_core::wal::Operation;

    use super::*;

    fn entry<'a>(lsn: u64, op: Operation, doc: &'a str, payload: &'a [u8]) -> AppliedEntry<'a> {
        AppliedEntry {
            lsn,
            term: 3,
            hlc: HlcTimestamp(7),
            op,
            collection: "users",
            doc_id: doc,
            txn_id: None,
            payload,
        }
    }

    #[test]
    fn applies_in_order_and_skips_replayed_lsns() {
        let dir = tempfile::tempdir().unwrap();
        let h = StoreHandler::open_in(dir.path()).unwrap();
        h.apply(&entry(1, Operation::Insert, "a", b"one")).unwrap();
        h.apply(&entry(2, Operation::Insert, "b", b"two")).unwrap();
        h.apply(&entry(3, Operation::Delete, "b", b"")).unwrap();
        // A replay after a restart hands old entries again: they must not resurrect "b".
        h.apply(&entry(2, Operation::Insert, "b", b"two")).unwrap();
        assert_eq!(
            h.store().get("users", "a").unwrap().as_deref(),
            Some(&b"one"[..])
        );
        assert_eq!(h.store().get("users", "b").unwrap(), None);
        assert_eq!(h.store().last_applied().unwrap(), Some((3, 3)));
        // Reads through the handler see the same store.
        assert_eq!(h.read("users", "a").unwrap().as_deref(), Some(&b"one"[..]));
        assert_eq!(h.read("users", "b").unwrap(), None);
    }

    #[test]
    fn snapshot_restores_into_another_store() {
        let dir = tempfile::tempdir().unwrap();
        let a = StoreHandler::open_in(&dir.path().join("a")).unwrap();
        let b = StoreHandler::open_in(&dir.path().join("b")).unwrap();
        for i in 1..=20u64 {
            let doc = format!("d{i}");
            a.apply(&entry(i, Operation::Update, &doc, doc.as_bytes()))
                .unwrap();
        }
        b.restore(&a.snapshot().unwrap()).unwrap();
        assert_eq!(
            a.store().content_hash().unwrap(),
            b.store().content_hash().unwrap()
        );
        // The restored position carries over: an old entry is skipped on the copy too.
        b.apply(&entry(5, Operation::Delete, "d5", b"")).unwrap();
        assert!(b.store().get("users", "d5").unwrap().is_some());
        assert!(b.restore(b"not a snapshot").is_err());
    }
}
