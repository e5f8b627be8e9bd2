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


def use_node(directory: Path) -> bytes | None:
    mats = replication.dev_cluster_materials(directory, [1])
    seen: list[replication.AppliedEntry] = []
    cfg = replication.ReplicationConfig.from_toml("node_id = 1\n")
    with replication.Node(
        cfg,
        node_key_path=mats[1].node_key_path,
        peer_public_keys={2: "00" * 32},
        on_apply=seen.append,
        on_read=lambda collection, doc_id: None,
    ) as node:
        node.initialize({1: node.local_addr})
        lsn: int = node.append(Operation.INSERT, "c", "d", b"x", "SEMI_SYNC")
        node.wait_for_lsn(lsn, 1.5)
        node.set_mode("SYNC")
        role: str = node.role
        leader: int | None = node.leader
        applied: int | None = node.status()["applied_lsn"]
        target: int | None = node.start_election()
        del role, leader, applied, target
        try:
            node.append("insert", "c", "d", b"y")
        except replication.NotLeaderError as e:
            hint: int | None = e.leader
            del hint
        except replication.CommitUnknownError as e:
            unknown: int | None = e.lsn
            del unknown
        node.read("c", "d", ("follower_bounded", 100))
        return node.read("c", "d", "linearizable")
