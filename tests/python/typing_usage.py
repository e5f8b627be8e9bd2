"""Checked with `mypy --strict` by test_typing.py (not collected as a test)."""

from __future__ import annotations

from pathlib import Path

import replication
from replication import HlcClock, HlcTimestamp, Operation, Record, VectorClock, VectorOrdering


def use_wal(path: Path) -> list[bytes]:
    with replication.Wal(path, durability="none", compression_level=5) as wal:
        lsn: int = wal.append(Operation.INSERT, "users", "1", b"{}", hlc=HlcClock().now())
        first, last = wal.append_batch([("update", "users", "1", b"{}"), Record(7, "c", "d", b"")])
        found: int | None = wal.find_lsn_by_timestamp(0)
        payloads = [r.payload for r in wal.read_range(lsn, last + 1)]
        ops: list[Operation] = [r.op for r in wal.read_from(first)]
        txn: int | None = next(wal.read_from(1)).txn_id
        del found, ops, txn
        segments: list[Path] = wal.segment_paths()
        del segments
        return payloads


def use_clocks() -> bool:
    ts = HlcTimestamp(HlcClock(max_drift_ms=100).now())
    ms: int = ts.physical_ms
    vc = VectorClock({1: ms % 7})
    vc.increment(2)
    ordering: VectorOrdering = vc.compare(VectorClock())
    return ordering is VectorOrdering.AFTER


def use_config(text: str) -> int:
    try:
        cfg = replication.ReplicationConfig.from_toml(text)
    except replication.ConfigError as e:
        problems: list[str] = e.problems
        return len(problems)
    mode: str = cfg.mode
    del mode
    return sum(p.node_id for p in cfg.peers)


def handle(e: replication.ReplicationError) -> str:
    if isinstance(e, replication.CorruptionError):
        return f"{e.path}:{e.offset}"
    return str(e)
