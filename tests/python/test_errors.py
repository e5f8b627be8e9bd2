"""Every failure surfaces as a ReplicationError subclass (or TypeError for wrong types)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

import replication
from replication import (
    ClockDriftError,
    ConfigError,
    CorruptionError,
    InvalidRecordError,
    LsnOutOfRangeError,
    ReplicationError,
    WalClosedError,
    WalError,
)

OpenWal = Callable[..., replication.Wal]


def test_hierarchy() -> None:
    for exc in (WalError, ConfigError, ClockDriftError):
        assert issubclass(exc, ReplicationError)
    for exc in (CorruptionError, WalClosedError, LsnOutOfRangeError, InvalidRecordError):
        assert issubclass(exc, WalError)
    assert issubclass(InvalidRecordError, ValueError)
    assert issubclass(ConfigError, ValueError)
    assert issubclass(ReplicationError, Exception)
    assert not issubclass(WalError, ValueError)
    for cls in (ReplicationError, WalError, CorruptionError, ConfigError):
        assert cls.__module__ == "replication"
        assert cls.__doc__


def test_closed_wal_raises_wal_closed_error(wal_dir: Path) -> None:
    wal = replication.Wal(wal_dir, durability="none")
    wal.append("insert", "c", "d", b"x")
    wal.close()
    calls: list[Callable[[], object]] = [
        lambda: wal.append("insert", "c", "d", b"x"),
        lambda: wal.append_batch([("insert", "c", "d", b"x")]),
        lambda: wal.read_from(1),
        lambda: wal.read_range(1, 2),
        lambda: wal.find_lsn_by_timestamp(0),
        lambda: wal.truncate_after(0),
        lambda: wal.purge_before(1),
        lambda: wal.sync(),
        lambda: wal.segment_paths(),
        lambda: wal.first_lsn,
        lambda: wal.last_lsn,
        lambda: wal.durable_lsn,
        lambda: wal.written_lsn,
    ]
    for call in calls:
        with pytest.raises(WalClosedError, match="closed"):
            call()


def test_bad_input_raises_clear_errors(open_wal: OpenWal) -> None:
    wal = open_wal(durability="none")
    with pytest.raises(InvalidRecordError, match='unknown operation "upsert"'):
        wal.append("upsert", "c", "d", b"")
    for code in (0, 256, -3, 10**30):
        with pytest.raises(InvalidRecordError, match=f"operation code {code} is out of range"):
            wal.append(code, "c", "d", b"")
    with pytest.raises(TypeError, match="not bool"):
        wal.append(True, "c", "d", b"")
    with pytest.raises(TypeError, match="not float"):
        wal.append(1.0, "c", "d", b"")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="payload must be bytes or bytearray, not str"):
        wal.append("insert", "c", "d", "text")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        wal.append("insert", 5, "d", b"")  # type: ignore[arg-type]
    with pytest.raises(OverflowError):
        wal.append("insert", "c", "d", b"", term=-1)
    with pytest.raises(TypeError):
        wal.append("insert", "c", "d", b"", txn_id="7")  # type: ignore[arg-type]
    with pytest.raises(InvalidRecordError, match="collection name is 70000 bytes"):
        wal.append("insert", "c" * 70_000, "d", b"")
    with pytest.raises(TypeError):
        wal.read_from("1")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        replication.Record("insert", "c", "d", None)  # type: ignore[arg-type]
    # Nothing above reached the log.
    assert wal.last_lsn == 0


def test_invalid_wal_options_raise_config_error(tmp_path: Path) -> None:
    cases: list[tuple[dict[str, object], str]] = [
        ({"durability": "sometimes"}, 'durability="sometimes" is not one of'),
        ({"sync_interval_ms": 10}, "sync_interval_ms only applies"),
        ({"recovery_mode": "yolo"}, 'recovery_mode="yolo"'),
        ({"segment_size_bytes": 100}, "segment_size_bytes = 100 is too small"),
        ({"compression_level": 99}, "zstd level 99 is out of range"),
        ({"durability": "interval", "sync_interval_ms": 0}, "interval must be greater than zero"),
    ]
    for options, message in cases:
        with pytest.raises(ConfigError, match=message) as info:
            replication.Wal(tmp_path / "wal", **options)  # type: ignore[arg-type]
        assert len(info.value.problems) == 1
        assert isinstance(info.value, ValueError)


def test_second_open_of_a_directory_is_a_wal_error_naming_it(open_wal: OpenWal, wal_dir: Path) -> None:
    open_wal()
    with pytest.raises(WalError, match="already open") as info:
        replication.Wal(wal_dir)
    assert info.value.path == str(wal_dir)


def _three_segments(wal_dir: Path) -> list[Path]:
    # sync() after each append writes it out alone, so every record is its own frame
    # (appends between two write-outs would share one).
    with replication.Wal(wal_dir, durability="none", segment_size_bytes=4096) as wal:
        for i in range(120):
            wal.append("insert", "c", str(i), os.urandom(100))
            wal.sync()
        paths = wal.segment_paths()
    assert len(paths) >= 3
    return paths


def _flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x40
    path.write_bytes(bytes(data))


def test_corruption_in_a_sealed_segment_names_file_and_offset(wal_dir: Path) -> None:
    paths = _three_segments(wal_dir)
    damaged = paths[0]
    flipped_at = damaged.stat().st_size // 2
    _flip_byte(damaged, flipped_at)
    for mode in ("tolerate_torn_tail", "absolute_consistency"):
        with pytest.raises(CorruptionError) as info:
            replication.Wal(wal_dir, recovery_mode=mode)
        err = info.value
        assert err.path == str(damaged)
        assert isinstance(err.offset, int)
        # The offset is where the damaged frame starts: at or before the flipped byte.
        assert 32 <= err.offset <= flipped_at
        assert err.reason
        assert str(damaged) in str(err) and f"offset {err.offset}" in str(err)
        assert isinstance(err, WalError) and isinstance(err, ReplicationError)


def test_torn_tail_is_repaired_or_reported_by_recovery_mode(wal_dir: Path) -> None:
    paths = _three_segments(wal_dir)
    last = paths[-1]
    with replication.Wal(wal_dir) as wal:
        total = wal.last_lsn
    # A crash mid-write: the end of the last frame never reached the disk.
    size = last.stat().st_size
    with open(last, "r+b") as f:
        f.truncate(size - 7)

    with pytest.raises(CorruptionError) as info:
        replication.Wal(wal_dir, recovery_mode="absolute_consistency")
    assert info.value.path == str(last)
    assert "torn" in str(info.value)

    with replication.Wal(wal_dir) as wal:  # tolerate_torn_tail (the default)
        assert wal.last_lsn == total - 1
        assert len(list(wal.read_from(1))) == total - 1


def test_corruption_found_while_reading_raises_from_the_iterator(open_wal: OpenWal) -> None:
    wal = open_wal(durability="none", segment_size_bytes=4096)
    for i in range(120):
        wal.append("insert", "c", str(i), os.urandom(100))
    first_segment = wal.segment_paths()[0]
    _flip_byte(first_segment, first_segment.stat().st_size // 2)
    with pytest.raises(CorruptionError) as info:
        for _ in wal.read_from(1):
            pass
    assert info.value.path == str(first_segment)


def test_config_error_lists_every_problem() -> None:
    text = "\n".join(
        [
            "node_id = 0",
            "heartbeat_interval_ms = 5000",
            "election_timeout_min_ms = 3000",
            "compression_level = 99",
            "wal_segmnet_size_bytes = 4096",
            'mode = "SOMETIMES"',
            "",
        ]
    )
    with pytest.raises(ConfigError) as info:
        replication.ReplicationConfig.from_toml(text)
    err = info.value
    fields = ["node_id", "heartbeat_interval_ms", "compression_level", "wal_segmnet_size_bytes", "mode"]
    assert len(err.problems) == len(fields)
    for field in fields:
        assert any(p.startswith(field) for p in err.problems), (field, err.problems)
        assert field in str(err)
    assert "5 problems" in str(err)
    assert "wal_segment_size_bytes" in str(err)  # the suggestion for the misspelt key
    assert isinstance(err, ValueError)


def test_config_syntax_error_has_line_and_column() -> None:
    with pytest.raises(ConfigError) as info:
        replication.ReplicationConfig.from_toml("node_id = 1\nmode = \n")
    assert info.value.line == 2
    assert isinstance(info.value.column, int)
    assert len(info.value.problems) == 1


def test_config_file_that_cannot_be_read(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as info:
        replication.ReplicationConfig.from_file(missing)
    assert info.value.path == str(missing)
    assert str(missing) in str(info.value)
    assert isinstance(info.value.__cause__, FileNotFoundError)


def test_clock_drift_error() -> None:
    import time

    clock = replication.HlcClock(max_drift_ms=100)
    before = clock.now()
    ahead = replication.HlcTimestamp.from_parts(int(time.time() * 1000) + 60_000, 0)
    with pytest.raises(ClockDriftError) as info:
        clock.update(ahead.value)
    err = info.value
    assert err.max_drift_ms == 100
    assert err.remote_ms is not None and err.local_ms is not None
    assert err.remote_ms - err.local_ms >= 59_000
    assert "max drift of 100 ms" in str(err)
    assert clock.last == before  # the clock was not advanced
