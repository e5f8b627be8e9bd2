//! Sequential reads: an iterator over records from a starting LSN.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufReader, Seek, SeekFrom};
use std::sync::Arc;

use super::engine::Inner;
use super::error::{Result, WalError};
use super::frame::{decode_frame, read_frame, FrameRead, ZEROED_HEADER_IN_DATA};
use super::record::Record;
use super::segment::READ_BUFFER_BYTES;
use crate::Lsn;

/// Iterator over records `start..end` (end exclusive), yielding `Result<Record>`. After the
/// first error it yields nothing more.
///
/// Reads see segment files as they are while iterating; a concurrent `truncate_after` or
/// `purge_before` of the range being read ends the iteration with an error rather than
/// returning records from two different histories.
pub struct WalIter {
    inner: Arc<Inner>,
    next_lsn: Lsn,
    end_lsn: Lsn,
    open: Option<OpenSegment>,
    buffered: VecDeque<Record>,
    done: bool,
    scratch: Vec<Record>,
}

struct OpenSegment {
    id: u64,
    path: std::path::PathBuf,
    reader: BufReader<File>,
    offset: u64,
    valid_len: u64,
}

impl WalIter {
    pub(crate) fn new(inner: Arc<Inner>, start: Lsn, end: Lsn) -> Self {
        WalIter {
            inner,
            next_lsn: start,
            end_lsn: end,
            open: None,
            buffered: VecDeque::new(),
            done: start >= end,
            scratch: Vec::new(),
        }
    }

    /// The LSN the next record will have.
    pub fn next_lsn(&self) -> Lsn {
        self.next_lsn
    }

    /// Opens the segment holding `next_lsn`, positioned at the indexed frame before it.
    fn open_segment(&mut self) -> Result<()> {
        let segs = self.inner.segments.read();
        let i = segs.partition_point(|s| s.first_lsn <= self.next_lsn);
        let seg = match i.checked_sub(1).map(|i| &segs[i]) {
            Some(s) if self.next_lsn < s.next_lsn => s,
            _ => {
                return Err(WalError::LsnOutOfRange {
                    lsn: self.next_lsn,
                    first: segs.first().map_or(1, |s| s.first_lsn),
                    last: segs.last().map_or(0, |s| s.next_lsn - 1),
                })
            }
        };
        let offset = seg.seek_offset(self.next_lsn);
        let io = |e| WalError::io(&seg.path, e);
        let mut reader =
            BufReader::with_capacity(READ_BUFFER_BYTES, File::open(&seg.path).map_err(io)?);
        reader.seek(SeekFrom::Start(offset)).map_err(io)?;
        self.open = Some(OpenSegment {
            id: seg.id,
            path: seg.path.clone(),
            reader,
            offset,
            valid_len: seg.len,
        });
        Ok(())
    }

    fn fill(&mut self) -> Result<()> {
        // A closed WAL has released its directory lock: another process may own the files now.
        self.inner.check_open()?;
        while self.buffered.is_empty() {
            if self.open.is_none() {
                self.open_segment()?;
            }
            let seg = self.open.as_mut().expect("opened above");
            let io = |e| WalError::io(&seg.path, e);
            match read_frame(&mut seg.reader, seg.offset, seg.valid_len).map_err(io)? {
                FrameRead::Frame(h, body) => {
                    let at = seg.offset;
                    seg.offset += h.frame_len();
                    if h.first_lsn > self.next_lsn {
                        return Err(WalError::corrupt(
                            &seg.path,
                            at,
                            format!(
                                "expected LSN {} but the frame starts at {}",
                                self.next_lsn, h.first_lsn
                            ),
                        ));
                    }
                    if h.last_lsn() < self.next_lsn {
                        continue;
                    }
                    self.scratch.clear();
                    decode_frame(&h, body, &mut self.scratch)
                        .map_err(|r| WalError::corrupt(&seg.path, at, r))?;
                    let skip = (self.next_lsn - h.first_lsn) as usize;
                    let take = (self.end_lsn - self.next_lsn) as usize;
                    self.buffered
                        .extend(self.scratch.drain(..).skip(skip).take(take));
                }
                FrameRead::End => {
                    // End of what this segment held when opened: it may have grown, or the
                    // next LSN lives in the following segment.
                    let id = seg.id;
                    let grown = self
                        .inner
                        .segments
                        .read()
                        .iter()
                        .find(|s| s.id == id)
                        .map(|s| s.len)
                        .filter(|&len| len > seg.valid_len);
                    match grown {
                        Some(len) => seg.valid_len = len,
                        None => self.open = None,
                    }
                }
                FrameRead::Damaged { reason, .. } => {
                    return Err(WalError::corrupt(&seg.path, seg.offset, reason));
                }
                FrameRead::ZeroHeader => {
                    return Err(WalError::corrupt(
                        &seg.path,
                        seg.offset,
                        ZEROED_HEADER_IN_DATA,
                    ));
                }
            }
        }
        Ok(())
    }
}

impl Iterator for WalIter {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if let Err(e) = self.fill() {
            self.done = true;
            return Some(Err(e));
        }
        let rec = self.buffered.pop_front()?;
        self.next_lsn = rec.lsn + 1;
        if self.next_lsn >= self.end_lsn {
            self.done = true;
        }
        Some(Ok(rec))
    }
}
