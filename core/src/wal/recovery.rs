//! Opening a WAL directory: lock it, find the segments, verify them, repair a torn tail.

use std::fs::{File, OpenOptions};
use std::os::unix::io::AsRawFd;
use std::path::Path;

use super::error::{Result, WalError};
use super::format::{parse_segment_file_name, segment_file_name, SegmentHeader};
use super::segment::{scan_segment, ScanEnd, SegmentMeta};
use super::{RecoveryMode, WalOptions};

/// An exclusive `flock` on `<dir>/LOCK`, held while the WAL is open, so two processes (or two
/// handles in one process) never append to the same files. Released when dropped.
pub(crate) struct DirLock {
    _file: File,
}

impl DirLock {
    fn acquire(dir: &Path) -> Result<DirLock> {
        let path = dir.join("LOCK");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| WalError::io(&path, e))?;
        // SAFETY: flock on a file descriptor we own; no memory is involved.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            if err.kind() == std::io::ErrorKind::WouldBlock {
                return Err(WalError::Locked {
                    dir: dir.to_path_buf(),
                });
            }
            return Err(WalError::io(&path, err));
        }
        Ok(DirLock { _file: file })
    }
}

pub(crate) struct Recovered {
    pub segments: Vec<SegmentMeta>,
    pub lock: DirLock,
}

pub(crate) fn recover(opts: &WalOptions) -> Result<Recovered> {
    let dir = &opts.dir;
    std::fs::create_dir_all(dir).map_err(|e| WalError::io(dir, e))?;
    let lock = DirLock::acquire(dir)?;
    let mut ids = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| WalError::io(dir, e))? {
        let entry = entry.map_err(|e| WalError::io(dir, e))?;
        if let Some(id) = entry.file_name().to_str().and_then(parse_segment_file_name) {
            ids.push(id);
        }
    }
    ids.sort_unstable();
    let tolerate = opts.recovery_mode == RecoveryMode::TolerateTornTail;
    let mut segments: Vec<SegmentMeta> = Vec::with_capacity(ids.len());
    let mut dir_changed = false;
    for (i, &id) in ids.iter().enumerate() {
        let path = dir.join(segment_file_name(id));
        let is_last = i + 1 == ids.len();
        if let Some(prev) = segments.last() {
            if id != prev.id + 1 {
                return Err(WalError::corrupt(
                    &path,
                    0,
                    format!(
                        "segment {} is missing (found {} after {})",
                        prev.id + 1,
                        id,
                        prev.id
                    ),
                ));
            }
        }
        let (meta, end) = match scan_segment(&path)? {
            Some(found) => found,
            None if is_last && tolerate => {
                // A segment whose creation was cut off holds no records: remove it.
                tracing::warn!(path = %path.display(), "removing a WAL segment with a torn header");
                std::fs::remove_file(&path).map_err(|e| WalError::io(&path, e))?;
                dir_changed = true;
                continue;
            }
            None => {
                return Err(WalError::corrupt(
                    &path,
                    0,
                    "segment header is missing or zeroed",
                ));
            }
        };
        if meta.starts_new_log && !segments.is_empty() {
            // A reset_to() was interrupted after creating the new log's first segment: finish
            // deleting the old one.
            tracing::warn!(path = %path.display(), "removing WAL segments made obsolete by a reset");
            for old in segments.drain(..) {
                std::fs::remove_file(&old.path).map_err(|e| WalError::io(&old.path, e))?;
            }
            dir_changed = true;
        }
        if let Some(prev) = segments.last() {
            if meta.first_lsn != prev.next_lsn {
                return Err(WalError::corrupt(
                    &path,
                    24,
                    format!(
                        "segment starts at LSN {} but the previous one ends before LSN {}",
                        meta.first_lsn, prev.next_lsn
                    ),
                ));
            }
        }
        if let ScanEnd::Damaged {
            offset,
            reason,
            torn,
        } = end
        {
            if !(is_last && torn && tolerate) {
                let hint = if is_last && torn {
                    " (looks like a torn write; RecoveryMode::TolerateTornTail would truncate it)"
                } else {
                    ""
                };
                return Err(WalError::corrupt(&path, offset, format!("{reason}{hint}")));
            }
            tracing::warn!(path = %path.display(), offset, %reason, "truncating torn WAL tail");
            let f = OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(|e| WalError::io(&path, e))?;
            f.set_len(offset).map_err(|e| WalError::io(&path, e))?;
            f.sync_all().map_err(|e| WalError::io(&path, e))?;
        }
        segments.push(meta);
    }
    if segments.is_empty() {
        let id = ids.last().copied().unwrap_or(1).max(1);
        segments.push(create_segment(dir, id, 1, 0)?);
        dir_changed = true;
    }
    if dir_changed {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| WalError::io(dir, e))?;
    }
    Ok(Recovered { segments, lock })
}

/// Creates and fsyncs a segment file holding only its header (the caller fsyncs the directory).
pub(crate) fn create_segment(
    dir: &Path,
    id: u64,
    first_lsn: u64,
    flags: u16,
) -> Result<SegmentMeta> {
    let path = dir.join(segment_file_name(id));
    let header = SegmentHeader {
        segment_id: id,
        first_lsn,
        flags,
    };
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| WalError::io(&path, e))?;
    std::io::Write::write_all(&mut f, &header.encode()).map_err(|e| WalError::io(&path, e))?;
    f.sync_all().map_err(|e| WalError::io(&path, e))?;
    Ok(SegmentMeta::new(id, path, first_lsn))
}
