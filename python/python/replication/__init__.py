"""Python interface of the replication engine.

- ``Wal``: the segmented, checksummed write-ahead log (append, read, truncate, purge).
- ``Record`` / ``Operation``: what the log holds.
- ``HlcClock`` / ``HlcTimestamp`` / ``VectorClock`` / ``VectorOrdering``: clocks.
- ``ReplicationConfig`` / ``PeerConfig``: a node's configuration, loaded from TOML.
- ``Node``: one cluster member (Raft over mutual TLS) with an ``on_apply(AppliedEntry)``
  callback or the built-in in-memory store; ``dev_cluster_materials`` makes throwaway
  certificates and keys for tests and examples.

Every error is a ``ReplicationError``; see its subclasses below. Blocking calls release the
GIL, and iterating a long range of records can be interrupted with Ctrl-C.
"""

from replication._enums import Operation, VectorOrdering
from replication._native import (
    DEFAULT_SEGMENT_SIZE_BYTES,
    AppliedEntry,
    ClockDriftError,
    ClusterError,
    ClusterTimeoutError,
    CommitUnknownError,
    ConfigError,
    CorruptionError,
    DevNodeMaterials,
    HlcClock,
    HlcTimestamp,
    InvalidRecordError,
    InvalidRequestError,
    LsnOutOfRangeError,
    Node,
    NodeStoppedError,
    NotDurableError,
    NotLeaderError,
    PeerConfig,
    QuorumUnavailableError,
    Record,
    ReplicationConfig,
    ReplicationError,
    StaleReadError,
    VectorClock,
    Wal,
    WalClosedError,
    WalError,
    WalIterator,
    dev_cluster_materials,
    __version__,
)

__all__ = [
    "DEFAULT_SEGMENT_SIZE_BYTES",
    "AppliedEntry",
    "ClockDriftError",
    "ClusterError",
    "ClusterTimeoutError",
    "CommitUnknownError",
    "ConfigError",
    "CorruptionError",
    "DevNodeMaterials",
    "HlcClock",
    "HlcTimestamp",
    "InvalidRecordError",
    "InvalidRequestError",
    "LsnOutOfRangeError",
    "Node",
    "NodeStoppedError",
    "NotDurableError",
    "NotLeaderError",
    "Operation",
    "PeerConfig",
    "QuorumUnavailableError",
    "Record",
    "ReplicationConfig",
    "ReplicationError",
    "StaleReadError",
    "VectorClock",
    "VectorOrdering",
    "Wal",
    "WalClosedError",
    "WalError",
    "WalIterator",
    "dev_cluster_materials",
    "__version__",
]
