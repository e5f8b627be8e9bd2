//! The openraft type configuration: what a log entry carries and how nodes are named.
//!
//! A normal entry carries one [`ClientWrite`] (one WAL record). Blank and membership entries are
//! stored in the WAL too, under reserved operation codes (see [`OP_BLANK`], [`OP_MEMBERSHIP`] and
//! docs/FORMAT.md), so the Raft log index is exactly the WAL LSN.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use openraft::entry::RaftPayload;
use openraft::{BasicNode, Membership};
use serde::{Deserialize, Serialize};

use crate::wal::Operation;

/// WAL operation code of a Raft blank entry (a new leader's first entry). Codes
/// [`RESERVED_OP_FIRST`]`..=255` belong to consensus and are refused for client writes.
pub const OP_BLANK: u8 = 250;
/// WAL operation code of a Raft membership entry; the payload is the membership as JSON.
pub const OP_MEMBERSHIP: u8 = 251;
/// First operation code reserved for consensus records.
pub const RESERVED_OP_FIRST: u8 = 250;

/// Address information of a node (`host:port` of its replication listener).
pub type NodeInfo = BasicNode;

/// One client write: the application data of a normal Raft entry, stored as one WAL record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientWrite {
    #[serde(with = "op_code")]
    pub op: Operation,
    /// Shared like the payload: the names are cloned with every entry clone (log record,
    /// tail-cache reads for each follower, retries), and `Arc<str>` clones copy nothing.
    pub collection: Arc<str>,
    pub doc_id: Arc<str>,
    /// Shared, not owned: an entry is cloned for the log, the tail cache and every follower's
    /// AppendEntries, and with `Bytes` those clones copy no payload bytes.
    pub payload: Bytes,
    pub txn_id: Option<u64>,
    /// HLC timestamp assigned by the leader that proposed the write (raw `HlcTimestamp.0`).
    pub hlc: u64,
    /// Node id of the leader that proposed the write (set by it, like `hlc`; stored as the WAL
    /// record's origin). 0 until proposed.
    pub origin: u64,
    /// Identifies the proposal on the node that made it, so the log store can tell that node
    /// when the entry is durable (the ASYNC acknowledgement). Not stored in the WAL and not sent
    /// over the wire: entries read back or received carry 0.
    #[serde(skip)]
    pub request_id: u64,
}

impl ClientWrite {
    pub fn new(
        op: Operation,
        collection: impl Into<Arc<str>>,
        doc_id: impl Into<Arc<str>>,
        payload: impl Into<Bytes>,
    ) -> Self {
        ClientWrite {
            op,
            collection: collection.into(),
            doc_id: doc_id.into(),
            payload: payload.into(),
            txn_id: None,
            hlc: 0,
            origin: 0,
            request_id: 0,
        }
    }

    pub fn with_txn(mut self, txn_id: u64) -> Self {
        self.txn_id = Some(txn_id);
        self
    }
}

impl fmt::Display for ClientWrite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}/{} ({} bytes)",
            self.op.name(),
            self.collection,
            self.doc_id,
            self.payload.len()
        )
    }
}

mod op_code {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::wal::Operation;

    pub fn serialize<S: Serializer>(op: &Operation, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(op.code())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Operation, D::Error> {
        let code = u8::deserialize(d)?;
        Operation::from_code(code)
            .ok_or_else(|| serde::de::Error::custom("operation code 0 is reserved"))
    }
}

/// Payload of a Raft entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum EntryPayload {
    Blank,
    Write(ClientWrite),
    Membership(Membership<u64, NodeInfo>),
}

impl fmt::Display for EntryPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EntryPayload::Blank => f.write_str("blank"),
            EntryPayload::Write(w) => write!(f, "{w}"),
            EntryPayload::Membership(m) => write!(f, "membership {m}"),
        }
    }
}

impl RaftPayload for EntryPayload {
    type D = ClientWrite;
    type NodeId = u64;
    type Node = NodeInfo;

    fn blank() -> Self {
        EntryPayload::Blank
    }

    fn with_normal(self, data: ClientWrite) -> Self {
        EntryPayload::Write(data)
    }

    fn with_membership(self, membership: Membership<u64, NodeInfo>) -> Self {
        EntryPayload::Membership(membership)
    }

    fn get_membership(&self) -> Option<Membership<u64, NodeInfo>> {
        match self {
            EntryPayload::Membership(m) => Some(m.clone()),
            _ => None,
        }
    }
}

openraft::declare_raft_types!(
    /// Type configuration of the replication cluster. Unlisted types keep openraft's defaults:
    /// `Term = u64`, `Entry = openraft::Entry`, `Responder = ProgressResponder`,
    /// `AsyncRuntime = TokioRuntime`.
    ///
    /// `LeaderId` is standard Raft's (`leader_id_std`): at most one leader per term, because a
    /// node grants one vote per term. openraft's default (`leader_id_adv`) orders leaders by
    /// (term, node id) and lets a higher node id win the same term again, so two nodes could
    /// each lead term T in turn; operators, metrics and the guarantee read "term" as
    /// one leadership. The price of one vote per term is split votes (two followers whose
    /// timers fire together each vote for themselves); `split_vote.rs` breaks them at once.
    pub TypeConfig:
        D = ClientWrite,
        R = crate::Lsn,
        NodeId = u64,
        Node = NodeInfo,
        Payload = EntryPayload,
        LeaderId = openraft::impls::leader_id_std::LeaderId<u64, u64>,
);

pub type C = TypeConfig;
pub type LogId = openraft::type_config::alias::LogIdOf<C>;
pub type Vote = openraft::type_config::alias::VoteOf<C>;
pub type Entry = openraft::type_config::alias::EntryOf<C>;
pub type StoredMembership = openraft::type_config::alias::StoredMembershipOf<C>;
pub type SnapshotMeta = openraft::type_config::alias::SnapshotMetaOf<C>;
pub type Snapshot = openraft::type_config::alias::SnapshotOf<C, SnapshotData>;
/// A snapshot as it travels between nodes: the host's snapshot bytes.
pub type SnapshotData = Vec<u8>;
/// The Raft handle of a node.
pub type ConsensusRaft = openraft::Raft<C, super::state_machine::StateMachine>;

/// Builds a log id from the fields a WAL record stores: with one leader per term, the term
/// and the index identify an entry.
pub fn log_id(term: u64, index: u64) -> LogId {
    openraft::LogId::new_term_index(term, index)
}
