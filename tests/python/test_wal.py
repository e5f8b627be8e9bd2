"""Appending, reading, truncating and purging through the Python API."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import replication
from replication import Operation, Record

OpenWal = Callable[..., replication.Wal]


def expected_fields(i: int) -> tuple[Operation, str, str, bytes, int, int, int, int | None]:
    """Deterministic, varied fields for record number i (0-based)."""
    op = [Operation.INSERT, Operation.UPDATE, Operation.DELETE, Operation.DDL, Operation(200)][i % 5]
    collection = f"coll{i % 13}"
    doc_id = f"doc-{i}"
    payload = (f"payload {i};".encode() * (i % 7))[: 3 * (i % 50)]
    term = i // 25_000
    hlc = 1_000_000 + 3 * i
    origin = i % 3
    txn_id = i // 10 if i % 4 == 0 else None
    return op, collection, doc_id, payload, term, hlc, origin, txn_id


def assert_record(rec: Record, lsn: int, i: int) -> None:
    op, collection, doc_id, payload, term, hlc, origin, txn_id = expected_fields(i)
    assert (rec.lsn, rec.op, rec.collection, rec.doc_id, rec.payload) == (
        lsn,
        op,
        collection,
        doc_id,
        payload,
    )
    assert (rec.term, rec.hlc, rec.origin, rec.txn_id) == (term, hlc, origin, txn_id)


def test_append_100k_reopen_and_read_back(wal_dir: Path) -> None:
    n = 100_000
    # Small segments so the data spans several files and the reader crosses segment boundaries.
    with replication.Wal(wal_dir, durability="none", segment_size_bytes=1 << 20) as wal:
        for i in range(n):
            op, collection, doc_id, payload, term, hlc, origin, txn_id = expected_fields(i)
            lsn = wal.append(
                op, collection, doc_id, payload, term=term, hlc=hlc, origin=origin, txn_id=txn_id
            )
            assert lsn == i + 1
        assert wal.last_lsn == n
    assert wal.closed

    with replication.Wal(wal_dir, segment_size_bytes=1 << 20) as wal:
        assert (wal.first_lsn, wal.last_lsn) == (1, n)
        assert wal.durable_lsn == n
        assert len(wal.segment_paths()) > 1
        count = 0
        for count, rec in enumerate(wal.read_from(1), start=1):
            assert_record(rec, count, count - 1)
        assert count == n
        # A read from the middle starts exactly there.
        tail = list(wal.read_from(n - 9))
        assert [r.lsn for r in tail] == list(range(n - 9, n + 1))
        assert_record(tail[0], n - 9, n - 10)


def test_zero_fill_ahead_runs_ahead_while_open_and_is_trimmed_on_close(wal_dir: Path) -> None:
    import time

    with replication.Wal(wal_dir) as wal:  # zero_fill_ahead defaults to True
        for i in range(10):
            wal.append(Operation.INSERT, "c", f"d{i}", b"x" * 100)
        (seg,) = wal.segment_paths()
        deadline = time.monotonic() + 20
        while Path(seg).stat().st_size < 1 << 20:
            assert time.monotonic() < deadline, "the segment was never zero-filled ahead"
            time.sleep(0.005)
    assert Path(seg).stat().st_size < 1 << 16  # close trimmed the zeros
    with replication.Wal(wal_dir, zero_fill_ahead=False) as wal:
        assert wal.last_lsn == 10
        wal.append(Operation.INSERT, "c", "d10", b"y")
        time.sleep(0.05)
        assert Path(seg).stat().st_size < 1 << 16  # nothing runs ahead when off
        assert [r.doc_id for r in wal.read_from(1)][-2:] == ["d9", "d10"]


def test_append_returns_dense_lsns_and_accepts_every_op_form(open_wal: OpenWal) -> None:
    wal = open_wal(durability="none")
    assert (wal.first_lsn, wal.last_lsn) == (1, 0)
    forms: list[object] = [Operation.INSERT, "update", "DELETE", "Ddl", 4, 9, Operation.other(77)]
    lsns = [wal.append(op, "c", "d", b"x") for op in forms]  # type: ignore[arg-type]
    assert lsns == list(range(1, len(forms) + 1))
    ops = [r.op for r in wal.read_from(1)]
    assert ops == [
        Operation.INSERT,
        Operation.UPDATE,
        Operation.DELETE,
        Operation.DDL,
        Operation.DDL,
        Operation(9),
        Operation(77),
    ]
    assert ops[5] is Operation(9)
    assert ops[5].name == "OTHER" and ops[5].is_other and int(ops[5]) == 9
    assert not ops[0].is_other


def test_payload_accepts_bytearray_and_empty(open_wal: OpenWal) -> None:
    wal = open_wal(durability="none")
    wal.append("insert", "c", "d", bytearray(b"\x00\xffmutable"))
    wal.append("insert", "c", "", b"")
    big = bytes(range(256)) * 4096  # 1 MiB, compressible and not
    wal.append("insert", "c", "big", big)
    payloads = [r.payload for r in wal.read_from(1)]
    assert payloads == [b"\x00\xffmutable", b"", big]
    assert all(type(p) is bytes for p in payloads)


def test_append_batch_records_and_tuples(open_wal: OpenWal) -> None:
    wal = open_wal(durability="none")
    wal.append("insert", "c", "before", b"0")
    batch: list[Record | tuple[object, str, str, bytes]] = [
        ("insert", "users", "1", b"a"),
        Record(Operation.UPDATE, "users", "1", b"b", term=3, hlc=42, origin=2, txn_id=7),
        (Operation.DELETE, "users", "1", b""),
        Record(250, "events", "e", bytearray(b"raw")),
    ]
    first, last = wal.append_batch(batch)  # type: ignore[arg-type]
    assert (first, last) == (2, 5)
    got = list(wal.read_range(first, last + 1))
    assert [r.lsn for r in got] == [2, 3, 4, 5]
    assert got[1] == Record(
        Operation.UPDATE, "users", "1", b"b", term=3, hlc=42, origin=2, txn_id=7, lsn=3
    )
    assert [(r.op, r.doc_id, r.payload) for r in got] == [
        (Operation.INSERT, "1", b"a"),
        (Operation.UPDATE, "1", b"b"),
        (Operation.DELETE, "1", b""),
        (Operation(250), "e", b"raw"),
    ]
    # Any iterable works, a generator included.
    first, last = wal.append_batch(("insert", "g", str(i), b"") for i in range(3))
    assert (first, last) == (6, 8)


def test_append_batch_rejects_bad_items_without_appending(open_wal: OpenWal) -> None:
    wal = open_wal(durability="none")
    with pytest.raises(replication.InvalidRecordError, match="at least one record"):
        wal.append_batch([])
    with pytest.raises(TypeError, match="batch item 1 is a tuple of 3 items"):
        wal.append_batch([("insert", "c", "d", b""), ("insert", "c", "d")])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="batch item 0 is a int"):
        wal.append_batch([5])  # type: ignore[list-item]
    with pytest.raises(replication.InvalidRecordError, match="batch item 1 record: unknown operation"):
        wal.append_batch([("insert", "c", "d", b""), ("merge", "c", "d", b"")])
    with pytest.raises(TypeError, match="batch item 0 record: payload must be bytes"):
        wal.append_batch([("insert", "c", "d", "text")])  # type: ignore[list-item]
    assert wal.last_lsn == 0


def test_read_range_is_end_exclusive_and_checked(open_wal: OpenWal) -> None:
    wal = open_wal(durability="none")
    wal.append_batch([("insert", "c", str(i), b"") for i in range(10)])
    assert [r.lsn for r in wal.read_range(3, 6)] == [3, 4, 5]
    assert list(wal.read_range(4, 4)) == []
    assert [r.lsn for r in wal.read_range(1, 11)] == list(range(1, 11))
    with pytest.raises(replication.LsnOutOfRangeError) as info:
        wal.read_range(1, 12)
    assert (info.value.first, info.value.last) == (1, 10)
    with pytest.raises(replication.LsnOutOfRangeError):
        wal.read_range(0, 5)
    with pytest.raises(replication.LsnOutOfRangeError) as info:
        wal.read_from(12)
    assert info.value.lsn == 12
    # Reading from last + 1 is an empty read, not an error: that is where a follower waits.
    assert list(wal.read_from(11)) == []


def test_iterator_sees_only_records_appended_before_it_was_made(open_wal: OpenWal) -> None:
    wal = open_wal(durability="none")
    wal.append("insert", "c", "1", b"")
    it = wal.read_from(1)
    wal.append("insert", "c", "2", b"")
    assert [r.doc_id for r in it] == ["1"]
    assert next(it, None) is None  # stays exhausted


def test_truncate_after(open_wal: OpenWal, wal_dir: Path) -> None:
    wal = open_wal(durability="none", segment_size_bytes=4096)
    wal.append_batch([("insert", "c", str(i), bytes(100)) for i in range(20)])
    for i in range(20, 100):
        wal.append("insert", "c", str(i), bytes(100))
    assert len(wal.segment_paths()) > 2
    wal.truncate_after(42)
    assert wal.last_lsn == 42
    assert [r.lsn for r in wal.read_from(1)][-1] == 42
    assert wal.append("update", "c", "new", b"") == 43
    with pytest.raises(replication.LsnOutOfRangeError):
        wal.read_range(40, 45)
    wal.close()

    reopened = open_wal()
    assert reopened.last_lsn == 43
    docs = [r.doc_id for r in reopened.read_from(40)]
    assert docs == ["39", "40", "41", "new"]
    reopened.truncate_after(0)  # first_lsn - 1: removes everything
    assert (reopened.first_lsn, reopened.last_lsn) == (1, 0)
    assert list(reopened.read_from(1)) == []


def test_purge_before(open_wal: OpenWal) -> None:
    wal = open_wal(durability="none", segment_size_bytes=4096)
    for i in range(200):
        wal.append("insert", "c", str(i), bytes(200))
    segments = wal.segment_paths()
    assert len(segments) > 3
    assert wal.purge_before(1) == 0
    removed = wal.purge_before(150)
    assert removed > 0
    assert len(wal.segment_paths()) == len(segments) - removed
    assert not any(p.exists() for p in segments[:removed])
    first = wal.first_lsn
    assert 1 < first <= 150
    assert [r.lsn for r in wal.read_from(first)][:2] == [first, first + 1]
    with pytest.raises(replication.LsnOutOfRangeError) as info:
        wal.read_from(first - 1)
    assert info.value.first == first
    # The active segment is never purged, whatever the LSN.
    wal.purge_before(10_000)
    assert wal.last_lsn == 200 and len(wal.segment_paths()) >= 1


def test_find_lsn_by_timestamp(open_wal: OpenWal) -> None:
    clock = replication.HlcClock()
    wal = open_wal(durability="none", segment_size_bytes=4096)
    stamps = []
    for i in range(500):
        ts = clock.now()
        stamps.append(ts)
        wal.append("insert", "c", str(i), bytes(50), hlc=ts)
    assert wal.find_lsn_by_timestamp(0) == 1
    for lsn in (1, 2, 137, 250, 499, 500):
        assert wal.find_lsn_by_timestamp(stamps[lsn - 1]) == lsn
    assert wal.find_lsn_by_timestamp(stamps[-1] + 1) is None
    # HlcTimestamp objects are accepted wherever an HLC int is.
    assert wal.find_lsn_by_timestamp(replication.HlcTimestamp(stamps[9])) == 10  # type: ignore[arg-type]


def test_find_lsn_between_timestamps(open_wal: OpenWal) -> None:
    wal = open_wal(durability="none", segment_size_bytes=4096)
    # Spaced stamps (10, 20, ...), in batches so frames hold several records.
    for b in range(50):
        wal.append_batch([Record("insert", "c", str(i), bytes(50), hlc=10 * (i + 1)) for i in range(10 * b, 10 * b + 10)])
    for lsn in (1, 2, 11, 137, 499, 500):
        assert wal.find_lsn_by_timestamp(10 * lsn) == lsn
        assert wal.find_lsn_by_timestamp(10 * lsn - 5) == lsn  # first record at or after
    assert wal.find_lsn_by_timestamp(5001) is None


def test_durability_modes(open_wal: OpenWal, tmp_path: Path) -> None:
    every = open_wal(tmp_path / "every")
    assert every.append("insert", "c", "d", b"x") == 1
    assert every.durable_lsn == 1

    never = open_wal(tmp_path / "none", durability="none")
    never.append("insert", "c", "d", b"x")
    never.sync()
    assert never.durable_lsn == never.written_lsn == 1

    interval = open_wal(tmp_path / "interval", durability="interval", sync_interval_ms=5)
    interval.append("insert", "c", "d", b"x")
    interval.sync()
    assert interval.durable_lsn == 1

    # Sizes are compared while open, so no zero fill may run ahead of the data.
    uncompressed = open_wal(
        tmp_path / "raw", durability="none", compression=False, zero_fill_ahead=False
    )
    uncompressed.append_batch([("insert", "c", str(i), b"same" * 100) for i in range(100)])
    compressed = open_wal(
        tmp_path / "zstd", durability="none", compression_level=19, zero_fill_ahead=False
    )
    compressed.append_batch([("insert", "c", str(i), b"same" * 100) for i in range(100)])
    raw_size = sum(p.stat().st_size for p in uncompressed.segment_paths())
    zstd_size = sum(p.stat().st_size for p in compressed.segment_paths())
    assert zstd_size * 5 < raw_size
    assert [r.payload for r in compressed.read_from(1)] == [b"same" * 100] * 100


def test_context_manager_and_close(wal_dir: Path) -> None:
    with replication.Wal(wal_dir, durability="none") as wal:
        assert not wal.closed
        wal.append("insert", "c", "d", b"x")
        assert repr(wal) == f'Wal("{wal_dir}", first_lsn=1, last_lsn=1)'
    assert wal.closed
    assert repr(wal) == f'Wal("{wal_dir}", closed)'
    assert wal.path == wal_dir
    wal.close()  # closing twice is fine
    # Closing released the directory: it opens again, with the record durable.
    with replication.Wal(wal_dir) as again:
        assert again.last_lsn == 1


def test_exit_closes_even_when_the_body_raises(wal_dir: Path) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        with replication.Wal(wal_dir) as wal:
            wal.append("insert", "c", "d", b"x")
            raise RuntimeError("boom")
    assert wal.closed


def test_close_ends_open_iterators_and_releases_the_directory(open_wal: OpenWal, wal_dir: Path) -> None:
    wal = open_wal(durability="none")
    wal.append_batch([("insert", "c", str(i), b"") for i in range(3000)])
    it = wal.read_from(1)
    assert next(it).lsn == 1
    wal.close()
    with pytest.raises(replication.WalClosedError):
        next(it)
    # The iterator no longer holds the log, so the directory can be opened again right away.
    again = open_wal()
    assert again.last_lsn == 3000


def test_dropping_an_unclosed_wal_keeps_its_records(wal_dir: Path) -> None:
    wal = replication.Wal(wal_dir, durability="none")
    wal.append("insert", "c", "d", b"kept")
    del wal  # no close(): the last handle writes what is pending
    with replication.Wal(wal_dir) as again:
        assert [r.payload for r in again.read_from(1)] == [b"kept"]


def test_record_value_semantics() -> None:
    import pickle

    rec = Record("insert", "users", "42", b"{}", term=1, hlc=2, origin=3, txn_id=4, lsn=5)
    same = Record(Operation.INSERT, "users", "42", bytearray(b"{}"), term=1, hlc=2, origin=3, txn_id=4, lsn=5)
    assert rec == same and hash(rec) == hash(same)
    assert rec != Record("insert", "users", "42", b"{ }", term=1, hlc=2, origin=3, txn_id=4, lsn=5)
    assert rec != "not a record"
    assert len({rec, same}) == 1
    assert pickle.loads(pickle.dumps(rec)) == rec
    assert repr(rec) == (
        "Record(lsn=5, op=Operation.INSERT, collection='users', doc_id='42', payload=b'{}', "
        "term=1, hlc=2, origin=3, txn_id=4)"
    )
    assert repr(Record(9, "c", "d", bytes(40))).startswith("Record(lsn=0, op=Operation(9),")
    assert "... (40 bytes)" in repr(Record(9, "c", "d", bytes(40)))
    with pytest.raises(AttributeError):
        rec.lsn = 6  # type: ignore[misc]
    assert Record("ddl", "c", "d", b"").txn_id is None


def test_operation_enum() -> None:
    assert [int(op) for op in Operation] == [1, 2, 3, 4]
    assert Operation(7) is Operation(7) and Operation(7).name == "OTHER"
    assert repr(Operation(7)) == "<Operation.OTHER: 7>"
    assert Operation.other(5) == 5
    for bad in (0, 256, -1):
        with pytest.raises(ValueError):
            Operation(bad)
    with pytest.raises(ValueError, match="5..=255"):
        Operation.other(4)


def test_concurrent_appenders_get_dense_unique_lsns(open_wal: OpenWal) -> None:
    import threading

    wal = open_wal()  # every_commit: appenders wait for fsync with the GIL released
    lsns: list[list[int]] = [[] for _ in range(4)]

    def work(t: int) -> None:
        for i in range(200):
            lsns[t].append(wal.append("insert", f"t{t}", str(i), b"x"))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    everything = sorted(lsn for per_thread in lsns for lsn in per_thread)
    assert everything == list(range(1, 801))
    assert all(per_thread == sorted(per_thread) for per_thread in lsns)
    assert wal.durable_lsn == 800
    by_thread: dict[str, list[str]] = {}
    for rec in wal.read_from(1):
        by_thread.setdefault(rec.collection, []).append(rec.doc_id)
    assert by_thread == {f"t{t}": [str(i) for i in range(200)] for t in range(4)}
