"""Shared fixtures: WAL directories under pytest's tmp_path, closed after each test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import replication


@pytest.fixture
def wal_dir(tmp_path: Path) -> Path:
    return tmp_path / "wal"


@pytest.fixture
def open_wal(wal_dir: Path) -> Iterator[Callable[..., replication.Wal]]:
    """Opens WALs (in `wal_dir` unless a path is given) and closes them all at teardown."""
    opened: list[replication.Wal] = []

    def _open(path: Path | None = None, **options: Any) -> replication.Wal:
        wal = replication.Wal(path or wal_dir, **options)
        opened.append(wal)
        return wal

    yield _open
    for wal in opened:
        wal.close()
