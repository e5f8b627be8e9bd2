//! `Wal`: appends with group commit, segment rotation, truncation and purging.
//!
//! Concurrency design. Two locks, always taken in the order `io` then `state`:
//! - `state` is held only for the short, CPU-only part of an append: assign LSNs and encode
//!   the records into the open (not yet framed) buffer. No I/O happens under it except in
//!   `truncate_after`, which must stop appenders anyway.
//! - `io` serialises everything that touches files. Whoever holds it frames *all* open
//!   records (one frame per write-out group, compressed once, outside the `state` lock),
//!   writes them (one `pwrite` per segment touched) and, for durable appends, issues one
//!   fdatasync for the whole group. Appenders that queued behind it usually find their records
//!   already durable when they get the lock: that is the group commit.
//!
//! Why frames are built at write-out and not per append: under load many appends arrive
//! during one fdatasync, and compressing them together is both smaller and several times
//! cheaper per byte than compressing each append alone (zstd's per-call setup dominates small
//! inputs). It also moves compression off the appender (for the Raft log: off openraft's core
//! task) onto whoever writes out.
//!
//! Segment metadata (`segments`) is updated only after bytes are in the file, so readers
//! never look for a frame that is not there yet.

use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::{Condvar, Mutex, RwLock};

use super::error::{Result, WalError};
use super::format::{
    segment_file_name, FrameHeader, SegmentHeader, SEGMENT_FLAG_RESET, SEGMENT_HEADER_LEN,
};
use super::frame::{
    decode_frame, encode_frame, encode_raw_frame, read_frame, EncodedFrame, FrameRead,
    ZEROED_HEADER_IN_DATA,
};
use super::reader::WalIter;
use super::record::{self, NewRecord, Record};
use super::recovery::{create_segment, recover, DirLock};
use super::segment::{scan_segment, SegmentMeta, READ_BUFFER_BYTES};
use super::zero_fill::{self, write_back_range, AHEAD_BYTES, LOW_WATER_BYTES, PIECE_BYTES};
use super::{Durability, WalOptions};
use crate::clock::HlcTimestamp;
use crate::Lsn;

/// Pending bytes beyond which a non-durable appender writes them out itself, so memory stays
/// bounded when nobody syncs.
const FLUSH_THRESHOLD_BYTES: usize = 1 << 20;

/// Handle to an open WAL. Cheap to clone; all clones share one log. Thread-safe.
#[derive(Clone)]
pub struct Wal {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) opts: WalOptions,
    state: Mutex<AppendState>,
    /// Shared with the zero-fill thread, which needs nothing else (see `zero_fill.rs`).
    io: Arc<Mutex<IoState>>,
    /// Segments in LSN order; the last one is the active (appended-to) segment.
    pub(crate) segments: RwLock<Vec<SegmentMeta>>,
    /// Every LSN <= this is in a segment file. Invariant: written <= last assigned.
    written_lsn: AtomicU64,
    /// Every LSN <= this is covered by a completed fdatasync. Invariant: durable <= written.
    durable_lsn: AtomicU64,
    /// Set after a failed write or fsync; the WAL then refuses writes (see `WalError::Poisoned`).
    failure: Mutex<Option<String>>,
    /// `failure.is_some()`, readable without a lock on every append.
    poisoned: AtomicBool,
    closed: AtomicBool,
    /// Group commit: whether an appender is leading a durable write-out, and the condition
    /// variable its followers sleep on (see `wait_durable`).
    group_commit: (Mutex<bool>, Condvar),
    /// Tells the interval-sync thread to exit. Shared separately so the thread can wait on it
    /// without keeping the WAL (and its directory lock) alive.
    interval_stop: Arc<(Mutex<bool>, Condvar)>,
    /// Wakes the zero-fill thread (see `zero_fill.rs`); unused when the option is off.
    zero_fill: Arc<zero_fill::Signal>,
    /// Released by `close()` so the directory can be reopened even while iterators (which
    /// keep `Inner` alive) linger.
    dir_lock: Mutex<Option<DirLock>>,
}

struct AppendState {
    /// LSN the next appended record gets.
    next_lsn: Lsn,
    /// Appended records not yet framed, oldest first, each group within `open_frame_limit`
    /// (except a single larger batch): what the next write-out frames. LSNs run on from the
    /// frames in `pending`.
    open: Vec<OpenFrame>,
    /// Emptied `OpenFrame::raw` buffers, reused.
    spare_raw: Vec<Vec<u8>>,
    /// Id and logical length (written + pending bytes) of the segment being appended to.
    active_id: u64,
    active_len: u64,
    pending: Vec<PendingChunk>,
    pending_bytes: usize,
    /// Buffers of written chunks, kept to avoid reallocating a megabyte per group.
    spare: Vec<Vec<u8>>,
}

/// Records of one future frame: their encodings back to back, as `record::encode_into` wrote
/// them. A batch is never split between two open frames, so a frame stays all-or-none for
/// every batch in it.
struct OpenFrame {
    first_lsn: Lsn,
    record_count: u32,
    max_hlc: u64,
    raw: Vec<u8>,
}

/// An open frame's encoded bytes reach this size before later appends start another frame:
/// large enough to compress well, small enough to bound the work of one frame. Small segments
/// lower it (see `open_frame_limit`).
const OPEN_FRAME_BYTES: usize = 1 << 20;

/// Largest open frame for segments of `segment_size` bytes: an eighth of a segment, so that
/// segments still rotate near their configured size (a frame never spans two segments).
fn open_frame_limit(segment_size: u64) -> usize {
    (segment_size / 8).clamp(1, OPEN_FRAME_BYTES as u64) as usize
}

/// Bytes waiting to be written to one segment.
struct PendingChunk {
    segment_id: u64,
    /// `Some(first_lsn)` when the chunk starts a new segment (its bytes begin with the header).
    creates_segment: Option<Lsn>,
    /// File offset of `bytes[0]`.
    offset: u64,
    bytes: Vec<u8>,
    /// Offset and header of each frame in the chunk, to index them once written.
    frames: Vec<(u64, FrameHeader)>,
}

#[derive(Default)]
pub(super) struct IoState {
    dir: PathBuf,
    /// Write handle of the active segment.
    active: Option<(u64, Arc<File>)>,
    /// Files written since the last fdatasync.
    /// Ids of segments written since the last fdatasync. Ids, not handles: under
    /// `Durability::None` this list only grows until someone syncs, and holding a descriptor per
    /// old segment would keep purged files' space and dirty pages alive.
    unsynced: Vec<u64>,
    /// A segment file was created or removed since the directory was last fsynced.
    dir_unsynced: bool,
    /// Where the active segment's data ends and its zero fill reaches.
    fill: FillState,
}

/// What the zero-fill thread needs to know about the active segment (see `zero_fill.rs`).
#[derive(Default)]
pub(super) struct FillState {
    /// Changes whenever `IoState::active` is replaced, so the filler never writes through a
    /// descriptor of a file that is no longer the active segment.
    generation: u64,
    /// Bytes of header and frames in the active segment file.
    data_end: u64,
    /// Bytes below this offset are allocated (data or zeros); past `data_end` they are zeros.
    zeroed_to: u64,
}

impl IoState {
    /// Makes `file` the active segment, `data_end` bytes long (header and frames).
    fn set_active(&mut self, id: u64, file: Arc<File>, data_end: u64) {
        self.active = Some((id, file));
        self.fill.generation += 1;
        self.fill.data_end = data_end;
        self.fill.zeroed_to = data_end;
    }
}

/// One round of the zero-fill thread: writes zeros past the active segment's last frame until
/// `AHEAD_BYTES` are ready (or the segment size is reached), then commits them.
///
/// The filler writes through its own descriptor, never the appenders': Linux reports a
/// writeback error once per open file description, so an error the filler's fdatasync
/// consumed still reaches the appenders' next fdatasync, which poisons the WAL.
pub(super) fn zero_fill_round(io: &Mutex<IoState>, stop: &zero_fill::Signal, segment_size: u64) {
    static ZEROS: [u8; PIECE_BYTES] = [0; PIECE_BYTES];
    // The filler's own descriptor, opened per round (so it never holds a sealed or purged
    // segment open) and keyed by `FillState::generation`.
    let mut own: Option<(u64, File)> = None;
    let own = &mut own;
    let mut wrote = false;
    loop {
        let (from, len) = {
            let mut io = io.lock();
            if stop.is_stopped() {
                return;
            }
            let Some((id, _)) = io.active else { return };
            let generation = io.fill.generation;
            if own.as_ref().is_none_or(|(g, _)| *g != generation) {
                if wrote {
                    break; // commit what went to the previous file first
                }
                let path = io.dir.join(segment_file_name(id));
                match OpenOptions::new().write(true).open(&path) {
                    Ok(f) => *own = Some((generation, f)),
                    Err(e) => {
                        tracing::warn!(path = %path.display(), error = %e, "WAL zero fill skipped");
                        return;
                    }
                }
            }
            let file = &own.as_ref().expect("opened above").1;
            let f = &mut io.fill;
            let limit = (f.data_end + AHEAD_BYTES).min(segment_size);
            let from = f.zeroed_to.max(f.data_end);
            if from >= limit {
                break;
            }
            let len = (limit - from).min(PIECE_BYTES as u64);
            if let Err(e) = file.write_all_at(&ZEROS[..len as usize], from) {
                // Zeros are only an optimisation (ENOSPC, say): give up on this segment.
                tracing::warn!(segment = id, error = %e, "WAL zero fill stopped");
                f.zeroed_to = segment_size;
                break;
            }
            f.zeroed_to = from + len;
            (from, len)
        };
        wrote = true;
        let file = &own.as_ref().expect("set while locked").1;
        if let Err(e) = write_back_range(file, from, len) {
            tracing::warn!(error = %e, "WAL zero fill write-back failed");
            return;
        }
    }
    if let (true, Some((_, file))) = (wrote, own.as_ref()) {
        // Commits the block allocation, so appenders' fdatasyncs find nothing but data to flush.
        if let Err(e) = file.sync_data() {
            tracing::warn!(error = %e, "WAL zero fill fdatasync failed");
        }
    }
}

thread_local! {
    /// Reused per thread to encode frames without allocating per append.
    static ENCODE_SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

impl Wal {
    /// Opens (creating if needed) the WAL in `opts.dir`, running recovery: verifies every
    /// frame, truncates a torn tail when `opts.recovery_mode` allows, and fails with the file
    /// and offset of any other damage.
    pub fn open(opts: WalOptions) -> Result<Wal> {
        opts.check()?;
        let recovered = recover(&opts)?;
        let last = recovered
            .segments
            .last()
            .expect("recovery leaves a segment");
        let (active_id, active_len, next_lsn) = (last.id, last.len, last.next_lsn);
        let active_file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&last.path)
            .map_err(|e| WalError::io(&last.path, e))?;
        // What an earlier process wrote may still be only in the page cache; make it durable
        // so that `durable_lsn` can honestly start at the last LSN.
        active_file
            .sync_data()
            .map_err(|e| WalError::io(&last.path, e))?;
        let file_len = active_file
            .metadata()
            .map_err(|e| WalError::io(&last.path, e))?
            .len();
        let inner = Arc::new(Inner {
            state: Mutex::new(AppendState {
                next_lsn,
                open: Vec::new(),
                spare_raw: Vec::new(),
                active_id,
                active_len,
                pending: Vec::new(),
                pending_bytes: 0,
                spare: Vec::new(),
            }),
            io: Arc::new(Mutex::new(IoState {
                dir: opts.dir.clone(),
                active: Some((active_id, Arc::new(active_file))),
                unsynced: Vec::new(),
                dir_unsynced: false,
                fill: FillState {
                    generation: 0,
                    data_end: active_len,
                    zeroed_to: file_len,
                },
            })),
            segments: RwLock::new(recovered.segments),
            written_lsn: AtomicU64::new(next_lsn - 1),
            durable_lsn: AtomicU64::new(next_lsn - 1),
            failure: Mutex::new(None),
            poisoned: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            group_commit: (Mutex::new(false), Condvar::new()),
            interval_stop: Arc::new((Mutex::new(false), Condvar::new())),
            zero_fill: Arc::default(),
            dir_lock: Mutex::new(Some(recovered.lock)),
            opts,
        });
        if let Durability::Interval(every) = inner.opts.durability {
            spawn_interval_syncer(Arc::downgrade(&inner), inner.interval_stop.clone(), every);
        }
        if inner.opts.zero_fill_ahead {
            zero_fill::spawn_filler(
                inner.io.clone(),
                inner.zero_fill.clone(),
                inner.opts.segment_size_bytes,
            );
            inner.zero_fill.wake();
        }
        Ok(Wal { inner })
    }

    pub fn options(&self) -> &WalOptions {
        &self.inner.opts
    }

    /// Appends one record; returns its LSN. Durable on return under `Durability::EveryCommit`.
    pub fn append(&self, record: &NewRecord) -> Result<Lsn> {
        self.append_batch(std::slice::from_ref(record))
            .map(|(first, _)| first)
    }

    /// Appends records as one frame (one checksum, compressed together); returns the first and
    /// last LSN assigned. All or none: a failed batch assigns nothing that a reopen returns.
    pub fn append_batch(&self, records: &[NewRecord]) -> Result<(Lsn, Lsn)> {
        let inner = &*self.inner;
        inner.check_writable()?;
        if records.is_empty() {
            return Err(WalError::InvalidRecord(
                "a batch needs at least one record".into(),
            ));
        }
        for (i, r) in records.iter().enumerate() {
            record::validate(r).map_err(|e| WalError::InvalidRecord(format!("record {i}: {e}")))?;
        }
        let raw_len: usize = records.iter().map(record::encoded_len).sum();
        let (first, last, over_threshold) = {
            let mut st = inner.state.lock();
            // Checked again under the lock: a poisoning write-out may have run meanwhile.
            inner.check_writable()?;
            let first = st.next_lsn;
            st.add_open(
                first,
                records,
                raw_len,
                open_frame_limit(inner.opts.segment_size_bytes),
            );
            let last = first + records.len() as u64 - 1;
            st.next_lsn = last + 1;
            st.pending_bytes += raw_len;
            (first, last, st.pending_bytes >= FLUSH_THRESHOLD_BYTES)
        };
        match inner.opts.durability {
            Durability::EveryCommit => inner.wait_durable(last)?,
            Durability::Interval(_) | Durability::None if over_threshold => {
                let mut io = inner.io.lock();
                inner.write_out(&mut io, false)?;
            }
            _ => {}
        }
        Ok((first, last))
    }

    /// Writes everything appended so far and fdatasyncs it, whatever the durability policy.
    pub fn sync(&self) -> Result<()> {
        let inner = &*self.inner;
        inner.check_writable()?;
        let mut io = inner.io.lock();
        inner.write_out(&mut io, true)
    }

    /// Reads records from `lsn` up to the last appended record.
    pub fn read_from(&self, lsn: Lsn) -> Result<WalIter> {
        let end = self.last_lsn() + 1;
        self.read_range(lsn, end)
    }

    /// Reads records with `start <= lsn < end`. `end` may not exceed `last_lsn() + 1`.
    pub fn read_range(&self, start: Lsn, end: Lsn) -> Result<WalIter> {
        let inner = &self.inner;
        inner.check_open()?;
        inner.make_readable(end.saturating_sub(1))?;
        let first = self.first_lsn();
        let last = self.last_lsn();
        if start < first || end > last + 1 || (start > end) {
            let lsn = if start < first || start > end {
                start
            } else {
                end - 1
            };
            return Err(WalError::LsnOutOfRange { lsn, first, last });
        }
        Ok(WalIter::new(self.inner.clone(), start, end))
    }

    /// LSN of the first record at or after HLC timestamp `ts` (the starting point of a
    /// point-in-time replay), or `None` if every record is older.
    pub fn find_lsn_by_timestamp(&self, ts: HlcTimestamp) -> Result<Option<Lsn>> {
        let inner = &self.inner;
        inner.check_open()?;
        inner.make_readable(self.last_lsn())?;
        let segments = inner.segments.read().clone();
        for seg in segments.iter().filter(|s| s.max_hlc() >= ts.0) {
            for (i, block) in seg.index.iter().enumerate() {
                if block.max_hlc < ts.0 {
                    continue;
                }
                let block_end = seg.index.get(i + 1).map_or(seg.len, |n| n.offset);
                if let Some(lsn) = find_in_block(&seg.path, block.offset, block_end, ts)? {
                    return Ok(Some(lsn));
                }
            }
        }
        Ok(None)
    }

    /// Removes every record with LSN > `lsn` (a Raft log conflict). `lsn` may be
    /// `first_lsn() - 1` to remove everything. Durable on return.
    pub fn truncate_after(&self, lsn: Lsn) -> Result<()> {
        self.inner.check_writable()?;
        self.inner.truncate_after(lsn)
    }

    /// Deletes whole segments whose records all have LSN < `lsn` (retention, or after a
    /// snapshot). The active segment is never deleted, so some older records may remain;
    /// `first_lsn()` tells what is left. Returns the number of segments removed.
    pub fn purge_before(&self, lsn: Lsn) -> Result<usize> {
        self.purge_before_keeping(lsn, 0)
    }

    /// Like [`purge_before`](Self::purge_before), but keeps the newest `keep` of the segments
    /// it would delete (a retention window, e.g. `wal_retention_segments`).
    pub fn purge_before_keeping(&self, lsn: Lsn, keep: usize) -> Result<usize> {
        let inner = &*self.inner;
        inner.check_writable()?;
        let mut io = inner.io.lock();
        // Pending bytes may belong to segments not yet created; write them so the list is whole.
        inner.write_out(&mut io, false)?;
        let mut segs = inner.segments.write();
        // The active (last) segment is never deleted.
        let eligible = segs[..segs.len() - 1]
            .iter()
            .take_while(|s| s.next_lsn <= lsn)
            .count();
        let mut removed = 0;
        while removed < eligible.saturating_sub(keep) {
            let seg = segs.remove(0);
            std::fs::remove_file(&seg.path).map_err(|e| WalError::io(&seg.path, e))?;
            removed += 1;
        }
        drop(segs);
        if removed > 0 {
            io.dir_unsynced = true;
            inner.sync_dir(&mut io)?;
        }
        Ok(removed)
    }

    /// Drops every record and makes `next_lsn` the LSN of the next append: what a Raft log does
    /// after installing a snapshot that lies beyond it. Durable on return; crash-safe (a
    /// segment flagged as a reset is created first, the old segments are deleted after, and
    /// recovery finishes an interrupted deletion).
    pub fn reset_to(&self, next_lsn: Lsn) -> Result<()> {
        let inner = &*self.inner;
        inner.check_writable()?;
        if next_lsn == 0 {
            return Err(WalError::InvalidRecord("LSNs start at 1".into()));
        }
        let mut io = inner.io.lock();
        let mut st = inner.state.lock();
        // Open records are dropped with everything else; no need to frame them.
        for o in std::mem::take(&mut st.open) {
            st.recycle_raw(o.raw);
        }
        let chunks = std::mem::take(&mut st.pending);
        st.pending_bytes = 0;
        let result = inner.write_chunks(&mut io, chunks).and_then(|spare| {
            st.recycle(spare);
            inner.reset_files(&mut io, st.active_id + 1, next_lsn)
        });
        match result {
            Ok(meta) => {
                st.next_lsn = next_lsn;
                st.active_id = meta.id;
                st.active_len = meta.len;
                inner.written_lsn.store(next_lsn - 1, Ordering::Release);
                inner.durable_lsn.store(next_lsn - 1, Ordering::Release);
                Ok(())
            }
            Err(e) => {
                inner.poison(&e);
                Err(e)
            }
        }
    }

    /// LSN of the oldest record still held (== `last_lsn() + 1` when the WAL is empty).
    pub fn first_lsn(&self) -> Lsn {
        self.inner
            .segments
            .read()
            .first()
            .map_or(1, |s| s.first_lsn)
    }

    /// LSN of the last appended record (0 when nothing was ever appended).
    pub fn last_lsn(&self) -> Lsn {
        self.inner.state.lock().next_lsn - 1
    }

    /// Every record up to this LSN is in the segment files.
    pub fn written_lsn(&self) -> Lsn {
        self.inner.written_lsn.load(Ordering::Acquire)
    }

    /// Every record up to this LSN has been fdatasynced.
    pub fn durable_lsn(&self) -> Lsn {
        self.inner.durable_lsn.load(Ordering::Acquire)
    }

    /// Number of segment files (after writing out pending records).
    pub fn segment_count(&self) -> Result<usize> {
        self.inner.make_readable(self.last_lsn())?;
        Ok(self.inner.segments.read().len())
    }

    /// Paths of the segment files, oldest first (after writing out pending records).
    pub fn segment_paths(&self) -> Result<Vec<PathBuf>> {
        self.inner.make_readable(self.last_lsn())?;
        Ok(self
            .inner
            .segments
            .read()
            .iter()
            .map(|s| s.path.clone())
            .collect())
    }

    /// Writes and (unless durability is `None`) syncs what is pending, then refuses further
    /// use through any handle. Closing twice is fine.
    pub fn close(&self) -> Result<()> {
        let inner = &*self.inner;
        if inner.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        inner.stop_background_threads();
        if inner.failure.lock().is_some() {
            inner.dir_lock.lock().take();
            return Ok(());
        }
        let mut io = inner.io.lock();
        let result = inner.write_out(&mut io, inner.opts.durability != Durability::None);
        if result.is_ok() {
            inner.trim_zero_fill(&mut io);
        }
        inner.dir_lock.lock().take();
        result
    }

    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }
}

impl AppendState {
    /// Keeps a few emptied chunk buffers for the next appends.
    fn recycle(&mut self, spare: Vec<Vec<u8>>) {
        let room = 4usize.saturating_sub(self.spare.len());
        self.spare.extend(spare.into_iter().take(room));
    }

    /// Adds a sealed frame to the pending bytes, starting a new segment first when the frame
    /// would push a non-empty active segment past the size limit.
    fn push_frame(&mut self, bytes: &[u8], header: FrameHeader, segment_size: u64) {
        let flen = bytes.len() as u64;
        let has_frames = self.active_len > SEGMENT_HEADER_LEN as u64;
        if has_frames && self.active_len + flen > segment_size {
            self.active_id += 1;
            let seg_header = SegmentHeader {
                segment_id: self.active_id,
                first_lsn: header.first_lsn,
                flags: 0,
            };
            let mut buf = self.spare.pop().unwrap_or_default();
            buf.extend_from_slice(&seg_header.encode());
            self.pending.push(PendingChunk {
                segment_id: self.active_id,
                creates_segment: Some(header.first_lsn),
                offset: 0,
                bytes: buf,
                frames: Vec::new(),
            });
            self.pending_bytes += SEGMENT_HEADER_LEN;
            self.active_len = SEGMENT_HEADER_LEN as u64;
        }
        let needs_chunk = self
            .pending
            .last()
            .is_none_or(|c| c.segment_id != self.active_id);
        if needs_chunk {
            let buf = self.spare.pop().unwrap_or_default();
            self.pending.push(PendingChunk {
                segment_id: self.active_id,
                creates_segment: None,
                offset: self.active_len,
                bytes: buf,
                frames: Vec::new(),
            });
        }
        let chunk = self.pending.last_mut().expect("pushed above");
        chunk.bytes.extend_from_slice(bytes);
        chunk.frames.push((self.active_len, header));
        self.active_len += flen;
    }

    /// Encodes a batch (validated, `raw_len` bytes once encoded) into the open frames, its
    /// first record getting `first_lsn`.
    fn add_open(&mut self, first_lsn: Lsn, records: &[NewRecord], raw_len: usize, limit: usize) {
        let start_new = self
            .open
            .last()
            .is_none_or(|o| o.raw.len() + raw_len > limit);
        if start_new {
            let raw = self.spare_raw.pop().unwrap_or_default();
            self.open.push(OpenFrame {
                first_lsn,
                record_count: 0,
                max_hlc: 0,
                raw,
            });
        }
        let o = self.open.last_mut().expect("pushed above");
        o.raw.reserve(raw_len);
        for r in records {
            record::encode_into(r, &mut o.raw);
            o.max_hlc = o.max_hlc.max(r.hlc.0);
        }
        o.record_count += records.len() as u32;
    }

    /// Moves framed open records into `pending`, keeping their buffers for reuse.
    fn push_framed(&mut self, framed: Vec<(OpenFrame, EncodedFrame)>, segment_size: u64) {
        for (open, mut frame) in framed {
            let header = frame.seal(open.first_lsn);
            self.push_frame(&frame.bytes, header, segment_size);
            frame.bytes.clear();
            ENCODE_SCRATCH.with(|s| *s.borrow_mut() = frame.bytes);
            self.recycle_raw(open.raw);
        }
    }

    /// Keeps up to two emptied open-frame buffers for the next appends.
    fn recycle_raw(&mut self, mut raw: Vec<u8>) {
        if self.spare_raw.len() < 2 {
            raw.clear();
            self.spare_raw.push(raw);
        }
    }

    /// Last LSN whose frame is in `pending` or already written: everything before the oldest
    /// open record.
    fn framed_lsn(&self) -> Lsn {
        self.open.first().map_or(self.next_lsn, |o| o.first_lsn) - 1
    }

    /// Bytes of appended records not yet written (the flush threshold's measure).
    fn unwritten_open_bytes(&self) -> usize {
        self.open.iter().map(|o| o.raw.len()).sum()
    }
}

impl Inner {
    /// Frames (and compresses) open record groups; the caller then pushes them in order. A
    /// failure poisons the WAL: the records had LSNs but are now nowhere.
    fn frame_open(&self, open: Vec<OpenFrame>) -> Result<Vec<(OpenFrame, EncodedFrame)>> {
        let mut framed = Vec::with_capacity(open.len());
        for o in open {
            let scratch = ENCODE_SCRATCH.with(|s| std::mem::take(&mut *s.borrow_mut()));
            let frame = encode_raw_frame(
                &o.raw,
                o.record_count,
                o.max_hlc,
                &self.opts.compression,
                scratch,
            )
            .map_err(|e| {
                let e = WalError::io(&self.opts.dir, e);
                self.poison(&e);
                e
            })?;
            framed.push((o, frame));
        }
        Ok(framed)
    }

    pub(crate) fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(WalError::Closed);
        }
        Ok(())
    }

    fn check_writable(&self) -> Result<()> {
        self.check_open()?;
        if self.poisoned.load(Ordering::Acquire) {
            let reason = self.failure.lock().clone().unwrap_or_default();
            return Err(WalError::Poisoned(reason));
        }
        Ok(())
    }

    fn poison(&self, err: &WalError) {
        let mut f = self.failure.lock();
        if f.is_none() {
            tracing::error!(dir = %self.opts.dir.display(), error = %err, "WAL write failed; refusing further writes");
            *f = Some(err.to_string());
            self.poisoned.store(true, Ordering::Release);
        }
    }

    /// Blocks until `lsn` is durable, leading a group fdatasync when nobody else is.
    ///
    /// One appender at a time is the leader: it writes and syncs everything pending. The others
    /// sleep on a condition variable and are all woken when the leader finishes; those now
    /// durable return, and one of the rest leads the next group. (Queueing on the `io` mutex
    /// instead would wake waiters one by one, each only to find its record already durable.)
    fn wait_durable(&self, lsn: Lsn) -> Result<()> {
        let (leading, done) = &self.group_commit;
        loop {
            {
                let mut leader_active = leading.lock();
                loop {
                    if self.durable_lsn.load(Ordering::Acquire) >= lsn {
                        return Ok(());
                    }
                    self.check_writable()?;
                    if !*leader_active {
                        *leader_active = true;
                        break;
                    }
                    done.wait(&mut leader_active);
                }
            }
            let result = {
                let mut io = self.io.lock();
                self.write_out(&mut io, true)
            };
            *leading.lock() = false;
            done.notify_all();
            result?;
        }
    }

    /// Ensures records up to `lsn` are in the files so a reader can find them.
    fn make_readable(&self, lsn: Lsn) -> Result<()> {
        if self.written_lsn.load(Ordering::Acquire) >= lsn {
            return Ok(());
        }
        let mut io = self.io.lock();
        if self.written_lsn.load(Ordering::Acquire) >= lsn {
            return Ok(());
        }
        if let Some(f) = &*self.failure.lock() {
            return Err(WalError::Poisoned(f.clone()));
        }
        self.write_out(&mut io, false)
    }

    /// Writes all pending bytes and, when `sync`, fdatasyncs them. Any failure poisons the WAL:
    /// after a failed fsync the kernel may have dropped the dirty pages, so retrying could
    /// report success for bytes that are gone.
    fn write_out(&self, io: &mut IoState, sync: bool) -> Result<()> {
        // Framing runs under `io` only: appenders keep adding to new open frames meanwhile,
        // and since every framing holds `io`, frames reach `pending` in LSN order.
        let open = std::mem::take(&mut self.state.lock().open);
        let framed = self.frame_open(open)?;
        let (chunks, upto) = {
            let mut st = self.state.lock();
            st.push_framed(framed, self.opts.segment_size_bytes);
            st.pending_bytes = st.unwritten_open_bytes();
            (std::mem::take(&mut st.pending), st.framed_lsn())
        };
        let result = self.write_chunks(io, chunks).and_then(|spare| {
            if sync {
                self.sync_files(io)?;
            }
            Ok(spare)
        });
        match result {
            Ok(spare) => {
                if !spare.is_empty() {
                    self.state.lock().recycle(spare);
                }
                self.written_lsn.fetch_max(upto, Ordering::AcqRel);
                if sync {
                    self.durable_lsn.fetch_max(upto, Ordering::AcqRel);
                }
                self.wake_filler_if_low(io);
                debug_assert!(
                    self.durable_lsn.load(Ordering::Acquire)
                        <= self.written_lsn.load(Ordering::Acquire),
                    "durable <= written"
                );
                Ok(())
            }
            Err(e) => {
                self.poison(&e);
                Err(e)
            }
        }
    }

    /// Writes chunks in order; returns their emptied buffers for reuse. Takes no `state` lock
    /// (callers may hold it).
    fn write_chunks(&self, io: &mut IoState, chunks: Vec<PendingChunk>) -> Result<Vec<Vec<u8>>> {
        let mut spare = Vec::with_capacity(chunks.len());
        for chunk in chunks {
            if let Some(first_lsn) = chunk.creates_segment {
                self.trim_zero_fill(io);
                let path = io.dir.join(segment_file_name(chunk.segment_id));
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create_new(true)
                    .open(&path)
                    .map_err(|e| WalError::io(&path, e))?;
                let file = Arc::new(file);
                io.set_active(chunk.segment_id, file, 0);
                io.dir_unsynced = true;
                self.segments
                    .write()
                    .push(SegmentMeta::new(chunk.segment_id, path, first_lsn));
            }
            let (active_id, file) = io.active.clone().expect("an active segment is open");
            debug_assert_eq!(active_id, chunk.segment_id);
            let path = || io.dir.join(segment_file_name(chunk.segment_id));
            let injected = failpoints::before_write(&chunk.bytes, &file, chunk.offset)
                .map_err(|e| WalError::io(path(), e))?;
            if !injected {
                file.write_all_at(&chunk.bytes, chunk.offset)
                    .map_err(|e| WalError::io(path(), e))?;
            }
            if io.unsynced.last() != Some(&chunk.segment_id) {
                io.unsynced.push(chunk.segment_id);
            }
            {
                let mut segs = self.segments.write();
                let seg = segs.last_mut().expect("segments are never empty");
                debug_assert_eq!(seg.id, chunk.segment_id);
                for (offset, h) in &chunk.frames {
                    seg.add_frame(*offset, h);
                }
                io.fill.data_end = seg.len;
            }
            let mut bytes = chunk.bytes;
            bytes.clear();
            spare.push(bytes);
        }
        Ok(spare)
    }

    fn sync_files(&self, io: &mut IoState) -> Result<()> {
        for id in std::mem::take(&mut io.unsynced) {
            let path = io.dir.join(segment_file_name(id));
            failpoints::before_fsync().map_err(|e| WalError::io(&path, e))?;
            let synced = match &io.active {
                Some((active_id, file)) if *active_id == id => file.sync_data(),
                // fdatasync through any descriptor flushes the file's dirty pages. A segment
                // purged meanwhile is gone and needs nothing.
                _ => match File::open(&path) {
                    Ok(f) => f.sync_data(),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                    Err(e) => Err(e),
                },
            };
            synced.map_err(|e| WalError::io(&path, e))?;
        }
        self.sync_dir(io)
    }

    fn sync_dir(&self, io: &mut IoState) -> Result<()> {
        if io.dir_unsynced {
            File::open(&io.dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| WalError::io(&io.dir, e))?;
            io.dir_unsynced = false;
        }
        Ok(())
    }

    fn truncate_after(&self, lsn: Lsn) -> Result<()> {
        let mut io = self.io.lock();
        // Appenders wait on `state` for the whole truncation: their LSNs depend on it.
        let mut st = self.state.lock();
        let open = std::mem::take(&mut st.open);
        let framed = self.frame_open(open)?;
        st.push_framed(framed, self.opts.segment_size_bytes);
        let chunks = std::mem::take(&mut st.pending);
        st.pending_bytes = 0;
        match self.write_chunks(&mut io, chunks) {
            Ok(spare) => st.recycle(spare),
            Err(e) => {
                self.poison(&e);
                return Err(e);
            }
        }
        let last = st.next_lsn - 1;
        self.written_lsn.fetch_max(last, Ordering::AcqRel);
        if lsn >= last {
            return Ok(());
        }
        let result = self.truncate_files(&mut io, lsn);
        match result {
            Ok(active) => {
                st.next_lsn = lsn + 1;
                st.active_id = active.id;
                st.active_len = active.len;
                self.written_lsn.store(lsn, Ordering::Release);
                self.durable_lsn.fetch_min(lsn, Ordering::AcqRel);
                Ok(())
            }
            Err(e) => {
                self.poison(&e);
                Err(e)
            }
        }
    }

    /// File work of `reset_to`: a new flagged segment, then the old ones removed.
    fn reset_files(&self, io: &mut IoState, id: u64, next_lsn: Lsn) -> Result<SegmentMeta> {
        let mut meta = create_segment(&io.dir, id, next_lsn, SEGMENT_FLAG_RESET)?;
        meta.starts_new_log = true;
        io.dir_unsynced = true;
        self.sync_dir(io)?;
        let mut segs = self.segments.write();
        for old in segs.drain(..) {
            std::fs::remove_file(&old.path).map_err(|e| WalError::io(&old.path, e))?;
        }
        segs.push(meta.clone());
        io.dir_unsynced = true;
        self.sync_dir(io)?;
        io.unsynced.clear();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&meta.path)
            .map_err(|e| WalError::io(&meta.path, e))?;
        io.set_active(id, Arc::new(file), meta.len);
        Ok(meta)
    }

    /// File work of `truncate_after`; returns the metadata of the new active segment.
    fn truncate_files(&self, io: &mut IoState, lsn: Lsn) -> Result<SegmentMeta> {
        let target = lsn + 1;
        let mut segs = self.segments.write();
        let first = segs.first().map_or(1, |s| s.first_lsn);
        if target < first {
            let last = segs.last().map_or(0, |s| s.next_lsn - 1);
            return Err(WalError::LsnOutOfRange { lsn, first, last });
        }
        let keep = segs.partition_point(|s| s.first_lsn <= target).max(1);
        for seg in segs.drain(keep..) {
            std::fs::remove_file(&seg.path).map_err(|e| WalError::io(&seg.path, e))?;
            io.dir_unsynced = true;
        }
        io.unsynced.clear();
        io.active = None;
        let seg = segs.last().expect("kept one").clone();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&seg.path)
            .map_err(|e| WalError::io(&seg.path, e))?;
        if target < seg.next_lsn {
            cut_segment(&file, &seg, target, &self.opts)?;
        }
        file.sync_data().map_err(|e| WalError::io(&seg.path, e))?;
        self.sync_dir(io)?;
        let rescanned = match scan_segment(&seg.path)? {
            Some((meta, super::segment::ScanEnd::Clean)) => meta,
            _ => {
                return Err(WalError::corrupt(
                    &seg.path,
                    0,
                    "segment does not verify after truncation",
                ))
            }
        };
        *segs.last_mut().expect("kept one") = rescanned.clone();
        let file_len = file
            .metadata()
            .map_err(|e| WalError::io(&seg.path, e))?
            .len();
        io.set_active(seg.id, Arc::new(file), rescanned.len);
        // Without a cut the file keeps its zero fill; trimming needs to know how far it goes.
        io.fill.zeroed_to = file_len;
        Ok(rescanned)
    }

    /// Tells the interval-sync and zero-fill threads to exit.
    fn stop_background_threads(&self) {
        let (stop, cv) = &*self.interval_stop;
        *stop.lock() = true;
        cv.notify_all();
        self.zero_fill.stop();
    }

    /// Wakes the zero-fill thread when less than `LOW_WATER_BYTES` of zeroed space is left past
    /// the active segment's last frame.
    fn wake_filler_if_low(&self, io: &IoState) {
        if !self.opts.zero_fill_ahead || io.active.is_none() {
            return;
        }
        let f = &io.fill;
        let wanted = (f.data_end + LOW_WATER_BYTES).min(self.opts.segment_size_bytes);
        if f.zeroed_to.max(f.data_end) < wanted {
            self.zero_fill.wake();
        }
    }

    /// Cuts the zero fill off the active segment file (when it is sealed or the WAL closes), so
    /// finished segments hold exactly their frames. A failure only leaves zeros that recovery
    /// reads as the end, so it is logged, not returned.
    fn trim_zero_fill(&self, io: &mut IoState) {
        let Some((id, file)) = &io.active else { return };
        let data_end = io.fill.data_end;
        if io.fill.zeroed_to <= data_end {
            return;
        }
        match file.set_len(data_end) {
            Ok(()) => io.fill.zeroed_to = data_end,
            Err(e) => tracing::warn!(segment = id, error = %e, "could not trim WAL zero fill"),
        }
    }
}

/// Cuts `seg` so that its last record is `target - 1`: drops the frame holding `target` and
/// everything after it, re-appending that frame's records below `target` as a new frame.
fn cut_segment(file: &File, seg: &SegmentMeta, target: Lsn, opts: &WalOptions) -> Result<()> {
    let path = &seg.path;
    let io = |e| WalError::io(path, e);
    let mut offset = seg.seek_offset(target);
    let mut reader =
        std::io::BufReader::with_capacity(READ_BUFFER_BYTES, File::open(path).map_err(io)?);
    std::io::Seek::seek(&mut reader, std::io::SeekFrom::Start(offset)).map_err(io)?;
    loop {
        match read_frame(&mut reader, offset, seg.len).map_err(io)? {
            FrameRead::Frame(h, body) if h.last_lsn() < target => {
                offset += h.frame_len();
                let _ = body;
            }
            FrameRead::Frame(h, body) => {
                let mut keep = Vec::new();
                if h.first_lsn < target {
                    decode_frame(&h, body, &mut keep)
                        .map_err(|r| WalError::corrupt(path, offset, r))?;
                    keep.truncate((target - h.first_lsn) as usize);
                }
                file.set_len(offset).map_err(io)?;
                if !keep.is_empty() {
                    let recs: Vec<NewRecord> = keep.into_iter().map(Record::into_new).collect();
                    let mut frame =
                        encode_frame(&recs, &opts.compression, Vec::new()).map_err(io)?;
                    frame.seal(h.first_lsn);
                    file.write_all_at(&frame.bytes, offset).map_err(io)?;
                }
                return Ok(());
            }
            FrameRead::End => return Ok(()),
            FrameRead::Damaged { reason, .. } => {
                return Err(WalError::corrupt(path, offset, reason))
            }
            FrameRead::ZeroHeader => {
                return Err(WalError::corrupt(path, offset, ZEROED_HEADER_IN_DATA))
            }
        }
    }
}

/// Scans frames in `[from, to)` of one segment for the first record with `hlc >= ts`.
fn find_in_block(path: &Path, from: u64, to: u64, ts: HlcTimestamp) -> Result<Option<Lsn>> {
    let io = |e| WalError::io(path, e);
    let mut reader =
        std::io::BufReader::with_capacity(READ_BUFFER_BYTES, File::open(path).map_err(io)?);
    std::io::Seek::seek(&mut reader, std::io::SeekFrom::Start(from)).map_err(io)?;
    let mut offset = from;
    let mut records = Vec::new();
    while offset < to {
        match read_frame(&mut reader, offset, to).map_err(io)? {
            FrameRead::Frame(h, body) => {
                if h.max_hlc >= ts.0 {
                    records.clear();
                    decode_frame(&h, body, &mut records)
                        .map_err(|r| WalError::corrupt(path, offset, r))?;
                    if let Some(r) = records.iter().find(|r| r.hlc >= ts) {
                        return Ok(Some(r.lsn));
                    }
                }
                offset += h.frame_len();
            }
            FrameRead::End => break,
            FrameRead::Damaged { reason, .. } => {
                return Err(WalError::corrupt(path, offset, reason))
            }
            FrameRead::ZeroHeader => {
                return Err(WalError::corrupt(path, offset, ZEROED_HEADER_IN_DATA))
            }
        }
    }
    Ok(None)
}

fn spawn_interval_syncer(weak: Weak<Inner>, stop: Arc<(Mutex<bool>, Condvar)>, every: Duration) {
    let spawned = std::thread::Builder::new()
        .name("wal-interval-sync".into())
        .spawn(move || loop {
            {
                let (stopped, cv) = &*stop;
                let mut stopped = stopped.lock();
                if !*stopped {
                    cv.wait_for(&mut stopped, every);
                }
                if *stopped {
                    return;
                }
            }
            let Some(inner) = weak.upgrade() else { return };
            if inner.check_writable().is_err() {
                return;
            }
            let mut io = inner.io.lock();
            // Errors poison the WAL; appenders will see them.
            let _ = inner.write_out(&mut io, true);
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "could not start the WAL interval-sync thread");
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop_background_threads();
        if self.closed.load(Ordering::Acquire) || self.failure.get_mut().is_some() {
            return;
        }
        // Last handle gone without close(): write what is pending (best effort, no panic).
        let mut io = std::mem::take(&mut *self.io.lock());
        let sync = self.opts.durability != Durability::None;
        match self.write_out(&mut io, sync) {
            Ok(()) => self.trim_zero_fill(&mut io),
            Err(e) => {
                tracing::error!(error = %e, "WAL dropped without close(); pending records were not written")
            }
        }
    }
}

/// Fault injection for tests, compiled only with the `failpoints` feature. Configure with
/// `fail::cfg("wal::write", "return(enospc)")` and friends; see core/tests/failpoints.rs.
mod failpoints {
    use std::fs::File;

    /// `wal::write`: `return(enospc)` fails the write with ENOSPC; `return(torn)` writes only
    /// the first half and then fails with EIO; `return(bitflip)` silently flips one bit in what
    /// is written (the damage a bad disk does), leaving detection to the checksums.
    /// Returns `Ok(true)` when the failpoint already wrote the bytes.
    #[allow(unused_variables)]
    pub(super) fn before_write(bytes: &[u8], file: &File, offset: u64) -> std::io::Result<bool> {
        #[cfg(feature = "failpoints")]
        {
            use std::os::unix::fs::FileExt;
            if let Some(action) = fail::eval("wal::write", |arg| arg.unwrap_or_default()) {
                match action.as_str() {
                    "enospc" => return Err(std::io::Error::from_raw_os_error(libc::ENOSPC)),
                    "torn" => {
                        file.write_all_at(&bytes[..bytes.len() / 2], offset)?;
                        return Err(std::io::Error::from_raw_os_error(libc::EIO));
                    }
                    "bitflip" => {
                        let mut copy = bytes.to_vec();
                        let i = copy.len() / 2;
                        copy[i] ^= 0x10;
                        file.write_all_at(&copy, offset)?;
                        return Ok(true);
                    }
                    other => {
                        return Err(std::io::Error::other(format!(
                            "failpoint wal::write: {other}"
                        )))
                    }
                }
            }
        }
        Ok(false)
    }

    /// `wal::fsync`: `return` makes fdatasync fail with EIO.
    pub(super) fn before_fsync() -> std::io::Result<()> {
        #[cfg(feature = "failpoints")]
        if fail::eval("wal::fsync", |_| ()).is_some() {
            return Err(std::io::Error::from_raw_os_error(libc::EIO));
        }
        Ok(())
    }
}
