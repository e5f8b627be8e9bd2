"""Python interface of the replication engine.

- ``Wal``: the segmented, checksummed write-ahead log (append, read, truncate, purge).
- ``Record`` / ``Operation``: what the log holds.
- ``HlcClock`` / ``HlcTimestamp`` / ``VectorClock`` / ``VectorOrdering``: clocks.
- ``ReplicationConfig`` / ``PeerConfig``: a node's configuration, loaded from TOML.

Every error is a ``ReplicationError``; see its subclasses below. Blocking calls release the
GIL, and iterating a long range of records can be interrupted with Ctrl-C.
"""

from replication._enums import Operation, VectorOrdering
from replication._native import (
    DEFAULT_SEGMENT_SIZE_BYTES,
    ClockDriftError,
    ConfigError,
    CorruptionError,
    HlcClock,
    HlcTimestamp,
    InvalidRecordError,
    LsnOutOfRangeError,
    PeerConfig,
    Record,
    ReplicationConfig,
    ReplicationError,
    VectorClock,
    Wal,
    WalClosedError,
    WalError,
    WalIterator,
    __version__,
)

__all__ = [
    "DEFAULT_SEGMENT_SIZE_BYTES",
    "ClockDriftError",
    "ConfigError",
    "CorruptionError",
    "HlcClock",
    "HlcTimestamp",
    "InvalidRecordError",
    "LsnOutOfRangeError",
    "Operation",
    "PeerConfig",
    "Record",
    "ReplicationConfig",
    "ReplicationError",
    "VectorClock",
    "VectorOrdering",
    "Wal",
    "WalClosedError",
    "WalError",
    "WalIterator",
    "__version__",
]
