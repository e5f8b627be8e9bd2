//! `repl_config`: a loaded, validated `ReplicationConfig` behind an opaque handle, its read-only
//! accessors, and opening the WAL it describes.

use replication_core::config::{ReplicationConfig, ReplicationMode};
use replication_core::Wal;

use crate::boundary::{arg_out, arg_ref, arg_str, arg_text_buf, boundary};
use crate::result::{repl_result, Failure, FfiResult};
use crate::wal::repl_wal;

/// Values of `repl_config_mode`: when a write counts as committed.
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum repl_replication_mode {
    /// Every voter has durably appended the write.
    REPL_MODE_SYNC = 0,
    /// `min_sync_replicas` followers have durably appended the write (or the replication
    /// timeout passed).
    REPL_MODE_SEMI_SYNC = 1,
    /// The leader has durably appended the write; followers catch up in the background.
    REPL_MODE_ASYNC = 2,
}

/// A replication configuration, loaded from TOML and validated: every value it holds is usable.
/// Create with `repl_config_from_toml` or `repl_config_from_file`, release with
/// `repl_config_free`. It cannot be changed after loading.
///
/// Thread safety: immutable, so every function except `repl_config_free` may be called on the
/// same config from any number of threads at once.
#[allow(non_camel_case_types)]
pub struct repl_config {
    config: ReplicationConfig,
    /// Computed once, so that `repl_config_warning(i)` indexes a list that cannot change.
    warnings: Vec<String>,
}

impl repl_config {
    fn new(config: ReplicationConfig) -> Self {
        let warnings = config.warnings();
        repl_config { config, warnings }
    }

    pub(crate) fn inner(&self) -> &ReplicationConfig {
        &self.config
    }
}

/// Element `i` of `items`, or `REPL_ERR_INVALID_ARGUMENT` naming the valid range.
fn nth<'a, T>(items: &'a [T], i: usize, what: &str) -> FfiResult<&'a T> {
    items.get(i).ok_or_else(|| {
        Failure::new(
            repl_result::REPL_ERR_INVALID_ARGUMENT,
            format!(
                "index {i} is out of range: the config has {} {what}",
                items.len()
            ),
        )
    })
}

/// Body of every scalar accessor: checks `cfg` and `out`, then stores `get(config)`.
///
/// # Safety
/// `cfg` must be NULL or a live config; `out` NULL or writable.
unsafe fn scalar<T>(
    func: &'static str,
    cfg: *const repl_config,
    out: *mut T,
    get: impl FnOnce(&repl_config) -> FfiResult<T>,
) -> repl_result {
    boundary(func, || {
        // SAFETY: forwarded contract.
        let (cfg, out) = unsafe { (arg_ref(cfg, &"cfg")?, arg_out(out, &"out")?) };
        out.write(get(cfg)?);
        Ok(())
    })
}

/// Body of every text accessor: checks the arguments, then copies `get(config)` into the
/// caller's buffer with the size protocol of `repl_error_message`.
///
/// # Safety
/// `cfg` must be NULL or a live config; `buf` NULL or writable for `len` bytes; `out_len` NULL
/// or writable.
unsafe fn text(
    func: &'static str,
    cfg: *const repl_config,
    buf: *mut std::ffi::c_char,
    len: usize,
    out_len: *mut usize,
    get: impl FnOnce(&repl_config) -> FfiResult<&str>,
) -> repl_result {
    boundary(func, || {
        // SAFETY: forwarded contract.
        let (cfg, buf, out_len) = unsafe {
            (
                arg_ref(cfg, &"cfg")?,
                arg_text_buf(buf, len, &"buf")?,
                arg_out(out_len, &"out_len")?,
            )
        };
        buf.write(get(cfg)?, out_len)
    })
}

/// Parses and validates the TOML document `toml` (`toml_len` bytes of UTF-8) and stores a new
/// config in `*out`. The caller owns it and must release it with `repl_config_free`.
///
/// Keys and defaults are ThemisDB's (`node_id` is required). Fails with
/// `REPL_ERR_CONFIG_PARSE` for a TOML syntax error (the detail gives line and column) and
/// `REPL_ERR_CONFIG_INVALID` for unknown keys, wrong types, missing or inconsistent values: the
/// detail then lists every problem found, one per line, not just the first.
///
/// Thread safety: any thread.
///
/// # Safety
/// `toml` must be NULL or readable for `toml_len` bytes; `out` NULL or valid for writing a
/// pointer.
#[no_mangle]
pub unsafe extern "C" fn repl_config_from_toml(
    toml: *const u8,
    toml_len: usize,
    out: *mut *mut repl_config,
) -> repl_result {
    boundary("repl_config_from_toml", || {
        // SAFETY: the caller's contract.
        let (toml, out) = unsafe { (arg_str(toml, toml_len, &"toml")?, arg_out(out, &"out")?) };
        let config = ReplicationConfig::from_toml_str(toml)?;
        out.write(Box::into_raw(Box::new(repl_config::new(config))));
        Ok(())
    })
}

/// Reads the TOML file at `path` (`path_len` bytes of UTF-8; relative paths are relative to the
/// working directory), then does what `repl_config_from_toml` does. A file that cannot be read
/// or is not UTF-8 gives `REPL_ERR_CONFIG_IO`, with the path and OS error in the detail.
///
/// Thread safety: any thread.
///
/// # Safety
/// `path` must be NULL or readable for `path_len` bytes; `out` NULL or valid for writing a
/// pointer.
#[no_mangle]
pub unsafe extern "C" fn repl_config_from_file(
    path: *const u8,
    path_len: usize,
    out: *mut *mut repl_config,
) -> repl_result {
    boundary("repl_config_from_file", || {
        // SAFETY: the caller's contract.
        let (path, out) = unsafe { (arg_str(path, path_len, &"path")?, arg_out(out, &"out")?) };
        let config = ReplicationConfig::from_toml_file(path)?;
        out.write(Box::into_raw(Box::new(repl_config::new(config))));
        Ok(())
    })
}

/// Releases a config from `repl_config_from_toml` or `repl_config_from_file`. NULL is accepted
/// and ignored. WALs opened from it are independent of it and stay open.
///
/// Thread safety: must be the last call on the config.
///
/// # Safety
/// `cfg` must be NULL or a config that has not been freed.
#[no_mangle]
pub unsafe extern "C" fn repl_config_free(cfg: *mut repl_config) {
    let _ = boundary("repl_config_free", || {
        if !cfg.is_null() {
            // SAFETY: the caller's contract: a config we allocated with Box::into_raw.
            drop(unsafe { Box::from_raw(cfg) });
        }
        Ok(())
    });
}

/// Stores `node_id`: this node's cluster-unique id, never 0.
///
/// Thread safety: any thread, concurrently.
///
/// # Safety
/// `cfg` must be NULL or a live config; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn repl_config_node_id(
    cfg: *const repl_config,
    out: *mut u64,
) -> repl_result {
    // SAFETY: forwarded contract.
    unsafe { scalar("repl_config_node_id", cfg, out, |c| Ok(c.config.node_id)) }
}

/// Copies `listen_address` (`host:port` the replication server binds) into `buf`, with the size
/// protocol of `repl_error_message`.
///
/// Thread safety: any thread, concurrently.
///
/// # Safety
/// `cfg` must be NULL or a live config; `buf` NULL or writable for `len` bytes; `out_len` NULL
/// or writable.
#[no_mangle]
pub unsafe extern "C" fn repl_config_listen_address(
    cfg: *const repl_config,
    buf: *mut std::ffi::c_char,
    len: usize,
    out_len: *mut usize,
) -> repl_result {
    // SAFETY: forwarded contract.
    unsafe {
        text("repl_config_listen_address", cfg, buf, len, out_len, |c| {
            Ok(&c.config.listen_address)
        })
    }
}

/// Stores `mode` as a `repl_replication_mode` value.
///
/// Thread safety: any thread, concurrently.
///
/// # Safety
/// `cfg` must be NULL or a live config; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn repl_config_mode(cfg: *const repl_config, out: *mut u32) -> repl_result {
    // SAFETY: forwarded contract.
    unsafe {
        scalar("repl_config_mode", cfg, out, |c| {
            let mode = match c.config.mode {
                ReplicationMode::Sync => repl_replication_mode::REPL_MODE_SYNC,
                ReplicationMode::SemiSync => repl_replication_mode::REPL_MODE_SEMI_SYNC,
                ReplicationMode::Async => repl_replication_mode::REPL_MODE_ASYNC,
            };
            Ok(mode as u32)
        })
    }
}

/// Stores `min_sync_replicas`: replicas that must confirm a write in SYNC and SEMI_SYNC mode.
///
/// Thread safety: any thread, concurrently.
///
/// # Safety
/// `cfg` must be NULL or a live config; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn repl_config_min_sync_replicas(
    cfg: *const repl_config,
    out: *mut u32,
) -> repl_result {
    // SAFETY: forwarded contract.
    unsafe {
        scalar("repl_config_min_sync_replicas", cfg, out, |c| {
            Ok(c.config.min_sync_replicas)
        })
    }
}

/// Stores `heartbeat_interval_ms`.
///
/// Thread safety: any thread, concurrently.
///
/// # Safety
/// `cfg` must be NULL or a live config; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn repl_config_heartbeat_interval_ms(
    cfg: *const repl_config,
    out: *mut u64,
) -> repl_result {
    // SAFETY: forwarded contract.
    unsafe {
        scalar("repl_config_heartbeat_interval_ms", cfg, out, |c| {
            Ok(c.config.heartbeat_interval_ms)
        })
    }
}

/// Stores `election_timeout_min_ms`, the lower bound of the randomised election timeout.
///
/// Thread safety: any thread, concurrently.
///
/// # Safety
/// `cfg` must be NULL or a live config; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn repl_config_election_timeout_min_ms(
    cfg: *const repl_config,
    out: *mut u64,
) -> repl_result {
    // SAFETY: forwarded contract.
    unsafe {
        scalar("repl_config_election_timeout_min_ms", cfg, out, |c| {
            Ok(c.config.election_timeout_min_ms)
        })
    }
}

/// Stores `election_timeout_max_ms`, the (exclusive) upper bound of the randomised election
/// timeout and the leader lease.
///
/// Thread safety: any thread, concurrently.
///
/// # Safety
/// `cfg` must be NULL or a live config; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn repl_config_election_timeout_max_ms(
    cfg: *const repl_config,
    out: *mut u64,
) -> repl_result {
    // SAFETY: forwarded contract.
    unsafe {
        scalar("repl_config_election_timeout_max_ms", cfg, out, |c| {
            Ok(c.config.election_timeout_max_ms)
        })
    }
}

/// Stores `replication_timeout_ms`: how long the leader waits for replica confirmations.
///
/// Thread safety: any thread, concurrently.
///
/// # Safety
/// `cfg` must be NULL or a live config; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn repl_config_replication_timeout_ms(
    cfg: *const repl_config,
    out: *mut u64,
) -> repl_result {
    // SAFETY: forwarded contract.
    unsafe {
        scalar("repl_config_replication_timeout_ms", cfg, out, |c| {
            Ok(c.config.replication_timeout_ms)
        })
    }
}

/// Stores `batch_size`: most records shipped to a follower in one message.
///
/// Thread safety: any thread, concurrently.
///
/// # Safety
/// `cfg` must be NULL or a live config; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn repl_config_batch_size(
    cfg: *const repl_config,
    out: *mut u64,
) -> repl_result {
    // SAFETY: forwarded contract.
    unsafe {
        scalar("repl_config_batch_size", cfg, out, |c| {
            Ok(c.config.batch_size)
        })
    }
}

/// Stores `batch_timeout_ms`: longest a partial batch waits before it is shipped.
///
/// Thread safety: any thread, concurrently.
///
/// # Safety
/// `cfg` must be NULL or a live config; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn repl_config_batch_timeout_ms(
    cfg: *const repl_config,
    out: *mut u64,
) -> repl_result {
    // SAFETY: forwarded contract.
    unsafe {
        scalar("repl_config_batch_timeout_ms", cfg, out, |c| {
            Ok(c.config.batch_timeout_ms)
        })
    }
}

/// Copies `wal_directory`, as written in the configuration (a relative path is relative to the
/// working directory of the process that opens the WAL), into `buf`, with the size protocol of
/// `repl_error_message`.
///
/// Thread safety: any thread, concurrently.
///
/// # Safety
/// `cfg` must be NULL or a live config; `buf` NULL or writable for `len` bytes; `out_len` NULL
/// or writable.
#[no_mangle]
pub unsafe extern "C" fn repl_config_wal_directory(
    cfg: *const repl_config,
    buf: *mut std::ffi::c_char,
    len: usize,
    out_len: *mut usize,
) -> repl_result {
    // SAFETY: forwarded contract.
    unsafe {
        text("repl_config_wal_directory", cfg, buf, len, out_len, |c| {
            // Loaded from a TOML string, so always UTF-8.
            c.config.wal_directory.to_str().ok_or_else(|| {
                Failure::new(
                    repl_result::REPL_ERR_INVALID_ARGUMENT,
                    "wal_directory is not valid UTF-8",
                )
            })
        })
    }
}

/// Stores `wal_segment_size_bytes`.
///
/// Thread safety: any thread, concurrently.
///
/// # Safety
/// `cfg` must be NULL or a live config; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn repl_config_wal_segment_size_bytes(
    cfg: *const repl_config,
    out: *mut u64,
) -> repl_result {
    // SAFETY: forwarded contract.
    unsafe {
        scalar("repl_config_wal_segment_size_bytes", cfg, out, |c| {
            Ok(c.config.wal_segment_size_bytes)
        })
    }
}

/// Stores `wal_sync_on_commit`: whether every commit is fsynced before it is acknowledged.
///
/// Thread safety: any thread, concurrently.
///
/// # Safety
/// `cfg` must be NULL or a live config; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn repl_config_wal_sync_on_commit(
    cfg: *const repl_config,
    out: *mut bool,
) -> repl_result {
    // SAFETY: forwarded contract.
    unsafe {
        scalar("repl_config_wal_sync_on_commit", cfg, out, |c| {
            Ok(c.config.wal_sync_on_commit)
        })
    }
}

/// Stores `wal_sync_interval_ms`: the fsync period used when `wal_sync_on_commit` is false
/// (0: never fsync explicitly).
///
/// Thread safety: any thread, concurrently.
///
/// # Safety
/// `cfg` must be NULL or a live config; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn repl_config_wal_sync_interval_ms(
    cfg: *const repl_config,
    out: *mut u64,
) -> repl_result {
    // SAFETY: forwarded contract.
    unsafe {
        scalar("repl_config_wal_sync_interval_ms", cfg, out, |c| {
            Ok(c.config.wal_sync_interval_ms)
        })
    }
}

/// Stores `wal_zero_fill_ahead`.
///
/// Thread safety: any thread, concurrently.
///
/// # Safety
/// `cfg` must be NULL or a live config; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn repl_config_wal_zero_fill_ahead(
    cfg: *const repl_config,
    out: *mut bool,
) -> repl_result {
    // SAFETY: forwarded contract.
    unsafe {
        scalar("repl_config_wal_zero_fill_ahead", cfg, out, |c| {
            Ok(c.config.wal_zero_fill_ahead)
        })
    }
}

/// Stores `enable_wal_compression`.
///
/// Thread safety: any thread, concurrently.
///
/// # Safety
/// `cfg` must be NULL or a live config; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn repl_config_enable_wal_compression(
    cfg: *const repl_config,
    out: *mut bool,
) -> repl_result {
    // SAFETY: forwarded contract.
    unsafe {
        scalar("repl_config_enable_wal_compression", cfg, out, |c| {
            Ok(c.config.enable_wal_compression)
        })
    }
}

/// Stores `compression_level` (zstd, 1..=22).
///
/// Thread safety: any thread, concurrently.
///
/// # Safety
/// `cfg` must be NULL or a live config; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn repl_config_compression_level(
    cfg: *const repl_config,
    out: *mut i32,
) -> repl_result {
    // SAFETY: forwarded contract.
    unsafe {
        scalar("repl_config_compression_level", cfg, out, |c| {
            Ok(c.config.compression_level)
        })
    }
}

/// Stores the number of `[[peers]]` entries (0 for a single node).
///
/// Thread safety: any thread, concurrently.
///
/// # Safety
/// `cfg` must be NULL or a live config; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn repl_config_peer_count(
    cfg: *const repl_config,
    out: *mut usize,
) -> repl_result {
    // SAFETY: forwarded contract.
    unsafe {
        scalar("repl_config_peer_count", cfg, out, |c| {
            Ok(c.config.peers.len())
        })
    }
}

/// Stores the `node_id` of peer `i` (0-based, in document order). `i` at or beyond
/// `repl_config_peer_count` gives `REPL_ERR_INVALID_ARGUMENT`.
///
/// Thread safety: any thread, concurrently.
///
/// # Safety
/// `cfg` must be NULL or a live config; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn repl_config_peer_id(
    cfg: *const repl_config,
    i: usize,
    out: *mut u64,
) -> repl_result {
    // SAFETY: forwarded contract.
    unsafe {
        scalar("repl_config_peer_id", cfg, out, |c| {
            Ok(nth(&c.config.peers, i, "peers")?.node_id)
        })
    }
}

/// Copies the `address` (`host:port`) of peer `i` into `buf`, with the size protocol of
/// `repl_error_message`. `i` at or beyond `repl_config_peer_count` gives
/// `REPL_ERR_INVALID_ARGUMENT`.
///
/// Thread safety: any thread, concurrently.
///
/// # Safety
/// `cfg` must be NULL or a live config; `buf` NULL or writable for `len` bytes; `out_len` NULL
/// or writable.
#[no_mangle]
pub unsafe extern "C" fn repl_config_peer_address(
    cfg: *const repl_config,
    i: usize,
    buf: *mut std::ffi::c_char,
    len: usize,
    out_len: *mut usize,
) -> repl_result {
    // SAFETY: forwarded contract.
    unsafe {
        text("repl_config_peer_address", cfg, buf, len, out_len, |c| {
            Ok(&nth(&c.config.peers, i, "peers")?.address)
        })
    }
}

/// Stores how many warnings the config has: settings that are legal but risky (plaintext
/// transport, a mode its peers cannot deliver, a failover budget above 10 s, ...), worth
/// logging at startup. Read them with `repl_config_warning`.
///
/// Thread safety: any thread, concurrently.
///
/// # Safety
/// `cfg` must be NULL or a live config; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn repl_config_warnings_count(
    cfg: *const repl_config,
    out: *mut usize,
) -> repl_result {
    // SAFETY: forwarded contract.
    unsafe {
        scalar("repl_config_warnings_count", cfg, out, |c| {
            Ok(c.warnings.len())
        })
    }
}

/// Copies warning `i` (0-based) into `buf`, with the size protocol of `repl_error_message`.
/// `i` at or beyond `repl_config_warnings_count` gives `REPL_ERR_INVALID_ARGUMENT`.
///
/// Thread safety: any thread, concurrently.
///
/// # Safety
/// `cfg` must be NULL or a live config; `buf` NULL or writable for `len` bytes; `out_len` NULL
/// or writable.
#[no_mangle]
pub unsafe extern "C" fn repl_config_warning(
    cfg: *const repl_config,
    i: usize,
    buf: *mut std::ffi::c_char,
    len: usize,
    out_len: *mut usize,
) -> repl_result {
    // SAFETY: forwarded contract.
    unsafe {
        text("repl_config_warning", cfg, buf, len, out_len, |c| {
            Ok(nth(&c.warnings, i, "warnings")?)
        })
    }
}

/// Opens (creating if needed) the WAL the config describes and stores a new handle in `*out`,
/// exactly as `repl_wal_open` would with these options: directory `wal_directory` (relative to
/// the working directory if relative), segments of `wal_segment_size_bytes`, durability
/// `REPL_DURABILITY_EVERY_COMMIT` if `wal_sync_on_commit`, else `REPL_DURABILITY_INTERVAL`
/// every `wal_sync_interval_ms` (or `REPL_DURABILITY_NONE` when that is 0), zstd compression
/// when `enable_wal_compression` and `compression_algorithm = "zstd"`, and the recovery mode of
/// `wal_recovery_mode`. The caller owns the handle and must release it with `repl_wal_free`;
/// the config may be freed first.
///
/// Errors, locking and blocking as for `repl_wal_open`.
///
/// Thread safety: any thread.
///
/// # Safety
/// `cfg` must be NULL or a live config; `out` NULL or valid for writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn repl_wal_open_from_config(
    cfg: *const repl_config,
    out: *mut *mut repl_wal,
) -> repl_result {
    boundary("repl_wal_open_from_config", || {
        // SAFETY: the caller's contract.
        let (cfg, out) = unsafe { (arg_ref(cfg, &"cfg")?, arg_out(out, &"out")?) };
        let wal = Wal::open(cfg.config.wal_options())?;
        out.write(Box::into_raw(Box::new(repl_wal::new(wal))));
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_errors_name_the_range() {
        let e = nth(&[1, 2], 2, "peers").unwrap_err();
        assert_eq!(e.code, repl_result::REPL_ERR_INVALID_ARGUMENT);
        assert_eq!(e.detail, "index 2 is out of range: the config has 2 peers");
        assert_eq!(nth(&[1, 2], 1, "peers").unwrap(), &2);
    }

    #[test]
    fn warnings_are_computed_once_at_load() {
        let config = ReplicationConfig::from_toml_str("node_id = 3\nmode = \"SYNC\"\n").unwrap();
        let expected = config.warnings();
        assert!(!expected.is_empty(), "SYNC without peers warns");
        assert_eq!(repl_config::new(config).warnings, expected);
    }
}
