//! The Raft state machine: the host's storage, reached through [`ApplyHandler`].
//!
//! What survives a restart, and what the host must do:
//! - This layer persists only its latest snapshot (file `snapshot` in the consensus state
//!   directory: the snapshot's last log id and membership plus the host's snapshot bytes).
//! - On start, if a snapshot file exists, [`ApplyHandler::restore`] is called with its bytes and
//!   the last applied log id is the snapshot's; otherwise it is "nothing applied". openraft then
//!   re-applies the log from there (up to the persisted committed id at once, the rest as the
//!   leader reports commits).
//! - So the host sees `apply` again for entries it may already hold. It must be idempotent by
//!   LSN: a host with durable storage records the last LSN it applied (in the same transaction
//!   as the data) and skips entries at or below it; an in-memory host starts empty and simply
//!   applies everything. [`MemoryStore`](super::MemoryStore) does the former.
//! - Leader restore is off (`node.rs`), so no node ever acts on state it has not re-derived.
//!
//! An `apply` that fails stops the node: a state machine cannot skip an entry and stay a replica.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use openraft::entry::RaftEntry;
use openraft::storage::{EntryResponder, RaftStateMachine};
use openraft::{OptionalSend, RaftSnapshotBuilder};
use parking_lot::Mutex;
use tracing::Instrument;

use super::state_file;
use super::types::{
    EntryPayload, LogId, Snapshot, SnapshotData, SnapshotMeta, StoredMembership, C,
};
use crate::clock::HlcTimestamp;
use crate::wal::Operation;
use crate::Lsn;

const SNAPSHOT_FILE: &str = "snapshot";

/// One committed client write, handed to the host in log order.
#[derive(Debug, Clone, Copy)]
pub struct AppliedEntry<'a> {
    pub lsn: Lsn,
    pub term: u64,
    pub hlc: HlcTimestamp,
    pub op: Operation,
    pub collection: &'a str,
    pub doc_id: &'a str,
    pub txn_id: Option<u64>,
    pub payload: &'a [u8],
}

/// The host could not apply an entry, take or restore a snapshot, or read.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ApplyError(pub String);

/// The host's storage seen as the Raft state machine. Called from one task at a time (apply and
/// snapshot calls never overlap), on a tokio worker thread: keep calls short or hand work off.
pub trait ApplyHandler: Send + Sync + 'static {
    /// Applies one committed write. Called in LSN order for normal entries only (blank and
    /// membership entries are consensus-internal). May be called again for an LSN already
    /// applied before a restart: skip those (see the module docs).
    fn apply(&self, entry: &AppliedEntry<'_>) -> Result<(), ApplyError>;
    /// Returns the whole state as bytes, consistent with every entry applied so far.
    fn snapshot(&self) -> Result<Vec<u8>, ApplyError>;
    /// Replaces the whole state with a snapshot made by `snapshot` (possibly on another node).
    fn restore(&self, data: &[u8]) -> Result<(), ApplyError>;
    /// False for a host that cannot take or restore snapshots (its `snapshot` returns nothing
    /// useful). Such a node never snapshots on openraft's schedule, so its log is never purged
    /// and a restart re-applies the log instead of restoring an empty snapshot; only an
    /// explicit snapshot request still calls `snapshot`.
    fn supports_snapshots(&self) -> bool {
        true
    }
    /// The read side: the current payload of a document, or `None` if it does not exist.
    /// Reflects at least every entry whose `apply` has returned. Called concurrently with
    /// `apply`, from any thread ([`ReplicationNode::read`](super::ReplicationNode::read) decides
    /// *when* a read may run; this only has to read). A store that cannot serve reads keeps this
    /// default, and reads through the node fail with that message.
    fn read(&self, collection: &str, doc_id: &str) -> Result<Option<Bytes>, ApplyError> {
        let _ = (collection, doc_id);
        Err(ApplyError(
            "this state machine does not serve reads; implement ApplyHandler::read".into(),
        ))
    }
}

/// `RaftStateMachine` over an [`ApplyHandler`]. Cloneable; clones share state.
#[derive(Clone)]
pub struct StateMachine {
    inner: Arc<Inner>,
}

struct Inner {
    handler: Arc<dyn ApplyHandler>,
    dir: PathBuf,
    /// Held while calling the handler, so a snapshot and its `last_applied` always agree.
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    last_applied: Option<LogId>,
    membership: StoredMembership,
    current: Option<(SnapshotMeta, SnapshotData)>,
}

fn apply_err(e: ApplyError) -> io::Error {
    io::Error::other(format!("the host state machine failed: {e}"))
}

// Format: body of the `snapshot` state file
//   0  u32 length M of the metadata
//   4  M bytes: SnapshotMeta as JSON (last log id, membership)
//   4+M the host's snapshot bytes, to the end
fn encode_snapshot(meta: &SnapshotMeta, data: &[u8]) -> io::Result<Vec<u8>> {
    let m = serde_json::to_vec(meta).map_err(io::Error::other)?;
    let len = u32::try_from(m.len()).map_err(io::Error::other)?;
    let mut out = Vec::with_capacity(4 + m.len() + data.len());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&m);
    out.extend_from_slice(data);
    Ok(out)
}

fn decode_snapshot(body: &[u8]) -> io::Result<(SnapshotMeta, SnapshotData)> {
    let bad = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "snapshot file body is malformed",
        )
    };
    let len_bytes: [u8; 4] = body
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(bad)?;
    let m = u32::from_le_bytes(len_bytes) as usize;
    let meta_bytes = body.get(4..4 + m).ok_or_else(bad)?;
    let meta = serde_json::from_slice(meta_bytes)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    Ok((meta, body[4 + m..].to_vec()))
}

async fn persist(dir: PathBuf, meta: SnapshotMeta, data: SnapshotData) -> io::Result<()> {
    tokio::task::spawn_blocking(move || {
        let body = encode_snapshot(&meta, &data)?;
        state_file::write(&dir, SNAPSHOT_FILE, &body)
    })
    .await
    .map_err(io::Error::other)?
}

impl StateMachine {
    /// Loads the last snapshot from `state_dir` (if any) into the handler.
    pub fn open(handler: Arc<dyn ApplyHandler>, state_dir: impl Into<PathBuf>) -> io::Result<Self> {
        let dir = state_dir.into();
        std::fs::create_dir_all(&dir)?;
        let mut state = State::default();
        if let Some(body) = state_file::read(&dir, SNAPSHOT_FILE)? {
            let (meta, data) = decode_snapshot(&body)?;
            handler.restore(&data).map_err(apply_err)?;
            state.last_applied = meta.last_log_id;
            state.membership = meta.last_membership.clone();
            state.current = Some((meta, data));
        }
        Ok(StateMachine {
            inner: Arc::new(Inner {
                handler,
                dir,
                state: Mutex::new(state),
            }),
        })
    }

    /// The last log id applied.
    pub fn last_applied(&self) -> Option<LogId> {
        self.inner.state.lock().last_applied
    }
}

impl RaftSnapshotBuilder<C> for StateMachine {
    type SnapshotData = SnapshotData;

    async fn build_snapshot(&mut self) -> Result<Snapshot, io::Error> {
        let (meta, data) = {
            let state = self.inner.state.lock();
            let data = self.inner.handler.snapshot().map_err(apply_err)?;
            let meta = SnapshotMeta {
                last_log_id: state.last_applied,
                last_membership: state.membership.clone(),
            };
            (meta, data)
        };
        let span = tracing::debug_span!(
            "raft_build_snapshot",
            lsn = meta.last_log_id.map(|l| l.index),
            bytes = data.len()
        );
        persist(self.inner.dir.clone(), meta.clone(), data.clone())
            .instrument(span)
            .await?;
        self.inner.state.lock().current = Some((meta.clone(), data.clone()));
        Ok(openraft::Snapshot {
            meta,
            snapshot: data,
        })
    }
}

impl RaftStateMachine<C> for StateMachine {
    type SnapshotData = SnapshotData;
    type SnapshotBuilder = Self;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), io::Error> {
        let state = self.inner.state.lock();
        Ok((state.last_applied, state.membership.clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<C>, io::Error>> + Unpin + OptionalSend,
    {
        while let Some(item) = entries.next().await {
            let (entry, responder) = item?;
            let lid = entry.log_id();
            {
                let mut state = self.inner.state.lock();
                match &entry.payload {
                    EntryPayload::Blank => {}
                    EntryPayload::Write(w) => {
                        let applied = AppliedEntry {
                            lsn: lid.index,
                            term: lid.leader_id.term,
                            hlc: HlcTimestamp(w.hlc),
                            op: w.op,
                            collection: &w.collection,
                            doc_id: &w.doc_id,
                            txn_id: w.txn_id,
                            payload: &w.payload,
                        };
                        self.inner.handler.apply(&applied).map_err(|e| {
                            tracing::error!(lsn = lid.index, error = %e, "apply failed; stopping");
                            apply_err(e)
                        })?;
                    }
                    EntryPayload::Membership(m) => {
                        state.membership = StoredMembership::new(Some(lid), m.clone());
                    }
                }
                state.last_applied = Some(lid);
            }
            if let Some(r) = responder {
                r.send(lid.index);
            }
        }
        Ok(())
    }

    async fn try_create_snapshot_builder(&mut self, force: bool) -> Option<Self::SnapshotBuilder> {
        // `force` is false for openraft's own schedule (every 5000 entries by default).
        (force || self.inner.handler.supports_snapshots()).then(|| self.clone())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: SnapshotData,
    ) -> Result<(), io::Error> {
        let span = tracing::info_span!(
            "raft_install_snapshot",
            lsn = meta.last_log_id.map(|l| l.index)
        );
        persist(self.inner.dir.clone(), meta.clone(), snapshot.clone())
            .instrument(span)
            .await?;
        let mut state = self.inner.state.lock();
        self.inner.handler.restore(&snapshot).map_err(apply_err)?;
        state.last_applied = meta.last_log_id;
        state.membership = meta.last_membership.clone();
        state.current = Some((meta.clone(), snapshot));
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, io::Error> {
        let state = self.inner.state.lock();
        Ok(state
            .current
            .clone()
            .map(|(meta, snapshot)| openraft::Snapshot { meta, snapshot }))
    }
}
