"""In-process clusters through replication.Node: real mutual TLS on 127.0.0.1, fast timings."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import replication
from replication import (
    AppliedEntry,
    ClusterTimeoutError,
    InvalidRequestError,
    Node,
    NodeStoppedError,
    NotDurableError,
    NotLeaderError,
    Operation,
    ReplicationConfig,
)

# Fast timings (issue 3): heartbeat 50 ms, election timeout 150-300 ms.
CONFIG = """
node_id = {node_id}
listen_address = "127.0.0.1:0"
mode = "{mode}"
min_sync_replicas = {min_sync}
heartbeat_interval_ms = 50
election_timeout_min_ms = 150
election_timeout_max_ms = 300
replication_timeout_ms = 5000
wal_directory = "{wal}"
cert_path = "{cert}"
key_path = "{key}"
ca_path = "{ca}"
"""


def config(
    tmp: Path, m: replication.DevNodeMaterials, mode: str = "SEMI_SYNC", min_sync: int = 1
) -> ReplicationConfig:
    return ReplicationConfig.from_toml(
        CONFIG.format(
            node_id=m.node_id,
            mode=mode,
            min_sync=min_sync,
            wal=tmp / f"wal-{m.node_id}",
            cert=m.cert_path,
            key=m.key_path,
            ca=m.ca_path,
        )
    )


class Replica:
    """A host state machine: records every applied entry and serves reads from them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entries: list[tuple[int, Operation, str, str, bytes]] = []
        self.docs: dict[tuple[str, str], bytes] = {}
        self.on_main_thread = False

    def apply(self, e: AppliedEntry) -> None:
        with self.lock:
            assert not self.entries or e.lsn > self.entries[-1][0], "applied out of LSN order"
            self.entries.append((e.lsn, e.op, e.collection, e.doc_id, e.payload))
            self.on_main_thread |= threading.current_thread() is threading.main_thread()
            if e.op is Operation.DELETE:
                self.docs.pop((e.collection, e.doc_id), None)
            else:
                self.docs[(e.collection, e.doc_id)] = e.payload

    def read(self, collection: str, doc_id: str) -> bytes | None:
        with self.lock:
            return self.docs.get((collection, doc_id))

    def snapshot(self) -> list[tuple[int, Operation, str, str, bytes]]:
        with self.lock:
            return list(self.entries)


def wait_until(what: str, cond: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def single_leader(nodes: dict[int, Node]) -> int | None:
    """The leader all running nodes agree on, if there is exactly one."""
    live = [n for n in nodes.values() if n.role != "shutdown"]
    leaders = [n.id for n in live if n.role == "leader"]
    if len(leaders) != 1 or any(n.leader != leaders[0] for n in live):
        return None
    return leaders[0]


def await_leader(nodes: dict[int, Node], not_: int | None = None) -> int:
    wait_until(
        "one leader",
        lambda: single_leader(nodes) is not None and single_leader(nodes) != not_,
    )
    leader = single_leader(nodes)
    assert leader is not None
    return leader


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[dict[int, Node], dict[int, Replica]]]:
    ids = [1, 2, 3]
    mats = replication.dev_cluster_materials(tmp_path / "tls", ids)
    replicas = {i: Replica() for i in ids}
    nodes: dict[int, Node] = {}
    try:
        for i in ids:
            nodes[i] = Node(
                config(tmp_path, mats[i]),
                node_key_path=mats[i].node_key_path,
                peer_public_keys={j: mats[j].public_key for j in ids if j != i},
                on_apply=replicas[i].apply,
                on_read=replicas[i].read,
            )
        nodes[1].initialize({i: n.local_addr for i, n in nodes.items()})
        yield nodes, replicas
    finally:
        for n in nodes.values():
            n.shutdown()


def test_three_node_cluster(cluster: tuple[dict[int, Node], dict[int, Replica]]) -> None:
    nodes, replicas = cluster
    leader = await_leader(nodes)
    assert nodes[leader].term >= 1
    status = nodes[leader].status()
    assert status["role"] == "leader" and status["voters"] == [1, 2, 3]
    assert status["mode"] == "SEMI_SYNC" and status["min_sync_replicas"] == 1

    # SEMI_SYNC writes are applied on every node, in the same order, with the same content.
    acked: dict[int, tuple[str, bytes]] = {}
    for k in range(20):
        payload = f"v{k}".encode()
        lsn = nodes[leader].append(Operation.INSERT, "users", f"u{k}", payload)
        acked[lsn] = (f"u{k}", payload)
    assert sorted(acked) == list(acked), "LSNs increase"
    last = max(acked)
    for n in nodes.values():
        n.wait_for_lsn(last, 5.0)
    contents = [replicas[i].snapshot() for i in nodes]
    assert contents[0] == contents[1] == contents[2]
    assert [(e[3], e[4]) for e in contents[0]] == [acked[lsn] for lsn in sorted(acked)]
    # The callback ran on the runtime's threads, not on the thread waiting in append.
    assert not any(r.on_main_thread for r in replicas.values())

    # Writes and linearizable reads belong to the leader.
    follower = next(i for i in nodes if i != leader)
    with pytest.raises(NotLeaderError) as info:
        nodes[follower].append("insert", "users", "x", b"x")
    assert info.value.leader == leader
    assert isinstance(info.value, NotDurableError)
    assert nodes[leader].read("users", "u3") == b"v3"
    assert nodes[leader].read("users", "u3", "leader_local") == b"v3"
    assert nodes[leader].read("users", "missing") is None
    assert nodes[follower].read("users", "u3", ("follower_bounded", 5000)) == b"v3"
    with pytest.raises(ValueError, match="consistency"):
        nodes[leader].read("users", "u3", "eventual")  # type: ignore[arg-type]

    # Modes change at run time; SYNC with min_sync_replicas = 0 is refused, descriptively.
    nodes[leader].set_min_sync_replicas(0)
    with pytest.raises(InvalidRequestError, match="min_sync_replicas = 0 is not allowed in SYNC"):
        nodes[leader].set_mode("SYNC")
    assert nodes[leader].status()["mode"] == "SEMI_SYNC"
    nodes[leader].set_min_sync_replicas(1)
    nodes[leader].set_mode("SYNC")
    assert nodes[leader].status()["mode"] == "SYNC"
    with pytest.raises(InvalidRequestError, match="min_sync_replicas = 0"):
        nodes[leader].set_min_sync_replicas(0)
    lsn = nodes[leader].append("update", "users", "u0", b"sync")
    acked[lsn] = ("u0", b"sync")
    lsn = nodes[leader].append("update", "users", "u1", b"async", mode="ASYNC")
    acked[lsn] = ("u1", b"async")
    nodes[leader].set_mode("SEMI_SYNC")

    # start_election on the leader hands leadership over.
    target = nodes[leader].start_election()
    assert target is not None and target != leader
    wait_until(f"node {target} to lead", lambda: single_leader(nodes) == target)
    leader = target
    lsn = nodes[leader].append("insert", "users", "after-transfer", b"t")
    acked[lsn] = ("after-transfer", b"t")

    # Kill the leader: a new one is elected and holds every acknowledged write.
    old_term = nodes[leader].term
    nodes[leader].shutdown()
    assert nodes[leader].role == "shutdown"
    with pytest.raises(NodeStoppedError):
        nodes[leader].append("insert", "users", "x", b"x")
    killed = leader
    started = time.monotonic()
    leader = await_leader(nodes, not_=killed)
    assert time.monotonic() - started < 10.0
    assert nodes[leader].term > old_term
    nodes[leader].wait_for_lsn(max(acked), 5.0)
    on_new_leader = {e[0]: (e[3], e[4]) for e in replicas[leader].snapshot()}
    for lsn, content in acked.items():
        assert on_new_leader.get(lsn) == content, f"acknowledged write at LSN {lsn} was lost"
    # The surviving pair still gathers SEMI_SYNC acknowledgements.
    lsn = nodes[leader].append("insert", "users", "after-failover", b"f")
    survivor = next(i for i in nodes if i not in (leader, killed))
    nodes[survivor].wait_for_lsn(lsn, 5.0)
    assert replicas[survivor].read("users", "after-failover") == b"f"


def test_builtin_store_and_single_node(tmp_path: Path) -> None:
    mats = replication.dev_cluster_materials(tmp_path / "tls", [1])
    m = mats[1]
    assert m.cert_path.exists() and m.node_key_path.exists() and len(m.public_key) == 64
    with Node(config(tmp_path, m, mode="ASYNC", min_sync=0), node_key_path=m.node_key_path) as n:
        n.initialize({1: n.local_addr})
        wait_until("the single node to lead", lambda: n.role == "leader")
        lsn = n.append("insert", "c", "d", bytearray(b"payload"))
        n.wait_for_lsn(lsn, 5.0)
        assert n.read("c", "d") == b"payload"
        # ASYNC acknowledges at local durability, which can precede the commit: wait for the
        # apply before reading.
        n.wait_for_lsn(n.append("delete", "c", "d", b""), 5.0)
        assert n.read("c", "d") is None
        # SEMI_SYNC needs a follower this cluster does not have: refused before appending.
        n.set_min_sync_replicas(1)
        with pytest.raises(NotDurableError, match="min_sync_replicas") as info:
            n.append("insert", "c", "e", b"x", mode="SEMI_SYNC")
        assert not isinstance(info.value, NotLeaderError)
        with pytest.raises(ClusterTimeoutError):
            n.wait_for_lsn(lsn + 1000, 0.2)
        assert n.status()["applied_lsn"] is not None
    assert n.role == "shutdown"
    n.shutdown()  # idempotent


def test_apply_callback_exception_stops_the_node(tmp_path: Path) -> None:
    m = replication.dev_cluster_materials(tmp_path / "tls", [1])[1]

    def on_apply(entry: AppliedEntry) -> None:
        raise RuntimeError(f"cannot apply {entry.doc_id}")

    with Node(
        config(tmp_path, m, mode="ASYNC", min_sync=0),
        node_key_path=m.node_key_path,
        on_apply=on_apply,
    ) as n:
        n.initialize({1: n.local_addr})
        wait_until("the single node to lead", lambda: n.role == "leader")
        # ASYNC acknowledges once durable, so the append may return before or fail after the
        # callback raised; either way the wait for the entry to be applied fails.
        lsn = n.status()["last_lsn"] or 0
        try:
            lsn = n.append("insert", "c", "doc-7", b"x")
        except NodeStoppedError:
            lsn += 1
        with pytest.raises(NodeStoppedError, match="callback raised") as info:
            n.wait_for_lsn(lsn, 5.0)
        assert isinstance(info.value.__cause__, RuntimeError)
        assert "cannot apply doc-7" in str(info.value.__cause__)
        wait_until("the node to stop", lambda: n.role == "shutdown")
        with pytest.raises(NodeStoppedError):
            n.append("insert", "c", "doc-8", b"x")


def test_bad_keys_and_callbacks_are_refused(tmp_path: Path) -> None:
    m = replication.dev_cluster_materials(tmp_path / "tls", [1])[1]
    cfg = config(tmp_path, m)
    with pytest.raises(InvalidRequestError, match="node key"):
        Node(cfg, node_key_path=tmp_path / "missing.key")
    with pytest.raises(InvalidRequestError, match="public key of node 2"):
        Node(cfg, node_key_path=m.node_key_path, peer_public_keys={2: "zz"})
    with pytest.raises(TypeError, match="on_apply must be callable"):
        Node(cfg, node_key_path=m.node_key_path, on_apply=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="on_read"):
        Node(cfg, node_key_path=m.node_key_path, on_read=lambda c, d: None)
