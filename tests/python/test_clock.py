"""Hybrid logical clocks and vector clocks."""

from __future__ import annotations

import threading
import time

import pytest

from replication import HlcClock, HlcTimestamp, VectorClock, VectorOrdering


def test_hlc_default_max_drift_matches_the_signature() -> None:
    import inspect

    default = inspect.signature(HlcClock).parameters["max_drift_ms"].default
    assert HlcClock().max_drift_ms == default == 500
    assert HlcClock(max_drift_ms=20).max_drift_ms == 20


def test_hlc_now_is_strictly_increasing_and_near_wall_time() -> None:
    clock = HlcClock()
    assert clock.last == 0
    readings = [clock.now() for _ in range(20_000)]
    assert all(a < b for a, b in zip(readings, readings[1:]))
    assert clock.last == readings[-1]
    wall_ms = int(time.time() * 1000)
    assert abs(HlcTimestamp(readings[-1]).physical_ms - wall_ms) < 5_000


def test_hlc_is_unique_across_threads() -> None:
    clock = HlcClock()
    results: list[list[int]] = [[] for _ in range(4)]

    def work(out: list[int]) -> None:
        for _ in range(5_000):
            out.append(clock.now())

    threads = [threading.Thread(target=work, args=(out,)) for out in results]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    everything = [ts for out in results for ts in out]
    assert len(set(everything)) == len(everything)
    for out in results:
        assert out == sorted(out)


def test_hlc_update_moves_past_remote_and_local() -> None:
    clock = HlcClock()
    local = clock.now()
    # A remote timestamp slightly ahead (within the drift bound) with a high logical counter.
    remote = HlcTimestamp.from_parts(HlcTimestamp(local).physical_ms + 100, 40)
    merged = clock.update(remote.value)
    assert merged > remote.value and merged > local
    assert clock.now() > merged
    # A remote timestamp from the past still advances the clock.
    assert clock.update(1) > merged


def test_hlc_timestamp_parts() -> None:
    ts = HlcTimestamp.from_parts(1_732_540_000_000, 3)
    assert (ts.physical_ms, ts.logical) == (1_732_540_000_000, 3)
    assert ts.value == (1_732_540_000_000 << 16) | 3
    assert int(ts) == ts.value and [10, 20][HlcTimestamp(1)] == 20
    assert HlcTimestamp(ts.value) == ts and hash(HlcTimestamp(ts.value)) == hash(ts)
    assert HlcTimestamp.from_parts(1, 0) > HlcTimestamp.from_parts(0, 65535)
    assert sorted([HlcTimestamp(3), HlcTimestamp(1), HlcTimestamp(2)]) == [
        HlcTimestamp(1),
        HlcTimestamp(2),
        HlcTimestamp(3),
    ]
    assert str(ts) == "1732540000000.3"
    assert repr(ts) == "HlcTimestamp(physical_ms=1732540000000, logical=3)"
    with pytest.raises(OverflowError):
        HlcTimestamp.from_parts(1, 65536)
    with pytest.raises(OverflowError):
        HlcTimestamp(-1)


def test_vector_clock_compare_all_outcomes() -> None:
    a = VectorClock()
    b = VectorClock()
    assert a.compare(b) is VectorOrdering.EQUAL
    assert a.increment(1) == 1
    assert a.compare(b) is VectorOrdering.AFTER and b.compare(a) is VectorOrdering.BEFORE
    assert b.happened_before(a) and not a.happened_before(b)
    b.increment(2)
    assert a.compare(b) is VectorOrdering.CONCURRENT
    assert a.is_concurrent(b) and b.is_concurrent(a)
    # Comparisons read as strings too.
    assert a.compare(b) == "concurrent" and str(VectorOrdering.BEFORE) == "before"

    merged = a.copy()
    merged.merge(b)
    assert merged.to_dict() == {1: 1, 2: 1}
    assert a.compare(merged) is VectorOrdering.BEFORE
    assert merged.compare(b) is VectorOrdering.AFTER
    assert a.to_dict() == {1: 1}  # copy() is independent


def test_vector_clock_value_semantics() -> None:
    vc = VectorClock({3: 2, 1: 5, 9: 0})
    assert vc.to_dict() == {1: 5, 3: 2}  # zero counters are dropped
    assert len(vc) == 2 and vc.get(1) == 5 and vc.get(42) == 0
    assert vc == VectorClock({1: 5, 3: 2}) and vc != VectorClock({1: 5})
    assert vc != {1: 5, 3: 2}
    assert repr(vc) == "VectorClock({1: 5, 3: 2})"
    vc.merge(vc)  # merging with itself is a no-op, not a deadlock
    assert vc.to_dict() == {1: 5, 3: 2}
    with pytest.raises(TypeError, match="unhashable"):
        hash(vc)
    with pytest.raises(TypeError):
        VectorClock([(1, 2)])  # type: ignore[arg-type]
    with pytest.raises(OverflowError):
        VectorClock({1: -1})
    with pytest.raises(TypeError):
        vc < vc  # type: ignore[operator]  # causal order is partial


def test_vector_clock_is_safe_to_share_between_threads() -> None:
    vc = VectorClock()

    def work(node: int) -> None:
        for _ in range(2_000):
            vc.increment(node)
            vc.increment(0)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(1, 5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert vc.to_dict() == {0: 8_000, 1: 2_000, 2: 2_000, 3: 2_000, 4: 2_000}
