//! One segment file: its in-memory description (range, sparse index) and the scan that builds
//! it from disk while verifying every frame.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::error::{Result, WalError};
use super::format::{FrameHeader, SegmentHeader, FRAME_HEADER_LEN, SEGMENT_HEADER_LEN};
use super::frame::{read_frame, FrameRead};
use crate::Lsn;

/// A sparse index point every this many bytes: small enough that a seek scans little, large
/// enough that a 64 MiB segment needs ~1,000 entries.
pub(crate) const INDEX_INTERVAL_BYTES: u64 = 64 * 1024;

/// Buffer for sequential scans; big reads keep replay near memory bandwidth.
pub(crate) const READ_BUFFER_BYTES: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IndexEntry {
    /// First LSN of the frame at `offset`.
    pub first_lsn: Lsn,
    pub offset: u64,
    /// Largest HLC among all frames from this entry up to (not including) the next entry.
    pub max_hlc: u64,
}

#[derive(Debug, Clone)]
pub(crate) struct SegmentMeta {
    pub id: u64,
    pub path: PathBuf,
    pub first_lsn: Lsn,
    /// One past the last LSN written to the file (== first_lsn when it holds no frame).
    pub next_lsn: Lsn,
    /// Bytes of valid data written to the file (header plus whole frames).
    pub len: u64,
    pub index: Vec<IndexEntry>,
    /// The header carries `SEGMENT_FLAG_RESET`: earlier segments are obsolete.
    pub starts_new_log: bool,
}

impl SegmentMeta {
    pub fn new(id: u64, path: PathBuf, first_lsn: Lsn) -> Self {
        SegmentMeta {
            id,
            path,
            first_lsn,
            next_lsn: first_lsn,
            len: SEGMENT_HEADER_LEN as u64,
            index: Vec::new(),
            starts_new_log: false,
        }
    }

    pub fn max_hlc(&self) -> u64 {
        self.index.iter().map(|e| e.max_hlc).max().unwrap_or(0)
    }

    /// Records a frame written at `offset` (which must be the current end).
    pub fn add_frame(&mut self, offset: u64, h: &FrameHeader) {
        debug_assert_eq!(offset, self.len, "frames are appended at the end");
        debug_assert_eq!(h.first_lsn, self.next_lsn, "LSNs are dense");
        let start_block = match self.index.last() {
            None => true,
            Some(last) => offset - last.offset >= INDEX_INTERVAL_BYTES,
        };
        if start_block {
            self.index.push(IndexEntry {
                first_lsn: h.first_lsn,
                offset,
                max_hlc: h.max_hlc,
            });
        } else if let Some(last) = self.index.last_mut() {
            last.max_hlc = last.max_hlc.max(h.max_hlc);
        }
        self.next_lsn = h.last_lsn() + 1;
        self.len = offset + h.frame_len();
    }

    /// Offset of the indexed frame to start scanning from to find `lsn`.
    pub fn seek_offset(&self, lsn: Lsn) -> u64 {
        let i = self.index.partition_point(|e| e.first_lsn <= lsn);
        if i == 0 {
            SEGMENT_HEADER_LEN as u64
        } else {
            self.index[i - 1].offset
        }
    }
}

/// How a scan of a segment ended.
#[derive(Debug)]
pub(crate) enum ScanEnd {
    /// Every byte up to the end of the file is a valid frame, or zero fill after the last one.
    Clean,
    /// Bytes from `offset` on are not valid frames.
    Damaged {
        offset: u64,
        reason: String,
        /// True when the damage looks like an interrupted write rather than corruption: the
        /// frame is incomplete, or it is the last thing in the file (nothing but zeros after).
        torn: bool,
    },
}

/// Reads a segment file from start to end, verifying every frame's checksum and LSN
/// continuity, and builds its sparse index. Header damage is returned as `Err`, except that
/// `Ok(None)` means the file is too short or all zeros: a segment whose creation was cut off.
pub(crate) fn scan_segment(path: &Path) -> Result<Option<(SegmentMeta, ScanEnd)>> {
    let io = |e| WalError::io(path, e);
    let file = File::open(path).map_err(io)?;
    let file_len = file.metadata().map_err(io)?.len();
    let mut r = BufReader::with_capacity(READ_BUFFER_BYTES, file);
    let mut hb = [0u8; SEGMENT_HEADER_LEN];
    if file_len < SEGMENT_HEADER_LEN as u64 {
        return Ok(None);
    }
    r.read_exact(&mut hb).map_err(io)?;
    let header = match SegmentHeader::decode(&hb) {
        Ok(h) => h,
        Err(_) if hb.iter().all(|&b| b == 0) && rest_is_zero(&mut r).map_err(io)? => {
            return Ok(None)
        }
        Err(reason) => return Err(WalError::corrupt(path, 0, reason)),
    };
    let id_from_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(super::format::parse_segment_file_name);
    if id_from_name != Some(header.segment_id) {
        return Err(WalError::corrupt(
            path,
            16,
            format!(
                "segment header says id {} but the file name says {:?}",
                header.segment_id, id_from_name
            ),
        ));
    }
    let mut meta = SegmentMeta::new(header.segment_id, path.to_path_buf(), header.first_lsn);
    meta.starts_new_log = header.flags & super::format::SEGMENT_FLAG_RESET != 0;
    let mut offset = SEGMENT_HEADER_LEN as u64;
    loop {
        let damaged = match read_frame(&mut r, offset, file_len).map_err(io)? {
            FrameRead::End => return Ok(Some((meta, ScanEnd::Clean))),
            // Zero-filled space after the last frame is the normal end of an active segment;
            // zeros followed by data are damage.
            FrameRead::ZeroHeader if tail_is_zero(path, offset)? => {
                return Ok(Some((meta, ScanEnd::Clean)))
            }
            FrameRead::ZeroHeader => Some((
                "a zeroed frame header is followed by non-zero bytes".to_string(),
                false,
                None,
            )),
            FrameRead::Frame(h, _) if h.first_lsn != meta.next_lsn => Some((
                format!(
                    "frame starts at LSN {} but LSN {} was expected",
                    h.first_lsn, meta.next_lsn
                ),
                false,
                Some(offset + h.frame_len()),
            )),
            FrameRead::Frame(h, _) => {
                meta.add_frame(offset, &h);
                offset += h.frame_len();
                None
            }
            FrameRead::Damaged {
                reason,
                incomplete,
                frame_end,
            } => Some((reason, incomplete, frame_end)),
        };
        if let Some((reason, incomplete, frame_end)) = damaged {
            // Without a usable length, "the last thing in the file" means only zeros follow
            // the header (a header torn across a page boundary of a zero-filled segment).
            let after = frame_end.unwrap_or(offset + FRAME_HEADER_LEN as u64);
            let torn = incomplete || tail_is_zero(path, after)?;
            return Ok(Some((
                meta,
                ScanEnd::Damaged {
                    offset,
                    reason,
                    torn,
                },
            )));
        }
    }
}

/// True when every byte from `from` to the end of the file is zero (or there is none): what a
/// crash leaves after the last completed write when the file had been extended.
fn tail_is_zero(path: &Path, from: u64) -> Result<bool> {
    let io = |e| WalError::io(path, e);
    let mut f = File::open(path).map_err(io)?;
    f.seek(SeekFrom::Start(from)).map_err(io)?;
    rest_is_zero(&mut BufReader::with_capacity(64 * 1024, f)).map_err(io)
}

fn rest_is_zero(r: &mut impl Read) -> std::io::Result<bool> {
    let mut buf = [0u8; 8192];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            return Ok(true);
        }
        if buf[..n].iter().any(|&b| b != 0) {
            return Ok(false);
        }
    }
}
