//! Byte format of a `DocumentStore` snapshot (shipped to lagging followers by consensus).

use crate::Lsn;

const MAGIC: [u8; 8] = *b"REPLSNAP";
const VERSION: u16 = 1;
const HEADER_LEN: usize = 8 + 2 + 2 + 8 + 8 + 8;

// Format: document store snapshot (little-endian)
//   0  [u8; 8] magic "REPLSNAP"
//   8  u16     format version (1)
//  10  u16     reserved, 0
//  12  u64     LSN of the last applied record
//  20  u64     term of that record
//  28  u64     number of entries N
//  36  N x { u32 key length K, K bytes key, u32 value length V, V bytes value }
//  ..  u32     CRC32C of every byte before it
pub(crate) struct Writer {
    buf: Vec<u8>,
    count: u64,
}

impl Writer {
    pub fn new(applied_lsn: Lsn, applied_term: u64) -> Self {
        let mut buf = Vec::with_capacity(HEADER_LEN);
        buf.extend_from_slice(&MAGIC);
        buf.extend_from_slice(&VERSION.to_le_bytes());
        buf.extend_from_slice(&0u16.to_le_bytes());
        buf.extend_from_slice(&applied_lsn.to_le_bytes());
        buf.extend_from_slice(&applied_term.to_le_bytes());
        buf.extend_from_slice(&0u64.to_le_bytes());
        Writer { buf, count: 0 }
    }

    pub fn entry(&mut self, key: &[u8], value: &[u8]) {
        self.buf
            .extend_from_slice(&(key.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(key);
        self.buf
            .extend_from_slice(&(value.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(value);
        self.count += 1;
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.buf[28..36].copy_from_slice(&self.count.to_le_bytes());
        let crc = crc32c::crc32c(&self.buf);
        self.buf.extend_from_slice(&crc.to_le_bytes());
        self.buf
    }
}

pub(crate) struct Parsed<'a> {
    pub applied_lsn: Lsn,
    pub applied_term: u64,
    pub entries: Vec<(&'a [u8], &'a [u8])>,
}

/// Parses and verifies a snapshot; hostile bytes give an error, never a panic.
pub(crate) fn parse(b: &[u8]) -> Result<Parsed<'_>, String> {
    if b.len() < HEADER_LEN + 4 || b[0..8] != MAGIC {
        return Err("not a document store snapshot (bad magic or too short)".into());
    }
    let (body, crc) = b.split_at(b.len() - 4);
    if crc32c::crc32c(body) != u32::from_le_bytes(crc.try_into().expect("4 bytes")) {
        return Err("snapshot checksum mismatch".into());
    }
    let version = u16::from_le_bytes([b[8], b[9]]);
    if version != VERSION {
        return Err(format!(
            "snapshot format version {version} is not supported"
        ));
    }
    let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().expect("8 bytes"));
    let count = u64_at(28);
    let mut pos = HEADER_LEN;
    let take = |pos: &mut usize| -> Result<&[u8], String> {
        let len_bytes = body
            .get(*pos..*pos + 4)
            .ok_or("snapshot entry runs past the end")?;
        let len = u32::from_le_bytes(len_bytes.try_into().expect("4 bytes")) as usize;
        let bytes = body
            .get(*pos + 4..*pos + 4 + len)
            .ok_or("snapshot entry runs past the end")?;
        *pos += 4 + len;
        Ok(bytes)
    };
    let mut entries = Vec::new();
    for _ in 0..count {
        let k = take(&mut pos)?;
        let v = take(&mut pos)?;
        entries.push((k, v));
    }
    if pos != body.len() {
        return Err("snapshot has trailing bytes".into());
    }
    Ok(Parsed {
        applied_lsn: u64_at(12),
        applied_term: u64_at(20),
        entries,
    })
}
