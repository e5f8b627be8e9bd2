//! The default state machine of a standalone node: an embedded document store on redb.
//!
//! A host database is its own state machine (it applies replicated records itself); a node run
//! without a host (the `replicad` daemon, tests, demos) applies them here instead. The store
//! keeps `(collection, document id) -> payload` and the LSN of the last applied record in the
//! same transaction as the data, so replaying the WAL after a crash is idempotent: records at
//! or below that LSN are skipped.

mod document_store;
mod snapshot;

pub use document_store::{DocumentStore, StoreError};
