//! The Raft log storage, backed by the WAL: the Raft log index *is* the WAL LSN.
//!
//! Entry mapping (docs/FORMAT.md, "Raft entries in the WAL"): the record's `term` and `origin`
//! are the log id's leader id (term, node id); a normal entry is the client's record as is; a
//! blank entry uses operation [`OP_BLANK`]; a membership entry uses [`OP_MEMBERSHIP`] with the
//! membership as JSON in the payload.
//!
//! Durability: the WAL is opened without its own fsync policy. `append` only encodes the entries
//! into the WAL's pending buffer (readable at once) and hands the `IOFlushed` callback to one
//! flusher thread, which takes every queued callback, runs one `Wal::sync` (fdatasync) for the
//! whole group, and completes the callbacks in submission order. The tokio runtime never waits
//! on an fsync: votes, truncation and purging run their file work in `spawn_blocking`.
//!
//! Small state lives beside the WAL in `state_file`s: `vote` (durable before `save_vote`
//! returns), `purged` (written before any segment is deleted) and `committed`. `committed` is a
//! hint: the flusher persists the newest value once the log is durable up to it, at most every
//! 100 ms and when the store closes, so after a crash it may be older than what was committed.
//! That is safe because leader restore is off (see `node.rs`) and a restarted node only uses it
//! to re-apply a prefix that is certainly committed.

use std::collections::HashMap;
use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;

use bytes::Bytes;
use openraft::storage::{IOFlushed, LogState, RaftLogStorage};
use openraft::{OptionalSend, RaftLogReader};
use parking_lot::Mutex;
use tokio::sync::oneshot;
use tracing::Instrument;

use super::health::{record_bytes, AppendTracker};
use super::state_file;
use super::tail_cache::{TailCache, DEFAULT_TAIL_CACHE_BYTES};
use super::types::{
    log_id, ClientWrite, Entry, EntryPayload, LogId, Vote, C, OP_BLANK, OP_MEMBERSHIP,
};
use crate::clock::HlcTimestamp;
use crate::wal::{NewRecord, Operation, Record, Wal, WalError};
use crate::Lsn;

const VOTE_FILE: &str = "vote";
const COMMITTED_FILE: &str = "committed";
/// Least time between two writes of the `committed` hint file.
const COMMITTED_HINT_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);
const PURGED_FILE: &str = "purged";
/// openraft's log starts at index 0 (the membership written by `initialize`), but LSNs start at
/// 1, so that single entry lives in this state file instead of the WAL.
const ENTRY0_FILE: &str = "entry0";

/// Cloneable handle to the WAL-backed Raft log; clones share everything. It is also its own
/// `LogReader`.
#[derive(Clone)]
pub struct WalLogStore {
    shared: Arc<Shared>,
}

struct Shared {
    wal: Wal,
    state_dir: PathBuf,
    meta: Mutex<Meta>,
    flush_tx: Mutex<Option<mpsc::Sender<FlushMsg>>>,
    flusher: Mutex<Option<JoinHandle<()>>>,
    /// Proposals of this node waiting for their entry to be durable (the ASYNC ack), by request
    /// id. A slot learns its log id in `append`; truncation removes the slots it discards.
    acks: Mutex<HashMap<u64, AckSlot>>,
    /// When each recent entry was appended and how many bytes it holds (follower lag; see
    /// `health.rs`).
    appends: Arc<AppendTracker>,
    /// The newest entries, so reads right after an append skip the WAL (see `tail_cache.rs`).
    /// Lock order: after `meta` when both are held (they never are today).
    tail: Mutex<TailCache>,
    /// `wal_retention_segments`: how many whole WAL segments behind a Raft purge point stay on
    /// disk. 0 keeps every segment: openraft's purge then only moves the purge point.
    retention_segments: AtomicU64,
}

struct AckSlot {
    tx: oneshot::Sender<LogId>,
    appended_as: Option<LogId>,
}

#[derive(Default)]
struct Meta {
    vote: Option<Vote>,
    committed: Option<LogId>,
    purged: Option<LogId>,
    /// The entry at index 0, if the log has one (see `ENTRY0_FILE`).
    entry0: Option<Entry>,
    /// Id of the last entry in the log, or `purged` when the log is empty.
    last: Option<LogId>,
}

enum FlushMsg {
    Append {
        callback: IOFlushed<C>,
        acks: Vec<(u64, LogId)>,
    },
    Committed,
    Stop,
}

fn io_err(e: WalError) -> io::Error {
    io::Error::other(e)
}

impl WalLogStore {
    /// Wraps an open WAL. `state_dir` holds the small state files (created if missing). The WAL
    /// should be opened with `Durability::None`: this store issues the fsyncs itself.
    pub fn open(wal: Wal, state_dir: impl Into<PathBuf>) -> io::Result<Self> {
        let state_dir = state_dir.into();
        std::fs::create_dir_all(&state_dir)?;
        let vote = state_file::read_json::<Vote>(&state_dir, VOTE_FILE)?;
        let committed = state_file::read_json::<LogId>(&state_dir, COMMITTED_FILE)?;
        let purged = state_file::read_json::<LogId>(&state_dir, PURGED_FILE)?;
        let entry0 = state_file::read_json::<Entry>(&state_dir, ENTRY0_FILE)?;
        let purged_next = purged.map_or(0, |p| p.index + 1);
        if purged_next > wal.last_lsn() + 1 {
            // A crash between recording a purge beyond the log and resetting the WAL.
            wal.reset_to(purged_next).map_err(io_err)?;
        }
        let last_lsn = wal.last_lsn();
        let last = if last_lsn >= wal.first_lsn().max(purged_next) && last_lsn > 0 {
            let rec = wal
                .read_range(last_lsn, last_lsn + 1)
                .map_err(io_err)?
                .next()
                .ok_or_else(|| io::Error::other("WAL lost its last record while opening"))?
                .map_err(io_err)?;
            Some(log_id(rec.term, rec.lsn))
        } else if purged.is_none() {
            entry0.as_ref().map(|e| e.log_id)
        } else {
            purged
        };
        let (tx, rx) = mpsc::channel();
        let shared = Arc::new(Shared {
            wal,
            state_dir,
            meta: Mutex::new(Meta {
                vote,
                committed,
                purged,
                entry0,
                last,
            }),
            flush_tx: Mutex::new(Some(tx)),
            flusher: Mutex::new(None),
            acks: Mutex::new(HashMap::new()),
            appends: Arc::new(AppendTracker::new()),
            tail: Mutex::new(TailCache::new(DEFAULT_TAIL_CACHE_BYTES)),
            retention_segments: AtomicU64::new(0),
        });
        let weak = Arc::downgrade(&shared);
        let wal = shared.wal.clone();
        let handle = std::thread::Builder::new()
            .name("raft-log-flush".into())
            .spawn(move || flusher(wal, rx, weak))?;
        *shared.flusher.lock() = Some(handle);
        Ok(WalLogStore { shared })
    }

    /// Sets how many WAL segments behind a Raft purge point are kept (`wal_retention_segments`;
    /// 0, the default, keeps every segment). openraft purges its log behind each snapshot; the
    /// records stay readable in the WAL (for CDC, PITR, archiving) until retention lets go.
    pub fn set_retention_segments(&self, segments: u64) {
        self.shared
            .retention_segments
            .store(segments, Ordering::Relaxed);
    }

    /// The WAL this store writes to.
    pub fn wal(&self) -> &Wal {
        &self.shared.wal
    }

    /// Where the small state files live.
    pub fn state_dir(&self) -> &Path {
        &self.shared.state_dir
    }

    /// Id of the last log entry (or of the last purged one when the log is empty).
    pub fn last_log_id(&self) -> Option<LogId> {
        self.shared.meta.lock().last
    }

    /// Append times and sizes of recent entries (for follower lag).
    pub(crate) fn appends(&self) -> &Arc<AppendTracker> {
        &self.shared.appends
    }

    /// Registers a proposal: the receiver gets the entry's log id once it is durable in this
    /// node's log. It is dropped (the receiver sees an error) if the entry is truncated away.
    pub(crate) fn register_ack(&self, request_id: u64) -> oneshot::Receiver<LogId> {
        let (tx, rx) = oneshot::channel();
        self.shared.acks.lock().insert(
            request_id,
            AckSlot {
                tx,
                appended_as: None,
            },
        );
        rx
    }

    pub(crate) fn unregister_ack(&self, request_id: u64) {
        self.shared.acks.lock().remove(&request_id);
    }

    /// Stops the flusher after it has completed what was queued, syncs and closes the WAL.
    /// Call after the Raft node is shut down.
    pub fn close(&self) -> io::Result<()> {
        if let Some(tx) = self.shared.flush_tx.lock().take() {
            let _ = tx.send(FlushMsg::Stop);
        }
        if let Some(h) = self.shared.flusher.lock().take() {
            let _ = h.join();
        }
        let wal = &self.shared.wal;
        if !wal.is_closed() {
            let synced = wal.sync();
            wal.close().map_err(io_err)?;
            synced.map_err(io_err)?;
        }
        Ok(())
    }

    fn send(&self, msg: FlushMsg) -> io::Result<()> {
        match &*self.shared.flush_tx.lock() {
            Some(tx) => tx
                .send(msg)
                .map_err(|_| io::Error::other("the log flusher thread has stopped")),
            None => Err(io::Error::other("the log store is closed")),
        }
    }
}

/// The flusher thread: group fsync, then in-order completion.
fn flusher(wal: Wal, rx: mpsc::Receiver<FlushMsg>, shared: std::sync::Weak<Shared>) {
    let mut persisted_committed: Option<LogId> = None;
    let mut last_hint: Option<std::time::Instant> = None;
    let mut stop = false;
    while !stop {
        let Ok(first) = rx.recv() else { break };
        let mut batch = vec![first];
        while let Ok(m) = rx.try_recv() {
            batch.push(m);
        }
        let _span = tracing::debug_span!("raft_log_flush", entries = batch.len()).entered();
        let result = wal.sync().map_err(|e| e.to_string());
        if let Err(e) = &result {
            tracing::error!(error = %e, "raft log fsync failed; the node will stop");
        }
        let Some(shared) = shared.upgrade() else {
            break;
        };
        for msg in batch {
            match msg {
                FlushMsg::Append { callback, acks } => {
                    if result.is_ok() {
                        let mut slots = shared.acks.lock();
                        for (rid, lid) in acks {
                            if slots.get(&rid).is_some_and(|s| s.appended_as == Some(lid)) {
                                if let Some(slot) = slots.remove(&rid) {
                                    let _ = slot.tx.send(lid);
                                }
                            }
                        }
                    }
                    callback.io_completed(result.clone().map_err(io::Error::other));
                }
                FlushMsg::Committed => {}
                FlushMsg::Stop => stop = true,
            }
        }
        // The committed hint, persisted only once the log is durable up to it, and at most
        // every COMMITTED_HINT_INTERVAL: it is a whole-file atomic replace (create, fsync,
        // rename, directory fsync), which on every flush group cost more than the log's own
        // fdatasync. An older hint is always safe (see the module documentation).
        let committed = shared.meta.lock().committed;
        let due = stop || last_hint.is_none_or(|t| t.elapsed() >= COMMITTED_HINT_INTERVAL);
        if result.is_ok() && due && committed != persisted_committed {
            last_hint = Some(std::time::Instant::now());
            if let Some(c) = committed.filter(|c| c.index <= wal.durable_lsn()) {
                match state_file::write_json(&shared.state_dir, COMMITTED_FILE, &c) {
                    Ok(()) => persisted_committed = Some(c),
                    Err(e) => tracing::warn!(error = %e, "could not persist the committed log id"),
                }
            }
        }
    }
}

// Format: a Raft entry as a WAL record (see docs/FORMAT.md, "Raft entries in the WAL")
//   term   = log_id.leader_id.term        origin = the proposing leader (writes; 0 otherwise)
//   LSN    = log_id.index (assigned by the WAL; checked to match)
//   normal:     the client's op / collection / doc id / txn id / payload / hlc
//   blank:      op = OP_BLANK (250), empty collection, doc id and payload
//   membership: op = OP_MEMBERSHIP (251), payload = the membership as JSON
fn entry_to_record(e: &Entry) -> io::Result<NewRecord> {
    let lid = e.log_id;
    let mut rec = NewRecord::new(Operation::Other(OP_BLANK), "", "", Bytes::new());
    rec.term = lid.leader_id.term;
    match &e.payload {
        EntryPayload::Blank => {}
        EntryPayload::Write(w) => {
            rec.op = w.op;
            rec.collection = w.collection.clone();
            rec.doc_id = w.doc_id.clone();
            rec.payload = w.payload.clone();
            rec.txn_id = w.txn_id;
            rec.hlc = HlcTimestamp(w.hlc);
            rec.origin = w.origin;
        }
        EntryPayload::Membership(m) => {
            rec.op = Operation::Other(OP_MEMBERSHIP);
            rec.payload = Bytes::from(serde_json::to_vec(m).map_err(io::Error::other)?);
        }
    }
    Ok(rec)
}

fn record_to_entry(r: Record) -> io::Result<Entry> {
    let payload = match r.op {
        Operation::Other(OP_BLANK) => EntryPayload::Blank,
        Operation::Other(OP_MEMBERSHIP) => {
            EntryPayload::Membership(serde_json::from_slice(&r.payload).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("membership record at LSN {} does not decode: {e}", r.lsn),
                )
            })?)
        }
        op => EntryPayload::Write(ClientWrite {
            op,
            collection: r.collection.into(),
            doc_id: r.doc_id.into(),
            payload: r.payload,
            txn_id: r.txn_id,
            hlc: r.hlc.0,
            origin: r.origin,
            request_id: 0,
        }),
    };
    Ok(openraft::Entry {
        log_id: log_id(r.term, r.lsn),
        payload,
    })
}

/// Decodes the WAL's records `start..end` (nothing if the range is empty) into `out`.
fn read_wal(wal: &Wal, start: Lsn, end: Lsn, out: &mut Vec<Entry>) -> io::Result<()> {
    if start >= end {
        return Ok(());
    }
    for r in wal.read_range(start, end).map_err(io_err)? {
        out.push(record_to_entry(r.map_err(io_err)?)?);
    }
    Ok(())
}

fn bounds(range: &impl RangeBounds<u64>) -> (Lsn, Lsn) {
    let start = match range.start_bound() {
        Bound::Included(x) => *x,
        Bound::Excluded(x) => x.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(x) => x.saturating_add(1),
        Bound::Excluded(x) => *x,
        Bound::Unbounded => u64::MAX,
    };
    (start, end)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| io::Error::other(format!("blocking task failed: {e}")))?
}

impl RaftLogReader<C> for WalLogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        let (start, end) = bounds(&range);
        let wal = &self.shared.wal;
        let mut out = Vec::new();
        let purged_next = {
            let m = self.shared.meta.lock();
            if start == 0 && end > 0 && m.purged.is_none() {
                out.extend(m.entry0.clone());
            }
            m.purged.map_or(0, |p| p.index + 1)
        };
        let start = start.max(purged_next).max(wal.first_lsn()).max(1);
        let end = end.min(wal.last_lsn() + 1);
        if start >= end {
            return Ok(out);
        }
        let _span = tracing::trace_span!("raft_log_read", start, end).entered();
        // Entries come from the cache where it has them, else from the WAL: before the cache
        // (older entries) and after it (appended to the WAL by an `append` still running,
        // which fills the cache only once the WAL has them).
        let mut next = start;
        let first_cached = self.shared.tail.lock().first_cached();
        let older_end = first_cached.map_or(end, |f| f.clamp(start, end));
        read_wal(wal, next, older_end, &mut out)?;
        next = out.last().map_or(next, |e| e.log_id.index + 1).max(next);
        self.shared.tail.lock().read(next, end, &mut out);
        next = out.last().map_or(next, |e| e.log_id.index + 1).max(next);
        read_wal(wal, next, end, &mut out)?;
        Ok(out)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        Ok(self.shared.meta.lock().vote)
    }
}

impl RaftLogStorage<C> for WalLogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<C>, io::Error> {
        let m = self.shared.meta.lock();
        Ok(LogState {
            last_purged_log_id: m.purged,
            last_log_id: m.last.or(m.purged),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        let span = tracing::debug_span!("raft_save_vote", term = vote.leader_id.term);
        let dir = self.shared.state_dir.clone();
        let v = *vote;
        blocking(move || state_file::write_json(&dir, VOTE_FILE, &v))
            .instrument(span)
            .await?;
        self.shared.meta.lock().vote = Some(v);
        Ok(())
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        self.shared.meta.lock().committed = committed;
        self.send(FlushMsg::Committed)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        let m = self.shared.meta.lock();
        // A crash can lose a log tail that the committed hint already covered (the tail is
        // committed on a quorum, just not here): never claim more than the local log holds.
        Ok(match (m.committed, m.last) {
            (Some(c), Some(l)) if c.index > l.index => Some(l),
            (Some(_), None) => None,
            (c, _) => c,
        })
    }

    async fn append<I>(&mut self, entries: I, callback: IOFlushed<C>) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut records = Vec::new();
        let mut acks = Vec::new();
        let mut first = None;
        let mut last = None;
        let mut bytes = 0;
        let mut cached = Vec::new();
        for mut e in entries {
            if e.log_id.index == 0 {
                let dir = self.shared.state_dir.clone();
                let e0 = e.clone();
                blocking(move || state_file::write_json(&dir, ENTRY0_FILE, &e0)).await?;
                let mut m = self.shared.meta.lock();
                m.entry0 = Some(e.clone());
                m.last = Some(e.log_id);
                continue;
            }
            let rec = entry_to_record(&e)?;
            bytes += record_bytes(&rec);
            records.push(rec);
            if let EntryPayload::Write(w) = &mut e.payload {
                if w.request_id != 0 {
                    acks.push((w.request_id, e.log_id));
                }
                // As if read back from the WAL: the id only matters to this append.
                w.request_id = 0;
            }
            first.get_or_insert(e.log_id.index);
            last = Some(e.log_id);
            cached.push(e);
        }
        if let (Some(first), Some(last)) = (first, last) {
            let wal = &self.shared.wal;
            let expected = wal.last_lsn() + 1;
            if first != expected {
                return Err(io::Error::other(format!(
                    "raft append at index {first} but the WAL's next LSN is {expected}: the log \
                     would get a hole or an overlap"
                )));
            }
            let _span = tracing::debug_span!("raft_log_append", first, last = last.index).entered();
            wal.append_batch(&records).map_err(io_err)?;
            self.shared.tail.lock().extend(cached);
            self.shared.meta.lock().last = Some(last);
            self.shared.appends.record(first, last.index, bytes);
            let mut slots = self.shared.acks.lock();
            for (rid, lid) in &acks {
                if let Some(slot) = slots.get_mut(rid) {
                    slot.appended_as = Some(*lid);
                }
            }
        }
        self.send(FlushMsg::Append { callback, acks })
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        let purged = self.shared.meta.lock().purged;
        let keep = last_log_id.or(purged).map_or(0, |l| l.index);
        let span = tracing::debug_span!("raft_log_truncate", keep);
        // Before the WAL, so the cache never holds an entry the log no longer has.
        self.shared.tail.lock().truncate_after(keep);
        let wal = self.shared.wal.clone();
        if keep < wal.last_lsn() {
            blocking(move || wal.truncate_after(keep).map_err(io_err))
                .instrument(span)
                .await?;
        }
        if last_log_id.is_none() && purged.is_none() {
            let dir = self.shared.state_dir.clone();
            blocking(move || match std::fs::remove_file(dir.join(ENTRY0_FILE)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            })
            .await?;
            self.shared.meta.lock().entry0 = None;
        }
        self.shared.meta.lock().last = last_log_id.or(purged);
        self.shared.appends.truncate_after(keep);
        self.shared
            .acks
            .lock()
            .retain(|_, s| s.appended_as.is_none_or(|l| l.index <= keep));
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        let span = tracing::debug_span!("raft_log_purge", upto = log_id.index);
        // Record the purge point first: if we crash before the segments go, the extra records
        // below it are simply never read.
        let dir = self.shared.state_dir.clone();
        blocking(move || state_file::write_json(&dir, PURGED_FILE, &log_id))
            .instrument(span.clone())
            .await?;
        self.shared.tail.lock().purge_upto(log_id.index);
        {
            let mut m = self.shared.meta.lock();
            m.purged = Some(log_id);
            if m.last.is_none_or(|l| l.index <= log_id.index) {
                m.last = Some(log_id);
            }
        }
        let wal = self.shared.wal.clone();
        let keep = self.shared.retention_segments.load(Ordering::Relaxed);
        blocking(move || {
            if log_id.index > wal.last_lsn() {
                // A snapshot beyond our log was installed: nothing we hold continues it.
                wal.reset_to(log_id.index + 1).map_err(io_err)
            } else if keep == 0 {
                // Retention 0 keeps every segment; reads below the purge point never come.
                Ok(())
            } else {
                wal.purge_before_keeping(log_id.index + 1, keep as usize)
                    .map(|_| ())
                    .map_err(io_err)
            }
        })
        .instrument(span)
        .await
    }
}
