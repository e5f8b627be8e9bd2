//! Node keys and signed votes.
//!
//! Mutual TLS already authenticates every connection, so why sign votes too? A vote request
//! decides who leads, and it is the one Raft message whose effect outlives the connection
//! that carried it: a node that grants a vote persists it. Signing the request with the
//! candidate's own ed25519 key, over the candidate id, term, last log id and a nonce, means
//! a granted vote can be traced to a key only the candidate holds, even if a TLS identity
//! were shared or a proxy sat in between, and the nonce makes a captured request useless a
//! second time. See [`vote_signing`] for the encoding and the replay rule.

mod error;
pub mod node_key;
pub mod vote_signing;

use std::io::Write;
use std::path::Path;

pub use error::SecurityError;
pub use node_key::{NodeKey, NodePublicKey};
pub use vote_signing::{
    ClaimLogId, SignedVote, VoteClaim, VoteMetrics, VoteMetricsSnapshot, VoteOutcome,
    VoteSignature, VoteSigner, VoteVerifier,
};

/// Replaces `path` with `bytes` so that a crash leaves either the old or the new content:
/// write a temporary file in the same directory (created with `mode`), fsync it, rename it
/// over `path`, fsync the directory.
pub fn write_file_atomically(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};

    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let file_name = path.file_name().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{} does not name a file", path.display()),
        )
    })?;
    let mut tmp_name = file_name.to_os_string();
    tmp_name.push(format!(".tmp.{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    // A leftover from a crash may have looser permissions; `mode` applies only on creation.
    match std::fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        // The umask may have narrowed `mode`; never widened it, but make it exact.
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn atomic_write_replaces_content_and_sets_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        write_file_atomically(&path, b"one", 0o644).unwrap();
        write_file_atomically(&path, b"two", 0o600).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n != "state")
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
}
