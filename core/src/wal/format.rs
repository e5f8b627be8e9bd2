//! Byte layouts of segment headers and frames. docs/FORMAT.md describes the same, byte by byte;
//! change both together and bump `FORMAT_VERSION` for anything a v1 reader cannot skip.

use crate::Lsn;

pub const SEGMENT_MAGIC: [u8; 8] = *b"REPLWAL\0";
pub const FORMAT_VERSION: u16 = 1;
pub const SEGMENT_HEADER_LEN: usize = 32;
pub const FRAME_HEADER_LEN: usize = 40;

/// Frame flag: the body is one zstd frame holding `raw_len` bytes of records.
pub const FRAME_FLAG_ZSTD: u8 = 1;
const KNOWN_FRAME_FLAGS: u8 = FRAME_FLAG_ZSTD;

/// Largest frame body we accept when reading: a corrupt length must not make us allocate
/// gigabytes. Writers never produce more (one record is capped well below).
pub const MAX_FRAME_BODY: u32 = 1 << 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    pub segment_id: u64,
    pub first_lsn: Lsn,
    /// `SEGMENT_FLAG_*` bits.
    pub flags: u16,
}

/// Segment flag: this segment starts a new log (after `Wal::reset_to`); every segment with a
/// lower id is obsolete, and recovery deletes any that a crash left behind.
pub const SEGMENT_FLAG_RESET: u16 = 1;
const KNOWN_SEGMENT_FLAGS: u16 = SEGMENT_FLAG_RESET;

// Format: segment header (32 bytes, little-endian)
//   0  [u8; 8] magic "REPLWAL\0"
//   8  u16     format version (1)
//  10  u16     flags (bit 0: reset, a new log starts here; other bits 0)
//  12  u32     CRC32C of bytes 0..12 followed by bytes 16..32
//  16  u64     segment id (increases by one per new segment)
//  24  u64     LSN of the first record this segment holds (or will hold)
impl SegmentHeader {
    pub fn encode(&self) -> [u8; SEGMENT_HEADER_LEN] {
        let mut b = [0u8; SEGMENT_HEADER_LEN];
        b[0..8].copy_from_slice(&SEGMENT_MAGIC);
        b[8..10].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        b[10..12].copy_from_slice(&self.flags.to_le_bytes());
        b[16..24].copy_from_slice(&self.segment_id.to_le_bytes());
        b[24..32].copy_from_slice(&self.first_lsn.to_le_bytes());
        let crc = segment_header_crc(&b);
        b[12..16].copy_from_slice(&crc.to_le_bytes());
        b
    }

    pub fn decode(b: &[u8]) -> Result<SegmentHeader, String> {
        if b.len() < SEGMENT_HEADER_LEN {
            return Err(format!(
                "segment header is {} bytes, expected {SEGMENT_HEADER_LEN}",
                b.len()
            ));
        }
        if b[0..8] != SEGMENT_MAGIC {
            return Err("bad magic: not a WAL segment".into());
        }
        let stored = u32::from_le_bytes(b[12..16].try_into().unwrap());
        if stored != segment_header_crc(b) {
            return Err("segment header checksum mismatch".into());
        }
        let version = u16::from_le_bytes([b[8], b[9]]);
        if version != FORMAT_VERSION {
            return Err(format!(
                "segment format version {version} is not supported (this build reads version {FORMAT_VERSION})"
            ));
        }
        let flags = u16::from_le_bytes([b[10], b[11]]);
        if flags & !KNOWN_SEGMENT_FLAGS != 0 {
            return Err(format!("segment header has unknown flags {flags:#06x}"));
        }
        Ok(SegmentHeader {
            segment_id: u64::from_le_bytes(b[16..24].try_into().unwrap()),
            first_lsn: u64::from_le_bytes(b[24..32].try_into().unwrap()),
            flags,
        })
    }
}

fn segment_header_crc(b: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&b[0..12]), &b[16..32])
}

/// The fixed part of a frame, everything but the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub body_len: u32,
    pub crc: u32,
    pub flags: u8,
    pub record_count: u32,
    pub first_lsn: Lsn,
    /// Largest HLC of any record in the frame: lets PITR skip frames without decoding them.
    pub max_hlc: u64,
    /// Length of the record bytes once decompressed (equals `body_len` when uncompressed).
    pub raw_len: u32,
}

// Format: frame (little-endian), directly after the segment header or the previous frame
//   0  u32 body length B (bytes stored after this 40-byte header)
//   4  u32 CRC32C of the body followed by header bytes 8..40 (body first, so writers can
//          checksum the body outside the append lock and finish with the 32 header bytes)
//   8  u8  flags (bit 0: body is zstd-compressed); other bits must be 0
//   9  [u8; 3] reserved, 0
//  12  u32 record count (>= 1)
//  16  u64 LSN of the first record; records are dense: record i has LSN first + i
//  24  u64 largest HLC timestamp among the records
//  32  u32 raw length: record bytes after decompression (== B when not compressed)
//  36  u32 bitwise NOT of B: a flipped length bit is caught before the length is trusted, so
//          corruption of a mid-file frame's length is never mistaken for a torn tail
//  40  B bytes body: the records (see record.rs), possibly compressed
impl FrameHeader {
    pub fn encode(&self) -> [u8; FRAME_HEADER_LEN] {
        let mut b = [0u8; FRAME_HEADER_LEN];
        b[0..4].copy_from_slice(&self.body_len.to_le_bytes());
        b[4..8].copy_from_slice(&self.crc.to_le_bytes());
        b[8] = self.flags;
        b[12..16].copy_from_slice(&self.record_count.to_le_bytes());
        b[16..24].copy_from_slice(&self.first_lsn.to_le_bytes());
        b[24..32].copy_from_slice(&self.max_hlc.to_le_bytes());
        b[32..36].copy_from_slice(&self.raw_len.to_le_bytes());
        b[36..40].copy_from_slice(&(!self.body_len).to_le_bytes());
        b
    }

    /// True when the length field agrees with its complement, i.e. it can be trusted to find
    /// where the frame ends even if other fields are damaged.
    pub fn length_is_consistent(b: &[u8; FRAME_HEADER_LEN]) -> bool {
        let len = u32::from_le_bytes(b[0..4].try_into().expect("4 bytes"));
        let not_len = u32::from_le_bytes(b[36..40].try_into().expect("4 bytes"));
        len == !not_len
    }

    /// Parses the header fields; structural checks only (the CRC needs the body).
    pub fn decode(b: &[u8; FRAME_HEADER_LEN]) -> Result<FrameHeader, String> {
        let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
        let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
        let h = FrameHeader {
            body_len: u32_at(0),
            crc: u32_at(4),
            flags: b[8],
            record_count: u32_at(12),
            first_lsn: u64_at(16),
            max_hlc: u64_at(24),
            raw_len: u32_at(32),
        };
        if !Self::length_is_consistent(b) {
            return Err("frame length check failed".into());
        }
        if h.body_len == 0 || h.body_len > MAX_FRAME_BODY || h.raw_len > MAX_FRAME_BODY {
            return Err(format!(
                "frame length {} (raw {}) is out of range",
                h.body_len, h.raw_len
            ));
        }
        if h.flags & !KNOWN_FRAME_FLAGS != 0 || b[9..12] != [0, 0, 0] {
            return Err(format!("frame has unknown flags {:#04x}", h.flags));
        }
        if h.record_count == 0 {
            return Err("frame holds zero records".into());
        }
        if h.flags & FRAME_FLAG_ZSTD == 0 && h.raw_len != h.body_len {
            return Err("uncompressed frame with raw length != body length".into());
        }
        Ok(h)
    }

    pub fn is_compressed(&self) -> bool {
        self.flags & FRAME_FLAG_ZSTD != 0
    }

    pub fn frame_len(&self) -> u64 {
        FRAME_HEADER_LEN as u64 + self.body_len as u64
    }

    pub fn last_lsn(&self) -> Lsn {
        self.first_lsn + self.record_count as u64 - 1
    }

    /// The checksum a frame with this header and `body_crc = crc32c(body)` must carry.
    pub fn checksum(&self, body_crc: u32) -> u32 {
        let enc = self.encode();
        crc32c::crc32c_append(body_crc, &enc[8..])
    }

    pub fn verify(&self, body: &[u8]) -> bool {
        self.checksum(crc32c::crc32c(body)) == self.crc
    }
}

/// File name of segment `id`: zero-padded so lexical order is numeric order.
pub fn segment_file_name(id: u64) -> String {
    format!("{id:020}.wal")
}

/// Inverse of `segment_file_name`; `None` for files that are not segments.
pub fn parse_segment_file_name(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(".wal")?;
    if stem.len() != 20 || !stem.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_header_round_trip_and_bit_flips() {
        let h = SegmentHeader {
            segment_id: 7,
            first_lsn: 12345,
            flags: SEGMENT_FLAG_RESET,
        };
        let b = h.encode();
        assert_eq!(SegmentHeader::decode(&b).unwrap(), h);
        for bit in 0..SEGMENT_HEADER_LEN * 8 {
            let mut c = b;
            c[bit / 8] ^= 1 << (bit % 8);
            assert!(
                SegmentHeader::decode(&c).is_err(),
                "bit {bit} flip undetected"
            );
        }
    }

    #[test]
    fn file_names() {
        assert_eq!(segment_file_name(3), "00000000000000000003.wal");
        assert_eq!(
            parse_segment_file_name(&segment_file_name(u64::MAX)),
            Some(u64::MAX)
        );
        assert_eq!(parse_segment_file_name("3.wal"), None);
        assert_eq!(parse_segment_file_name("0000000000000000000x.wal"), None);
    }
}
