//! Building a frame from a batch of records (optionally zstd-compressed) and reading one back.

use std::cell::RefCell;
use std::io::Read;

use bytes::Bytes;

use super::format::{FrameHeader, FRAME_FLAG_ZSTD, FRAME_HEADER_LEN};
use super::record::{self, NewRecord, Record};
use super::Compression;
use crate::Lsn;

/// A frame whose body and body checksum are ready; only the first LSN (known under the append
/// lock) is missing from the header.
pub(crate) struct EncodedFrame {
    /// `FRAME_HEADER_LEN` placeholder bytes followed by the body.
    pub bytes: Vec<u8>,
    pub body_crc: u32,
    pub flags: u8,
    pub record_count: u32,
    pub max_hlc: u64,
    pub raw_len: u32,
}

impl EncodedFrame {
    /// Fills in the header for `first_lsn` and returns it.
    pub fn seal(&mut self, first_lsn: Lsn) -> FrameHeader {
        let mut h = FrameHeader {
            body_len: (self.bytes.len() - FRAME_HEADER_LEN) as u32,
            crc: 0,
            flags: self.flags,
            record_count: self.record_count,
            first_lsn,
            max_hlc: self.max_hlc,
            raw_len: self.raw_len,
        };
        h.crc = h.checksum(self.body_crc);
        self.bytes[..FRAME_HEADER_LEN].copy_from_slice(&h.encode());
        h
    }
}

thread_local! {
    /// One zstd context per thread and level: creating a context costs far more than
    /// compressing a small batch.
    static COMPRESSOR: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> = const { RefCell::new(None) };
    /// One zstd decompression context per thread, reused across frames.
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
    /// Scratch buffer for the uncompressed body of compressed frames.
    static RAW_SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Encodes `records` (already validated) into a frame. Compression is used when enabled and
/// the batch is at least `min_batch_bytes`, and only when it actually saves space.
pub(crate) fn encode_frame(
    records: &[NewRecord],
    compression: &Compression,
    out: Vec<u8>,
) -> std::io::Result<EncodedFrame> {
    RAW_SCRATCH.with(|raw| {
        let mut raw = raw.borrow_mut();
        raw.clear();
        for r in records {
            record::encode_into(r, &mut raw);
        }
        let max_hlc = records.iter().map(|r| r.hlc.0).max().unwrap_or(0);
        encode_raw_frame(&raw, records.len() as u32, max_hlc, compression, out)
    })
}

/// Builds a frame around `raw`, the back-to-back encodings (`record::encode_into`) of
/// `record_count` records whose largest HLC is `max_hlc`. This is how the WAL frames a whole
/// write-out group at once (see `engine.rs`): one compression call over many appends
/// compresses better and costs less per byte than one per append.
pub(crate) fn encode_raw_frame(
    raw: &[u8],
    record_count: u32,
    max_hlc: u64,
    compression: &Compression,
    out: Vec<u8>,
) -> std::io::Result<EncodedFrame> {
    let mut bytes = out;
    bytes.clear();
    bytes.resize(FRAME_HEADER_LEN, 0);
    let mut flags = 0;
    if compression.enabled && raw.len() >= compression.min_batch_bytes {
        COMPRESSOR.with(|c| -> std::io::Result<()> {
            let mut c = c.borrow_mut();
            if c.as_ref().map(|(lvl, _)| *lvl) != Some(compression.level) {
                *c = Some((
                    compression.level,
                    zstd::bulk::Compressor::new(compression.level)?,
                ));
            }
            let (_, comp) = c.as_mut().expect("set just above");
            // Compressed straight into the frame buffer, after the header placeholder; kept
            // only when it saves space.
            bytes.resize(
                FRAME_HEADER_LEN + zstd::zstd_safe::compress_bound(raw.len()),
                0,
            );
            let written = comp.compress_to_buffer(raw, &mut bytes[FRAME_HEADER_LEN..])?;
            if written < raw.len() {
                bytes.truncate(FRAME_HEADER_LEN + written);
                flags = FRAME_FLAG_ZSTD;
            } else {
                bytes.truncate(FRAME_HEADER_LEN);
            }
            Ok(())
        })?;
    }
    if flags == 0 {
        bytes.extend_from_slice(raw);
    }
    let body_crc = crc32c::crc32c(&bytes[FRAME_HEADER_LEN..]);
    Ok(EncodedFrame {
        bytes,
        body_crc,
        flags,
        record_count,
        max_hlc,
        raw_len: raw.len() as u32,
    })
}

/// Why a zeroed header below a segment's known data length is damage, not the end.
pub(crate) const ZEROED_HEADER_IN_DATA: &str = "zeroed frame header inside the segment's data";

/// Outcome of reading the next frame at a known offset.
pub(crate) enum FrameRead {
    /// A checksummed frame and its stored (possibly compressed) body.
    Frame(FrameHeader, Vec<u8>),
    /// Clean end of data exactly at the offset.
    End,
    /// The header bytes at the offset are all zero: where a zero-filled segment's data ends
    /// (see `zero_fill.rs`), unless non-zero bytes follow.
    ZeroHeader,
    /// The bytes at the offset are not a valid frame.
    Damaged {
        reason: String,
        /// The frame runs past the end of the file: what a torn (interrupted) write leaves.
        incomplete: bool,
        /// Where the damaged frame would end, when its length field was usable.
        frame_end: Option<u64>,
    },
}

/// Reads one frame from `r`, positioned at `offset`, in a file holding `valid_len` bytes.
pub(crate) fn read_frame(
    r: &mut impl Read,
    offset: u64,
    valid_len: u64,
) -> std::io::Result<FrameRead> {
    let remaining = valid_len.saturating_sub(offset);
    if remaining == 0 {
        return Ok(FrameRead::End);
    }
    if remaining < FRAME_HEADER_LEN as u64 {
        return Ok(FrameRead::Damaged {
            reason: format!("{remaining} trailing bytes are too few for a frame header"),
            incomplete: true,
            frame_end: None,
        });
    }
    let mut hb = [0u8; FRAME_HEADER_LEN];
    r.read_exact(&mut hb)?;
    if hb.iter().all(|&b| b == 0) {
        return Ok(FrameRead::ZeroHeader);
    }
    let header = match FrameHeader::decode(&hb) {
        Ok(h) => h,
        Err(reason) => {
            // When the length field is intact (e.g. a flipped flag bit), report where the frame
            // ends so recovery can tell "last thing in the file" from "mid-file".
            let end = FrameHeader::length_is_consistent(&hb).then(|| {
                let body_len = u32::from_le_bytes(hb[0..4].try_into().expect("4 bytes"));
                offset + FRAME_HEADER_LEN as u64 + body_len as u64
            });
            return Ok(FrameRead::Damaged {
                reason,
                incomplete: end.is_some_and(|e| e > valid_len),
                frame_end: end.filter(|&e| e <= valid_len),
            });
        }
    };
    if header.frame_len() > remaining {
        return Ok(FrameRead::Damaged {
            reason: format!(
                "frame of {} bytes runs past the end of the data ({} bytes left)",
                header.frame_len(),
                remaining
            ),
            incomplete: true,
            frame_end: None,
        });
    }
    // `take + read_to_end` fills the buffer without zeroing it first.
    let mut body = Vec::with_capacity(header.body_len as usize);
    r.by_ref()
        .take(header.body_len as u64)
        .read_to_end(&mut body)?;
    if body.len() != header.body_len as usize {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    if !header.verify(&body) {
        return Ok(FrameRead::Damaged {
            reason: "frame checksum mismatch".into(),
            incomplete: false,
            frame_end: Some(offset + header.frame_len()),
        });
    }
    Ok(FrameRead::Frame(header, body))
}

/// Decompresses (if needed) and decodes a verified frame body into records.
pub(crate) fn decode_frame(
    header: &FrameHeader,
    body: Vec<u8>,
    out: &mut Vec<Record>,
) -> Result<(), String> {
    let raw: Bytes = if header.is_compressed() {
        DECOMPRESSOR
            .with(|d| {
                let mut d = d.borrow_mut();
                if d.is_none() {
                    *d = Some(zstd::bulk::Decompressor::new()?);
                }
                d.as_mut()
                    .expect("set just above")
                    .decompress(&body, header.raw_len as usize)
            })
            .map_err(|e| format!("zstd decompression failed: {e}"))?
            .into()
    } else {
        body.into()
    };
    if raw.len() != header.raw_len as usize {
        return Err(format!(
            "decompressed {} bytes, header says {}",
            raw.len(),
            header.raw_len
        ));
    }
    record::decode_body(&raw, header.first_lsn, header.record_count, out)
}
