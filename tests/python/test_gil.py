"""Blocking calls release the GIL, and long reads can be interrupted with Ctrl-C."""

from __future__ import annotations

import _thread
import sys
import threading
import time
from pathlib import Path

import pytest

import replication

RECORDS = 200_000


@pytest.fixture(scope="module")
def big_wal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("gil") / "wal"
    with replication.Wal(path, durability="none") as wal:
        batch = [("insert", "c", str(i), bytes(64)) for i in range(1000)]
        for _ in range(RECORDS // 1000):
            wal.append_batch(batch)
    return path


def test_reading_lets_other_threads_run(big_wal: Path) -> None:
    """A thread that needs the GIL makes progress *during* a read driven from C (list()).

    If the read held the GIL throughout, the ticker could only record times before the read
    started or after it ended; a margin keeps the interpreter's own thread switches at the
    edges of each read out of the count.
    """
    ticks: list[float] = []
    stop = threading.Event()

    def ticker() -> None:
        while not stop.is_set():
            time.sleep(0.0005)  # releases the GIL, then needs it back to append
            ticks.append(time.perf_counter())

    windows: list[tuple[float, float]] = []
    thread = threading.Thread(target=ticker)
    thread.start()
    try:
        with replication.Wal(big_wal, durability="none") as wal:
            for _ in range(3):
                start = time.perf_counter()
                records = list(wal.read_from(1))
                end = time.perf_counter()
                windows.append((start, end))
                assert len(records) == RECORDS
    finally:
        stop.set()
        thread.join()
    margin = 0.002
    inside = [t for t in ticks if any(s + margin < t < e - margin for s, e in windows)]
    assert len(inside) >= 5, (len(inside), windows)


def test_long_read_is_interruptible(big_wal: Path) -> None:
    """Ctrl-C (simulated with interrupt_main) stops list(iterator) part-way through.

    list() consumes the iterator in C, where the interpreter never checks for signals, so the
    interruption can only come from the iterator's own check between read-aheads. The switch
    interval is raised so that the helper thread runs only when the read releases the GIL,
    i.e. while list() is running.
    """
    with replication.Wal(big_wal, durability="none") as wal:
        it = wal.read_from(1)
        assert next(it).lsn == 1
        started = threading.Event()

        def interrupt() -> None:
            started.wait()
            _thread.interrupt_main()

        helper = threading.Thread(target=interrupt)
        helper.start()
        old_interval = sys.getswitchinterval()
        sys.setswitchinterval(100)
        try:
            started.set()
            with pytest.raises(KeyboardInterrupt):
                list(it)
        finally:
            sys.setswitchinterval(old_interval)
            helper.join()
        rest = list(it)
        # Interrupted after at least one read-ahead and well before the end; the iterator
        # stays usable and continues where it stopped.
        assert 0 < len(rest) < RECORDS - 1
        assert rest[-1].lsn == RECORDS
