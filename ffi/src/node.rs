//! `repl_node`: one cluster member (Raft consensus on the WAL, mutual TLS to its peers) behind
//! an opaque handle, with the host's state machine as a C callback.
//!
//! The node runs on the library's shared tokio runtime (`runtime.rs`). Blocking functions wait
//! on the caller's thread; the apply, snapshot and restore callbacks run on a runtime thread
//! (a restore at start on the starting thread), where blocking functions are refused with
//! `REPL_ERR_CLUSTER_REENTRANT_CALL`.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{c_char, c_void};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use replication_core::config::ReplicationMode;
use replication_core::consensus::{
    AppliedEntry, ApplyError, ApplyHandler, ClientWrite, ConsensusError, ElectionStart,
    MemoryStore, NetworkedNode, ReadConsistency, ReplicationNode, Role,
};
use replication_core::security::NodeKey;
use replication_core::NodeId;

use crate::boundary::{arg_mut, arg_out, arg_ref, arg_slice, arg_str, arg_text_buf, boundary};
use crate::config::{repl_config, repl_replication_mode};
use crate::result::{repl_result, Failure, FfiResult};
use crate::runtime::{self, block_on, CallbackScope};
use crate::wal::{record_from_c, repl_record};

/// `repl_node_append`'s `mode` for "the node's current mode" (see `repl_node_set_mode`).
pub const REPL_MODE_DEFAULT: u32 = 0xFFFF_FFFF;

/// Values of `repl_node_role` and `repl_node_info.role`.
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum repl_role {
    REPL_ROLE_LEADER = 0,
    REPL_ROLE_FOLLOWER = 1,
    REPL_ROLE_CANDIDATE = 2,
    /// A non-voting member.
    REPL_ROLE_LEARNER = 3,
    /// The node was shut down (or stopped).
    REPL_ROLE_SHUTDOWN = 4,
}

/// Values of `repl_node_read`'s `consistency`.
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum repl_read_consistency {
    /// Sees every write acknowledged before the read started, cluster-wide. Leader only
    /// (leader lease, ReadIndex round when the lease is not valid).
    REPL_READ_LINEARIZABLE = 0,
    /// The leader's applied state, without confirming leadership. Leader only.
    REPL_READ_LEADER_LOCAL = 1,
    /// The local state, if it is at most `max_staleness_ms` behind the leader. Any node.
    REPL_READ_FOLLOWER_BOUNDED = 2,
}

/// One committed write, as handed to a `repl_apply_fn`.
///
/// Every pointer is valid only during the callback: copy what you keep. The strings are UTF-8
/// and not NUL-terminated.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct repl_applied_entry {
    /// The entry's LSN (its Raft log index); increases from one callback to the next.
    pub lsn: u64,
    /// Term of the leader that created the entry.
    pub term: u64,
    /// HLC timestamp the leader assigned.
    pub hlc: u64,
    /// One of `repl_operation` (or another non-zero code a writer used).
    pub op: u8,
    pub collection: *const u8,
    pub collection_len: usize,
    pub doc_id: *const u8,
    pub doc_id_len: usize,
    /// Whether `txn_id` holds a transaction id.
    pub has_txn_id: bool,
    pub txn_id: u64,
    pub payload: *const u8,
    pub payload_len: usize,
}

/// The host's state machine: called once per committed write, in log (LSN) order.
///
/// - Thread: a library thread named `replication-rt` (never the thread that called
///   `repl_node_append`); calls for one node never overlap. One exception: when a node
///   restarts, the entries its log holds as committed are re-applied during `repl_node_start`
///   (or `repl_node_start_with_snapshots`), on the calling thread, before it returns.
/// - It may call the non-blocking functions (`repl_node_id`, `repl_node_role`,
///   `repl_node_leader`, `repl_node_term`, `repl_node_status`, `repl_node_local_addr`,
///   `repl_node_set_mode`, `repl_node_set_min_sync_replicas`) but must not call a blocking one
///   (start, initialize, append, wait_for_lsn, read, start_election, add_learner,
///   change_membership, trigger_snapshot, shutdown) on any node: those return
///   `REPL_ERR_CLUSTER_REENTRANT_CALL` there. `repl_node_free` from a callback stops the node
///   in the background.
/// - Keep it short: the node applies nothing else while it runs. It must return normally (no
///   longjmp, no C++ exception): the entry cannot be skipped.
/// - After a restart the node re-applies its log from just after its latest snapshot (restored
///   first through the `repl_restore_fn` of `repl_node_start_with_snapshots`), or from the
///   start when it has none. A host with durable storage skips LSNs it already holds.
#[allow(non_camel_case_types)]
pub type repl_apply_fn =
    Option<unsafe extern "C" fn(userdata: *mut c_void, entry: *const repl_applied_entry)>;

/// Where a `repl_snapshot_fn` writes the host's state: a buffer the library owns. Append bytes
/// with `repl_snapshot_write`. Valid only during the callback it was handed to; never free it.
#[allow(non_camel_case_types)]
pub struct repl_snapshot_writer {
    buf: Vec<u8>,
}

/// Produces the host's whole state, for `repl_node_start_with_snapshots`: write it with
/// `repl_snapshot_write(writer, ...)` (any number of calls; the bytes are concatenated) and
/// return 0. Any other return value is a failure: the snapshot is discarded and, as for a
/// failing apply, the node stops (its calls then fail); the value appears in the error detail.
///
/// - The bytes must reflect exactly the entries applied so far (every `repl_apply_fn` call
///   that returned): the library never applies or restores while this callback runs.
/// - Thread: a library thread named `replication-rt`. It never overlaps the apply or restore
///   callback of the same node. The rules of `repl_apply_fn` about which `repl_node_*`
///   functions may be called hold here too.
/// - Called when the library decides to snapshot (every 5000 entries) and on
///   `repl_node_trigger_snapshot`. The bytes go to a file in the node's WAL directory and to
///   followers that are behind the purged log; they are opaque to the library.
/// - It must return normally (no longjmp, no C++ exception).
#[allow(non_camel_case_types)]
pub type repl_snapshot_fn =
    Option<unsafe extern "C" fn(userdata: *mut c_void, writer: *mut repl_snapshot_writer) -> i32>;

/// Replaces the host's whole state with `len` bytes at `data` that a `repl_snapshot_fn`
/// produced (possibly on another node), for `repl_node_start_with_snapshots`. Return 0 on
/// success; any other value is a failure, which stops the node (or makes the start fail) and
/// appears in the error detail.
///
/// - Afterwards the host state must be exactly the snapshot: drop what is not in it. Apply
///   calls then continue with the first LSN after the snapshot.
/// - `data` is never NULL and valid only during the call: copy what you keep.
/// - Thread: when a follower installs a snapshot from the leader, a library thread named
///   `replication-rt`; when a node restarts with a snapshot on disk, the thread calling
///   `repl_node_start_with_snapshots`, before it returns. Never overlaps the apply or snapshot
///   callback of the same node; blocking `repl_node_*` calls are refused in it, as in
///   `repl_apply_fn`.
/// - It must return normally (no longjmp, no C++ exception).
#[allow(non_camel_case_types)]
pub type repl_restore_fn =
    Option<unsafe extern "C" fn(userdata: *mut c_void, data: *const u8, len: usize) -> i32>;

/// One member for `repl_node_initialize`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct repl_member {
    /// The member's `node_id`.
    pub node_id: u64,
    /// Where it listens for replication traffic, `host:port`, UTF-8, `address_len` bytes.
    pub address: *const u8,
    pub address_len: usize,
}

/// A snapshot of a node's state (`repl_node_status`). LSN fields are 0 when there is none yet.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct repl_node_info {
    pub node_id: u64,
    /// One of `repl_role`.
    pub role: u32,
    pub term: u64,
    /// The leader this node knows of, 0 if none.
    pub leader: u64,
    /// Last LSN in the local log.
    pub last_lsn: u64,
    /// Last LSN durable in the local log.
    pub durable_lsn: u64,
    /// Last LSN this node knows to be committed.
    pub commit_lsn: u64,
    /// Last LSN applied to the state machine.
    pub applied_lsn: u64,
    /// Current acknowledgement mode, one of `repl_replication_mode`.
    pub mode: u32,
    pub min_sync_replicas: u32,
    pub voter_count: usize,
    pub learner_count: usize,
}

/// A running cluster member. Create with `repl_node_start`; stop with `repl_node_shutdown` and
/// release with `repl_node_free`.
///
/// Thread safety: every function may be called on the same node from any number of threads at
/// once, except `repl_node_free`, which must be the last call on the handle. Blocking functions
/// (see `repl_apply_fn`) wait on the calling thread and must not be called from a callback.
#[allow(non_camel_case_types)]
pub struct repl_node {
    id: NodeId,
    local_addr: SocketAddr,
    /// Kept after shutdown so that role, leader and term still answer.
    node: Arc<ReplicationNode>,
    /// `None` once shut down.
    running: Mutex<Option<NetworkedNode>>,
    store: Store,
}

/// Which state machine a node runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Store {
    /// The built-in `MemoryStore` (serves reads, snapshots itself).
    Builtin,
    /// The host's callbacks; `snapshots` when it registered snapshot and restore callbacks.
    Callbacks { snapshots: bool },
}

impl repl_node {
    fn slot(&self) -> MutexGuard<'_, Option<NetworkedNode>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The node, if it still runs.
    fn live(&self) -> FfiResult<Arc<ReplicationNode>> {
        if self.slot().is_none() {
            return Err(Failure::new(
                repl_result::REPL_ERR_HANDLE_CLOSED,
                format!(
                    "node {} was shut down; only repl_node_free (and role, leader, term, \
                     status) may be called on it",
                    self.id
                ),
            ));
        }
        Ok(self.node.clone())
    }

    fn role(&self) -> repl_role {
        if self.slot().is_none() {
            return repl_role::REPL_ROLE_SHUTDOWN;
        }
        match self.node.role() {
            Role::Leader => repl_role::REPL_ROLE_LEADER,
            Role::Follower => repl_role::REPL_ROLE_FOLLOWER,
            Role::Candidate => repl_role::REPL_ROLE_CANDIDATE,
            Role::Learner => repl_role::REPL_ROLE_LEARNER,
            Role::Shutdown => repl_role::REPL_ROLE_SHUTDOWN,
        }
    }
}

struct UserData(*mut c_void);
// SAFETY: the C contract of `repl_node_start`: userdata may be used from the library thread
// the callback runs on, for as long as the node runs.
unsafe impl Send for UserData {}
// SAFETY: as above; the library never touches it, it only hands it back to the callback, and
// calls for one node never overlap.
unsafe impl Sync for UserData {}

type SnapshotFn = unsafe extern "C" fn(*mut c_void, *mut repl_snapshot_writer) -> i32;
type RestoreFn = unsafe extern "C" fn(*mut c_void, *const u8, usize) -> i32;

/// The host's state machine as C callbacks.
struct CHandler {
    apply: unsafe extern "C" fn(*mut c_void, *const repl_applied_entry),
    /// The snapshot and restore callbacks, when the host registered them.
    snapshots: Option<(SnapshotFn, RestoreFn)>,
    userdata: UserData,
}

impl ApplyHandler for CHandler {
    fn apply(&self, e: &AppliedEntry<'_>) -> Result<(), ApplyError> {
        let entry = repl_applied_entry {
            lsn: e.lsn,
            term: e.term,
            hlc: e.hlc.0,
            op: e.op.code(),
            collection: e.collection.as_ptr(),
            collection_len: e.collection.len(),
            doc_id: e.doc_id.as_ptr(),
            doc_id_len: e.doc_id.len(),
            has_txn_id: e.txn_id.is_some(),
            txn_id: e.txn_id.unwrap_or(0),
            payload: e.payload.as_ptr(),
            payload_len: e.payload.len(),
        };
        let _scope = CallbackScope::enter();
        // SAFETY: the host's contract for `repl_apply_fn`; `entry` and what it points to live
        // until the call returns.
        unsafe { (self.apply)(self.userdata.0, &entry) };
        Ok(())
    }

    /// Without snapshot callbacks the node never snapshots on openraft's schedule (so its log
    /// is kept and a restart re-applies it).
    fn supports_snapshots(&self) -> bool {
        self.snapshots.is_some()
    }

    /// Without snapshot callbacks the snapshot is empty and the node re-applies its log.
    fn snapshot(&self) -> Result<Vec<u8>, ApplyError> {
        let Some((snapshot, _)) = self.snapshots else {
            return Ok(Vec::new());
        };
        let mut writer = repl_snapshot_writer { buf: Vec::new() };
        let _scope = CallbackScope::enter();
        // SAFETY: the host's contract for `repl_snapshot_fn`; `writer` lives until the call
        // returns and is only reached through `repl_snapshot_write` meanwhile.
        let rc = unsafe { snapshot(self.userdata.0, &mut writer) };
        if rc != 0 {
            return Err(ApplyError(format!(
                "the host's snapshot callback (repl_snapshot_fn) failed with code {rc}"
            )));
        }
        Ok(writer.buf)
    }

    fn restore(&self, data: &[u8]) -> Result<(), ApplyError> {
        let Some((_, restore)) = self.snapshots else {
            return Err(ApplyError(
                "this node must restore a snapshot, but it was started with repl_node_start, \
                 which registers no restore callback: start it with \
                 repl_node_start_with_snapshots"
                    .into(),
            ));
        };
        // Never NULL, even for an empty snapshot.
        static EMPTY: [u8; 1] = [0];
        let ptr = if data.is_empty() {
            EMPTY.as_ptr()
        } else {
            data.as_ptr()
        };
        let _scope = CallbackScope::enter();
        // SAFETY: the host's contract for `repl_restore_fn`; `data` lives until it returns.
        let rc = unsafe { restore(self.userdata.0, ptr, data.len()) };
        if rc != 0 {
            return Err(ApplyError(format!(
                "the host's restore callback (repl_restore_fn) failed with code {rc}"
            )));
        }
        Ok(())
    }
}

/// Appends `len` bytes at `data` to the snapshot being written through `writer` (see
/// `repl_snapshot_fn`). The library copies them into its own buffer: nothing is handed over
/// that either side must free. `data` may be NULL when `len` is 0.
///
/// Thread safety: only inside the `repl_snapshot_fn` call that received `writer`, on its
/// thread.
///
/// # Safety
/// `writer` NULL or the writer of a `repl_snapshot_fn` call that has not returned yet; `data`
/// NULL or readable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn repl_snapshot_write(
    writer: *mut repl_snapshot_writer,
    data: *const u8,
    len: usize,
) -> repl_result {
    boundary("repl_snapshot_write", || {
        // SAFETY: the caller's contract.
        let (writer, data) =
            unsafe { (arg_mut(writer, &"writer")?, arg_slice(data, len, &"data")?) };
        writer.buf.try_reserve(data.len()).map_err(|e| {
            Failure::new(
                repl_result::REPL_ERR_INVALID_ARGUMENT,
                format!(
                    "cannot grow the snapshot ({} bytes) by {len} bytes: {e}",
                    writer.buf.len()
                ),
            )
        })?;
        writer.buf.extend_from_slice(data);
        Ok(())
    })
}

/// A core error as a C failure. A write refused because another node leads is "not leader"
/// (the caller must go there), not merely "not durable".
fn consensus_failure(err: ConsensusError, me: NodeId) -> Failure {
    let redirect = matches!(&err, ConsensusError::NotDurable { leader: Some(l), .. } if *l != me);
    let f = Failure::from(err);
    if redirect {
        Failure::new(repl_result::REPL_ERR_CLUSTER_NOT_LEADER, f.detail)
    } else {
        f
    }
}

/// Runs a node operation on the shared runtime, waiting on the calling thread.
fn run<T>(
    me: NodeId,
    fut: impl std::future::Future<Output = Result<T, ConsensusError>>,
) -> FfiResult<T> {
    block_on(async move { fut.await.map_err(|e| consensus_failure(e, me)) })
}

fn invalid(detail: impl Into<String>) -> Failure {
    Failure::new(repl_result::REPL_ERR_INVALID_ARGUMENT, detail)
}

fn mode_from_c(mode: u32, allow_default: bool) -> FfiResult<Option<ReplicationMode>> {
    Ok(Some(match mode {
        REPL_MODE_DEFAULT if allow_default => return Ok(None),
        x if x == repl_replication_mode::REPL_MODE_SYNC as u32 => ReplicationMode::Sync,
        x if x == repl_replication_mode::REPL_MODE_SEMI_SYNC as u32 => ReplicationMode::SemiSync,
        x if x == repl_replication_mode::REPL_MODE_ASYNC as u32 => ReplicationMode::Async,
        other => {
            return Err(invalid(format!(
                "mode = {other} is not a repl_replication_mode value (0, 1 or 2){}",
                if allow_default {
                    " or REPL_MODE_DEFAULT"
                } else {
                    ""
                }
            )))
        }
    }))
}

fn mode_to_c(mode: ReplicationMode) -> u32 {
    (match mode {
        ReplicationMode::Sync => repl_replication_mode::REPL_MODE_SYNC,
        ReplicationMode::SemiSync => repl_replication_mode::REPL_MODE_SEMI_SYNC,
        ReplicationMode::Async => repl_replication_mode::REPL_MODE_ASYNC,
    }) as u32
}

/// Body of the functions that only read the handle: checks it and the output, then stores
/// `get(node)`.
///
/// # Safety
/// `node` NULL or a live handle; `out` NULL or writable.
unsafe fn query<T>(
    func: &'static str,
    node: *const repl_node,
    out: *mut T,
    get: impl FnOnce(&repl_node) -> FfiResult<T>,
) -> repl_result {
    boundary(func, || {
        // SAFETY: forwarded contract.
        let (node, out) = unsafe { (arg_ref(node, &"node")?, arg_out(out, &"out")?) };
        out.write(get(node)?);
        Ok(())
    })
}

/// Starts a node from `cfg` and stores it in `*out` (free it with `repl_node_free`).
///
/// Uses from the config: `listen_address` (port 0 picks a free port, see
/// `repl_node_local_addr`), `wal_directory` (the Raft log; consensus state in its `raft/`
/// subdirectory), the timings and mode, `node_key_path` (this node's ed25519 vote-signing key;
/// required), every `peers[].public_key` (to verify their votes), and `cert_path`, `key_path`,
/// `ca_path` for mutual TLS 1.3. Plaintext is used only with `allow_plaintext_dev = true` and no
/// certificate configured (development only; it logs a warning).
///
/// `on_apply` receives every committed write (see `repl_apply_fn`), with `userdata` as its
/// first argument; `userdata` must stay valid until `repl_node_shutdown` or `repl_node_free`
/// returns. With `on_apply` NULL the node uses a built-in in-memory store, which also serves
/// `repl_node_read` (`userdata` is then ignored).
///
/// An apply callback started this way has no snapshot callbacks: the node never snapshots on
/// the library's schedule (every 5000 entries), so its log is kept whole and a restart
/// re-applies it. It cannot install a snapshot either (restoring fails and stops it), so it
/// cannot catch up once the leader purged entries it lacks. Use
/// `repl_node_start_with_snapshots` for a long-lived node.
///
/// A new cluster does nothing until `repl_node_initialize` is called on one member.
///
/// Errors: `REPL_ERR_CONFIG_INVALID` (missing `node_key_path`, a peer without a valid public
/// key, unusable TLS files, a certificate not naming `node-<node_id>`, a listen address that
/// cannot be bound), `REPL_ERR_CONFIG_IO` (the node key file cannot be read),
/// `REPL_ERR_CLUSTER_STORAGE` (the WAL or consensus state cannot be opened, e.g. its directory
/// is in use).
///
/// Blocking; thread safety: any thread except a callback thread.
///
/// # Safety
/// `cfg` NULL or a live config; `on_apply` NULL or a function with the `repl_apply_fn`
/// contract; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn repl_node_start(
    cfg: *const repl_config,
    on_apply: repl_apply_fn,
    userdata: *mut c_void,
    out: *mut *mut repl_node,
) -> repl_result {
    boundary("repl_node_start", || {
        // SAFETY: the caller's contract.
        let (cfg, out) = unsafe { (arg_ref(cfg, &"cfg")?, arg_out(out, &"out")?) };
        let (handler, store): (Arc<dyn ApplyHandler>, Store) = match on_apply {
            Some(apply) => (
                Arc::new(CHandler {
                    apply,
                    snapshots: None,
                    userdata: UserData(userdata),
                }),
                Store::Callbacks { snapshots: false },
            ),
            None => (Arc::new(MemoryStore::new()), Store::Builtin),
        };
        out.write(start_node(cfg, handler, store)?);
        Ok(())
    })
}

/// Like `repl_node_start` with an apply callback, plus the host's snapshot callbacks, so that
/// the node can catch up through a snapshot when it is behind the leader's purged log (a new
/// member, or one that was down while the leader purged), and restarts from its latest
/// snapshot instead of the start of the log.
///
/// `on_snapshot` writes the host's whole state (see `repl_snapshot_fn`); `on_restore` replaces
/// it with such bytes (see `repl_restore_fn`). All three callbacks get `userdata` first; it
/// must stay valid until `repl_node_shutdown` or `repl_node_free` returns. When the node's
/// WAL directory holds a snapshot (after a restart), `on_restore` runs with it before this
/// function returns, on the calling thread.
///
/// Errors: those of `repl_node_start`; `REPL_ERR_NULL_ARGUMENT` if a callback is NULL (use
/// `repl_node_start` for the built-in store or for an apply callback alone);
/// `REPL_ERR_CLUSTER_STORAGE` if `on_restore` fails on the snapshot on disk (the detail gives
/// its return value).
///
/// Blocking; thread safety: any thread except a callback thread.
///
/// # Safety
/// `cfg` NULL or a live config; each callback NULL or a function with its type's contract;
/// `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn repl_node_start_with_snapshots(
    cfg: *const repl_config,
    on_apply: repl_apply_fn,
    on_snapshot: repl_snapshot_fn,
    on_restore: repl_restore_fn,
    userdata: *mut c_void,
    out: *mut *mut repl_node,
) -> repl_result {
    boundary("repl_node_start_with_snapshots", || {
        // SAFETY: the caller's contract.
        let (cfg, out) = unsafe { (arg_ref(cfg, &"cfg")?, arg_out(out, &"out")?) };
        let null = |name: &str| {
            Failure::new(
                repl_result::REPL_ERR_NULL_ARGUMENT,
                format!("argument `{name}` is NULL"),
            )
        };
        let apply = on_apply.ok_or_else(|| null("on_apply"))?;
        let snapshot = on_snapshot.ok_or_else(|| null("on_snapshot"))?;
        let restore = on_restore.ok_or_else(|| null("on_restore"))?;
        let handler = Arc::new(CHandler {
            apply,
            snapshots: Some((snapshot, restore)),
            userdata: UserData(userdata),
        });
        out.write(start_node(
            cfg,
            handler,
            Store::Callbacks { snapshots: true },
        )?);
        Ok(())
    })
}

/// The body of the start functions, once their arguments are checked.
fn start_node(
    cfg: &repl_config,
    handler: Arc<dyn ApplyHandler>,
    store: Store,
) -> FfiResult<*mut repl_node> {
    runtime::check_may_block()?;
    let config = cfg.inner().clone();
    config.validate_for_network().map_err(Failure::from)?;
    let key_path = config.node_key_path.clone().ok_or_else(|| {
        Failure::new(
            repl_result::REPL_ERR_CONFIG_INVALID,
            "node_key_path is required to start a node: it signs this node's vote \
             requests (create one with `replicad keygen` or repl_dev_cluster_materials)",
        )
    })?;
    let key = NodeKey::load(&key_path).map_err(|e| {
        Failure::new(
            repl_result::REPL_ERR_CONFIG_IO,
            format!("node_key_path {}: {e}", key_path.display()),
        )
    })?;
    let mut peer_keys = Vec::new();
    for (i, peer) in config.peers.iter().enumerate() {
        match peer.parsed_public_key() {
            Some(Ok(k)) => peer_keys.push((peer.node_id, k)),
            Some(Err(e)) => {
                return Err(Failure::new(
                    repl_result::REPL_ERR_CONFIG_INVALID,
                    format!("peers[{i}].public_key (node {}): {e}", peer.node_id),
                ))
            }
            None => {}
        }
    }
    let started = block_on(async {
        let security = NetworkedNode::security_from_config(&config)?;
        NetworkedNode::start(&config, handler, security, key, peer_keys).await
    });
    let nn = started.map_err(|f| match f.code {
        // Refusals at start are about the configuration (TLS material, listen address).
        repl_result::REPL_ERR_CLUSTER_INVALID_REQUEST => {
            Failure::new(repl_result::REPL_ERR_CONFIG_INVALID, f.detail)
        }
        _ => f,
    })?;
    let node = repl_node {
        id: config.node_id,
        local_addr: nn.local_addr(),
        node: nn.node().clone(),
        running: Mutex::new(Some(nn)),
        store,
    };
    Ok(Box::into_raw(Box::new(node)))
}

/// Stores this node's id.
///
/// Non-blocking; thread safety: any thread, callbacks included; also after shutdown.
///
/// # Safety
/// `node` NULL or a live handle; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn repl_node_id(node: *const repl_node, out: *mut u64) -> repl_result {
    // SAFETY: forwarded contract.
    unsafe { query("repl_node_id", node, out, |n| Ok(n.id)) }
}

/// Copies the address the consensus listener is bound to (`host:port`; the real port when the
/// config asked for port 0) into `buf`, with the text-buffer protocol of `repl_error_message`.
///
/// Non-blocking; thread safety: any thread, callbacks included; also after shutdown.
///
/// # Safety
/// `node` NULL or a live handle; `buf` NULL or writable for `len` bytes; `out_len` NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn repl_node_local_addr(
    node: *const repl_node,
    buf: *mut c_char,
    len: usize,
    out_len: *mut usize,
) -> repl_result {
    boundary("repl_node_local_addr", || {
        // SAFETY: the caller's contract.
        let (node, buf, out_len) = unsafe {
            (
                arg_ref(node, &"node")?,
                arg_text_buf(buf, len, &"buf")?,
                arg_out(out_len, &"out_len")?,
            )
        };
        buf.write(&node.local_addr.to_string(), out_len)
    })
}

/// Stores the node's role, a `repl_role` value (`REPL_ROLE_SHUTDOWN` after shutdown).
///
/// Non-blocking; thread safety: any thread, callbacks included.
///
/// # Safety
/// `node` NULL or a live handle; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn repl_node_role(node: *const repl_node, out: *mut u32) -> repl_result {
    // SAFETY: forwarded contract.
    unsafe { query("repl_node_role", node, out, |n| Ok(n.role() as u32)) }
}

/// Stores the id of the leader this node knows of, or 0 when it knows none.
///
/// Non-blocking; thread safety: any thread, callbacks included.
///
/// # Safety
/// `node` NULL or a live handle; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn repl_node_leader(node: *const repl_node, out: *mut u64) -> repl_result {
    // SAFETY: forwarded contract.
    unsafe {
        query("repl_node_leader", node, out, |n| {
            Ok(n.node.leader().unwrap_or(0))
        })
    }
}

/// Stores the node's current Raft term.
///
/// Non-blocking; thread safety: any thread, callbacks included.
///
/// # Safety
/// `node` NULL or a live handle; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn repl_node_term(node: *const repl_node, out: *mut u64) -> repl_result {
    // SAFETY: forwarded contract.
    unsafe { query("repl_node_term", node, out, |n| Ok(n.node.term())) }
}

/// Fills `*out` with a snapshot of the node's state (role, term, leader, LSNs, mode, member
/// counts).
///
/// Non-blocking; thread safety: any thread, callbacks included.
///
/// # Safety
/// `node` NULL or a live handle; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn repl_node_status(
    node: *const repl_node,
    out: *mut repl_node_info,
) -> repl_result {
    // SAFETY: forwarded contract.
    unsafe {
        query("repl_node_status", node, out, |n| {
            let s = n.node.status();
            Ok(repl_node_info {
                node_id: s.id,
                role: n.role() as u32,
                term: s.term,
                leader: s.leader.unwrap_or(0),
                last_lsn: s.last_lsn.unwrap_or(0),
                durable_lsn: s.durable_lsn,
                commit_lsn: s.commit_lsn.unwrap_or(0),
                applied_lsn: s.applied_lsn.unwrap_or(0),
                mode: mode_to_c(s.policy.mode),
                min_sync_replicas: s.policy.min_sync_replicas,
                voter_count: s.voters.len(),
                learner_count: s.learners.len(),
            })
        })
    }
}

/// Forms a new cluster of the `n` voters in `members` (ids and `host:port` addresses, this
/// node included). Call once, on one node of a new cluster; the others learn it from that node.
/// `n` must be at least 1 and ids unique.
///
/// Blocking; thread safety: any thread except a callback thread.
///
/// # Safety
/// `node` NULL or a live handle; `members` NULL or an array of `n` valid members.
#[no_mangle]
pub unsafe extern "C" fn repl_node_initialize(
    node: *mut repl_node,
    members: *const repl_member,
    n: usize,
) -> repl_result {
    boundary("repl_node_initialize", || {
        // SAFETY: the caller's contract.
        let (node, members) = unsafe {
            (
                arg_ref(node.cast_const(), &"node")?,
                arg_slice(members, n, &"members")?,
            )
        };
        if members.is_empty() {
            return Err(invalid("members is empty; list at least this node"));
        }
        let mut map = BTreeMap::new();
        for (i, m) in members.iter().enumerate() {
            // SAFETY: the caller's contract covers each member's address.
            let addr = unsafe {
                arg_str(
                    m.address,
                    m.address_len,
                    &format_args!("members[{i}].address"),
                )?
            };
            if m.node_id == 0 || map.insert(m.node_id, addr.to_owned()).is_some() {
                return Err(invalid(format!(
                    "members[{i}].node_id = {} is 0 or listed twice",
                    m.node_id
                )));
            }
        }
        let live = node.live()?;
        run(node.id, async move { live.initialize(map).await })
    })
}

/// Appends `record` through consensus and stores its LSN in `*out_lsn` once it is
/// acknowledged per `mode` (`REPL_MODE_SYNC`, `REPL_MODE_SEMI_SYNC`, `REPL_MODE_ASYNC`, or
/// `REPL_MODE_DEFAULT` for the node's current mode). Only `op`, `collection`, `doc_id`,
/// `payload` and the transaction id of `record` are used: the leader assigns term, HLC and
/// origin.
///
/// Errors to tell apart: `REPL_ERR_CLUSTER_NOT_LEADER` (send it to `repl_node_leader`),
/// `REPL_ERR_CLUSTER_NOT_DURABLE` (never entered the log; safe to retry),
/// `REPL_ERR_CLUSTER_COMMIT_UNKNOWN` (entered the log but not acknowledged within
/// `replication_timeout_ms`: may still commit, deduplicate before retrying). Never a false
/// success.
///
/// Blocking; thread safety: any thread except a callback thread, concurrently.
///
/// # Safety
/// `node` NULL or a live handle; `record` NULL or a valid record; `out_lsn` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn repl_node_append(
    node: *mut repl_node,
    record: *const repl_record,
    mode: u32,
    out_lsn: *mut u64,
) -> repl_result {
    boundary("repl_node_append", || {
        // SAFETY: the caller's contract.
        let (node, record, out_lsn) = unsafe {
            (
                arg_ref(node.cast_const(), &"node")?,
                arg_ref(record, &"record")?,
                arg_out(out_lsn, &"out_lsn")?,
            )
        };
        // SAFETY: the caller's contract covers the record's pointers.
        let rec = unsafe { record_from_c(record, &"record")? };
        let mode = mode_from_c(mode, true)?;
        let mut write = ClientWrite::new(rec.op, rec.collection, rec.doc_id, rec.payload.to_vec());
        write.txn_id = rec.txn_id;
        let live = node.live()?;
        out_lsn.write(run(node.id, async move { live.append(write, mode).await })?);
        Ok(())
    })
}

/// Waits until this node has applied `lsn` to its state machine (its apply callback returned
/// for it); `REPL_ERR_CLUSTER_TIMEOUT` after `timeout_ms`.
///
/// Blocking; thread safety: any thread except a callback thread.
///
/// # Safety
/// `node` NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn repl_node_wait_for_lsn(
    node: *mut repl_node,
    lsn: u64,
    timeout_ms: u64,
) -> repl_result {
    boundary("repl_node_wait_for_lsn", || {
        // SAFETY: the caller's contract.
        let node = unsafe { arg_ref(node.cast_const(), &"node")? };
        let live = node.live()?;
        let timeout = Duration::from_millis(timeout_ms);
        run(
            node.id,
            async move { live.wait_for_lsn(lsn, timeout).await },
        )
    })
}

/// Reads document (`collection`, `doc_id`) from the node's state machine with `consistency`
/// (a `repl_read_consistency`; `max_staleness_ms` is used only with
/// `REPL_READ_FOLLOWER_BOUNDED`). Available only with the built-in store (`on_apply` NULL at
/// start); otherwise `REPL_ERR_INVALID_ARGUMENT`.
///
/// When the document exists, stores true in `*out_found`, its payload length in `*out_len`
/// and copies the payload into `buf` (no NUL added); if `len` is too small, returns
/// `REPL_ERR_BUFFER_TOO_SMALL` with only `*out_len` written (read again with a larger
/// buffer). When it does not exist, stores false and 0.
///
/// Blocking; thread safety: any thread except a callback thread, concurrently.
///
/// # Safety
/// `node` NULL or a live handle; `collection`/`doc_id` readable for their lengths; `buf` NULL
/// or writable for `len` bytes; `out_len`, `out_found` NULL or writable.
#[no_mangle]
#[allow(clippy::too_many_arguments)] // (pointer, length) pairs, as everywhere in the C API
pub unsafe extern "C" fn repl_node_read(
    node: *mut repl_node,
    collection: *const u8,
    collection_len: usize,
    doc_id: *const u8,
    doc_id_len: usize,
    consistency: u32,
    max_staleness_ms: u64,
    buf: *mut u8,
    len: usize,
    out_len: *mut usize,
    out_found: *mut bool,
) -> repl_result {
    boundary("repl_node_read", || {
        // SAFETY: the caller's contract.
        let (node, collection, doc_id, out_len, out_found) = unsafe {
            (
                arg_ref(node.cast_const(), &"node")?,
                arg_str(collection, collection_len, &"collection")?,
                arg_str(doc_id, doc_id_len, &"doc_id")?,
                arg_out(out_len, &"out_len")?,
                arg_out(out_found, &"out_found")?,
            )
        };
        if buf.is_null() && len != 0 {
            return Err(Failure::new(
                repl_result::REPL_ERR_NULL_ARGUMENT,
                "argument `buf` is NULL",
            ));
        }
        let consistency = match consistency {
            x if x == repl_read_consistency::REPL_READ_LINEARIZABLE as u32 => {
                ReadConsistency::Linearizable
            }
            x if x == repl_read_consistency::REPL_READ_LEADER_LOCAL as u32 => {
                ReadConsistency::LeaderLocal
            }
            x if x == repl_read_consistency::REPL_READ_FOLLOWER_BOUNDED as u32 => {
                ReadConsistency::FollowerBounded {
                    max_staleness: Duration::from_millis(max_staleness_ms),
                }
            }
            other => {
                return Err(invalid(format!(
                    "consistency = {other} is not a repl_read_consistency value (0, 1 or 2)"
                )))
            }
        };
        if node.store != Store::Builtin {
            return Err(invalid(
                "repl_node_read needs the built-in store: this node was started with an \
                 apply callback, so its state lives in the host; read it there",
            ));
        }
        let live = node.live()?;
        let (collection, doc_id) = (collection.to_owned(), doc_id.to_owned());
        let data = run(node.id, async move {
            live.read(&collection, &doc_id, consistency).await
        })?;
        let Some(data) = data else {
            out_found.write(false);
            out_len.write(0);
            return Ok(());
        };
        if len < data.len() {
            out_len.write(data.len());
            return Err(Failure::new(
                repl_result::REPL_ERR_BUFFER_TOO_SMALL,
                format!(
                    "the buffer holds {len} bytes; the document has {}",
                    data.len()
                ),
            ));
        }
        if !data.is_empty() {
            // SAFETY: `buf` is non-NULL here (len >= data.len() > 0) and writable for `len`
            // bytes by the caller's contract; the source is our own buffer.
            unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), buf, data.len()) };
        }
        out_found.write(true);
        out_len.write(data.len());
        Ok(())
    })
}

/// For an operator or HA watchdog. On the leader: hands leadership to the most caught-up voter
/// and stores its id in `*out_transfer_to`. With no known leader: campaigns (pre-vote first) and
/// stores 0. On a follower with a live leader: `REPL_ERR_CLUSTER_NOT_LEADER`.
///
/// Blocking (briefly); thread safety: any thread except a callback thread.
///
/// # Safety
/// `node` NULL or a live handle; `out_transfer_to` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn repl_node_start_election(
    node: *mut repl_node,
    out_transfer_to: *mut u64,
) -> repl_result {
    boundary("repl_node_start_election", || {
        // SAFETY: the caller's contract.
        let (node, out) = unsafe {
            (
                arg_ref(node.cast_const(), &"node")?,
                arg_out(out_transfer_to, &"out_transfer_to")?,
            )
        };
        let live = node.live()?;
        let started = run(node.id, async move { live.start_election().await })?;
        out.write(match started {
            ElectionStart::Transferring { to } => to,
            ElectionStart::Campaigning => 0,
        });
        Ok(())
    })
}

/// Changes this node's acknowledgement mode for later writes (`REPL_MODE_SYNC`,
/// `REPL_MODE_SEMI_SYNC` or `REPL_MODE_ASYNC`), at run time. SYNC with min_sync_replicas 0 is
/// refused with `REPL_ERR_CLUSTER_INVALID_REQUEST`.
///
/// Non-blocking; thread safety: any thread, callbacks included.
///
/// # Safety
/// `node` NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn repl_node_set_mode(node: *mut repl_node, mode: u32) -> repl_result {
    boundary("repl_node_set_mode", || {
        // SAFETY: the caller's contract.
        let node = unsafe { arg_ref(node.cast_const(), &"node")? };
        let Some(mode) = mode_from_c(mode, false)? else {
            unreachable!("REPL_MODE_DEFAULT is refused here")
        };
        Ok(node.live()?.set_mode(mode)?)
    })
}

/// Changes how many followers SEMI_SYNC (and SYNC) writes wait for, at run time. 0 is refused
/// in SYNC mode with `REPL_ERR_CLUSTER_INVALID_REQUEST`.
///
/// Non-blocking; thread safety: any thread, callbacks included.
///
/// # Safety
/// `node` NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn repl_node_set_min_sync_replicas(
    node: *mut repl_node,
    n: u32,
) -> repl_result {
    boundary("repl_node_set_min_sync_replicas", || {
        // SAFETY: the caller's contract.
        let node = unsafe { arg_ref(node.cast_const(), &"node")? };
        Ok(node.live()?.set_min_sync_replicas(n)?)
    })
}

/// On the leader: adds node `node_id` at `address` (`host:port`) as a non-voting member and
/// stores the LSN of the membership entry. With `wait_caught_up`, returns once it has caught
/// up. Its public key must already be known to the voters (their `peers[].public_key`) for it
/// to vote later.
///
/// Blocking; thread safety: any thread except a callback thread.
///
/// # Safety
/// `node` NULL or a live handle; `address` readable for `address_len` bytes; `out_lsn` NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn repl_node_add_learner(
    node: *mut repl_node,
    node_id: u64,
    address: *const u8,
    address_len: usize,
    wait_caught_up: bool,
    out_lsn: *mut u64,
) -> repl_result {
    boundary("repl_node_add_learner", || {
        // SAFETY: the caller's contract.
        let (node, address, out_lsn) = unsafe {
            (
                arg_ref(node.cast_const(), &"node")?,
                arg_str(address, address_len, &"address")?,
                arg_out(out_lsn, &"out_lsn")?,
            )
        };
        if node_id == 0 {
            return Err(invalid("node_id 0 is not a valid node id"));
        }
        let live = node.live()?;
        let address = address.to_owned();
        out_lsn.write(run(node.id, async move {
            live.add_learner(node_id, address, wait_caught_up).await
        })?);
        Ok(())
    })
}

/// On the leader: replaces the voter set with the `n` ids in `voters` through joint consensus
/// and stores the LSN of the final membership entry. Voters must already be members (add them
/// with `repl_node_add_learner` first). With `retain`, removed voters stay as learners.
///
/// Blocking; thread safety: any thread except a callback thread.
///
/// # Safety
/// `node` NULL or a live handle; `voters` NULL or an array of `n` ids; `out_lsn` NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn repl_node_change_membership(
    node: *mut repl_node,
    voters: *const u64,
    n: usize,
    retain: bool,
    out_lsn: *mut u64,
) -> repl_result {
    boundary("repl_node_change_membership", || {
        // SAFETY: the caller's contract.
        let (node, voters, out_lsn) = unsafe {
            (
                arg_ref(node.cast_const(), &"node")?,
                arg_slice(voters, n, &"voters")?,
                arg_out(out_lsn, &"out_lsn")?,
            )
        };
        let voters: BTreeSet<NodeId> = voters.iter().copied().collect();
        if voters.is_empty() {
            return Err(invalid(
                "voters is empty; a cluster needs at least one voter",
            ));
        }
        let live = node.live()?;
        out_lsn.write(run(node.id, async move {
            live.change_membership(voters, retain).await
        })?);
        Ok(())
    })
}

/// Builds a snapshot of this node's state machine now (the built-in store's, or the host's
/// through its `repl_snapshot_fn`), covering every entry applied so far, then purges the log up
/// to it, and stores the snapshot's LSN in `*out_lsn`. A member behind that point then catches
/// up by installing the snapshot (its `repl_restore_fn`). The library also snapshots by itself
/// every 5000 entries; this is for operators (to reclaim log space now) and tests.
///
/// The purge may wait while a replication request still uses those entries; `timeout_ms`
/// bounds the whole call (`REPL_ERR_CLUSTER_TIMEOUT`). Any role may call it: each node
/// snapshots and purges its own log.
///
/// Errors: `REPL_ERR_INVALID_ARGUMENT` for a node started by `repl_node_start` with an apply
/// callback (it has no snapshot callbacks); `REPL_ERR_CLUSTER_INVALID_REQUEST` when nothing
/// is applied yet; `REPL_ERR_CLUSTER_STORAGE` when the snapshot callback failed (the node
/// stopped; the detail gives its return value).
///
/// Blocking; thread safety: any thread except a callback thread.
///
/// # Safety
/// `node` NULL or a live handle; `out_lsn` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn repl_node_trigger_snapshot(
    node: *mut repl_node,
    timeout_ms: u64,
    out_lsn: *mut u64,
) -> repl_result {
    boundary("repl_node_trigger_snapshot", || {
        // SAFETY: the caller's contract.
        let (node, out_lsn) = unsafe {
            (
                arg_ref(node.cast_const(), &"node")?,
                arg_out(out_lsn, &"out_lsn")?,
            )
        };
        if node.store == (Store::Callbacks { snapshots: false }) {
            return Err(invalid(
                "this node was started by repl_node_start with an apply callback, which \
                 registers no snapshot callbacks; start it with repl_node_start_with_snapshots",
            ));
        }
        let live = node.live()?;
        let timeout = Duration::from_millis(timeout_ms);
        out_lsn.write(run(node.id, async move {
            live.trigger_snapshot(timeout).await
        })?);
        Ok(())
    })
}

/// Stops the node: closes its listener and connections, stops consensus and closes its WAL
/// (after a final sync). No callback runs after it returns. The handle stays allocated:
/// release it with `repl_node_free`. Later calls return `REPL_ERR_HANDLE_CLOSED` (a second
/// shutdown included), except role (`REPL_ROLE_SHUTDOWN`), id, leader, term, status and
/// local_addr, which still answer.
///
/// Blocking; thread safety: any thread except a callback thread; calls running concurrently
/// on other threads complete or fail.
///
/// # Safety
/// `node` NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn repl_node_shutdown(node: *mut repl_node) -> repl_result {
    boundary("repl_node_shutdown", || {
        // SAFETY: the caller's contract.
        let node = unsafe { arg_ref(node.cast_const(), &"node")? };
        runtime::check_may_block()?;
        let taken = node.slot().take();
        match taken {
            Some(nn) => block_on(nn.shutdown()),
            None => node.live().map(drop),
        }
    })
}

/// Releases a node from `repl_node_start`, shutting it down first if it still runs (waiting
/// for that, except when called from an apply callback, where the shutdown finishes in the
/// background). NULL is accepted and ignored. An error from that implicit shutdown is recorded
/// for `repl_last_error_detail` (call `repl_node_shutdown` first to see it).
///
/// Thread safety: must be the last call on the handle.
///
/// # Safety
/// `node` NULL or a handle from `repl_node_start` that has not been freed.
#[no_mangle]
pub unsafe extern "C" fn repl_node_free(node: *mut repl_node) {
    let _ = boundary("repl_node_free", || {
        if node.is_null() {
            return Ok(());
        }
        // SAFETY: the caller's contract: a live handle we allocated with Box::into_raw.
        let node = unsafe { Box::from_raw(node) };
        let Some(nn) = node.slot().take() else {
            return Ok(());
        };
        if runtime::may_block() {
            block_on(nn.shutdown())
        } else {
            runtime::runtime()?.spawn(async move {
                let _ = nn.shutdown().await;
            });
            Ok(())
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_convert_and_default_is_only_for_append() {
        assert_eq!(mode_from_c(REPL_MODE_DEFAULT, true).unwrap(), None);
        assert_eq!(
            mode_from_c(REPL_MODE_DEFAULT, false).unwrap_err().code,
            repl_result::REPL_ERR_INVALID_ARGUMENT
        );
        for m in [
            ReplicationMode::Sync,
            ReplicationMode::SemiSync,
            ReplicationMode::Async,
        ] {
            assert_eq!(mode_from_c(mode_to_c(m), false).unwrap(), Some(m));
        }
        assert!(mode_from_c(3, true).is_err());
    }

    #[test]
    fn consensus_errors_keep_not_durable_apart_from_unknown() {
        let f = Failure::from(ConsensusError::NotDurable {
            reason: "x".into(),
            leader: Some(2),
        });
        assert_eq!(f.code, repl_result::REPL_ERR_CLUSTER_NOT_DURABLE);
        let f = Failure::from(ConsensusError::Unknown {
            lsn: Some(7),
            reason: "y".into(),
        });
        assert_eq!(f.code, repl_result::REPL_ERR_CLUSTER_COMMIT_UNKNOWN);
        assert!(f.detail.contains("LSN 7"), "{}", f.detail);
        let f = Failure::from(ConsensusError::NotLeader { leader: Some(3) });
        assert_eq!(f.code, repl_result::REPL_ERR_CLUSTER_NOT_LEADER);
        // A write refused by a follower that knows the leader: go there.
        let refused = |leader| ConsensusError::NotDurable {
            reason: "refused".into(),
            leader,
        };
        let f = consensus_failure(refused(Some(1)), 2);
        assert_eq!(f.code, repl_result::REPL_ERR_CLUSTER_NOT_LEADER);
        assert!(f.detail.contains("node 1"), "{}", f.detail);
        let f = consensus_failure(refused(Some(2)), 2);
        assert_eq!(f.code, repl_result::REPL_ERR_CLUSTER_NOT_DURABLE);
        let f = consensus_failure(refused(None), 2);
        assert_eq!(f.code, repl_result::REPL_ERR_CLUSTER_NOT_DURABLE);
        let f = Failure::from(ConsensusError::Timeout(Duration::from_secs(1), "z".into()));
        assert_eq!(f.code, repl_result::REPL_ERR_CLUSTER_TIMEOUT);
    }

    #[test]
    fn blocking_calls_are_refused_inside_a_callback_scope() {
        assert!(runtime::may_block());
        {
            let _scope = CallbackScope::enter();
            assert!(!runtime::may_block());
            let f = block_on(async { Ok::<_, Failure>(()) }).unwrap_err();
            assert_eq!(f.code, repl_result::REPL_ERR_CLUSTER_REENTRANT_CALL);
        }
        assert!(runtime::may_block());
    }
}
