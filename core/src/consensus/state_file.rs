//! Small state files of the consensus layer (vote, committed log id, purged log id, snapshot).
//!
//! Each is replaced atomically: write `<name>.tmp`, fsync it, rename it over `<name>`, fsync the
//! directory. A reader therefore sees the old or the new content, never a mix.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

const MAGIC: &[u8; 8] = b"REPLRAFT";
/// 2: log ids and votes in the bodies use standard Raft leader ids (a log id is term + index).
/// Version 1 bodies held openraft's `leader_id_adv` ids and are refused with a clear error.
const VERSION: u16 = 2;
const HEADER_LEN: usize = 16;

// Format: consensus state file (little-endian)
//   0  [u8; 8] magic "REPLRAFT"
//   8  u16 format version (2)
//  10  u16 reserved (0)
//  12  u32 body length B
//  16  B bytes body (what the body holds depends on the file; see docs/FORMAT.md)
//  16+B u32 CRC32C over bytes 0..16+B
fn encode(body: &[u8]) -> io::Result<Vec<u8>> {
    let len =
        u32::try_from(body.len()).map_err(|_| io::Error::other("state file body exceeds 4 GiB"))?;
    let mut out = Vec::with_capacity(HEADER_LEN + body.len() + 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(body);
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// Atomically replaces `dir/name` with `body` and makes the change durable.
pub(crate) fn write(dir: &Path, name: &str, body: &[u8]) -> io::Result<()> {
    let bytes = encode(body)?;
    let path = dir.join(name);
    let tmp = dir.join(format!("{name}.tmp"));
    let named = |e: io::Error, p: &Path| io::Error::new(e.kind(), format!("{}: {e}", p.display()));
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(|e| named(e, &tmp))?;
    f.write_all(&bytes).map_err(|e| named(e, &tmp))?;
    f.sync_all().map_err(|e| named(e, &tmp))?;
    drop(f);
    std::fs::rename(&tmp, &path).map_err(|e| named(e, &path))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| named(e, dir))
}

/// Reads the body of `dir/name`; `None` when the file does not exist. A damaged file is an
/// error naming it: the state it holds (a vote, say) must not be silently forgotten.
pub(crate) fn read(dir: &Path, name: &str) -> io::Result<Option<Vec<u8>>> {
    let path = dir.join(name);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
    };
    let bad = |why: &str| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("consensus state file {} is damaged: {why}", path.display()),
        )
    };
    if bytes.len() < HEADER_LEN + 4 || &bytes[..8] != MAGIC {
        return Err(bad("bad magic or too short"));
    }
    let version = u16::from_le_bytes([bytes[8], bytes[9]]);
    if version != VERSION {
        return Err(bad(&format!(
            "format version {version}, expected {VERSION}"
        )));
    }
    let len = u32::from_le_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]) as usize;
    if bytes.len() != HEADER_LEN + len + 4 {
        return Err(bad("length does not match the file size"));
    }
    let (data, crc) = bytes.split_at(HEADER_LEN + len);
    if crc32c::crc32c(data) != u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]) {
        return Err(bad("CRC mismatch"));
    }
    Ok(Some(data[HEADER_LEN..].to_vec()))
}

/// Reads and JSON-decodes `dir/name`.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(
    dir: &Path,
    name: &str,
) -> io::Result<Option<T>> {
    match read(dir, name)? {
        None => Ok(None),
        Some(body) => serde_json::from_slice(&body).map(Some).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {e}", dir.join(name).display()),
            )
        }),
    }
}

/// JSON-encodes `value` into `dir/name` (see [`write`]).
pub(crate) fn write_json<T: serde::Serialize>(dir: &Path, name: &str, value: &T) -> io::Result<()> {
    let body = serde_json::to_vec(value).map_err(io::Error::other)?;
    write(dir, name, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage_detection() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read(dir.path(), "vote").unwrap().is_none());
        write(dir.path(), "vote", b"hello").unwrap();
        assert_eq!(read(dir.path(), "vote").unwrap().unwrap(), b"hello");
        write(dir.path(), "vote", b"again").unwrap();
        assert_eq!(read(dir.path(), "vote").unwrap().unwrap(), b"again");
        let path = dir.path().join("vote");
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[17] ^= 1;
        std::fs::write(&path, bytes).unwrap();
        let err = read(dir.path(), "vote").unwrap_err().to_string();
        assert!(
            err.contains("CRC mismatch") && err.contains("vote"),
            "{err}"
        );
    }
}
