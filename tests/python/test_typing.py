"""The package is typed: stubs match the native module, and typical use passes mypy --strict."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mypy")

HERE = Path(__file__).parent


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    # cwd is a temporary directory: mypy and stubtest leave caches where they run.
    return subprocess.run(
        [sys.executable, "-m", *args], capture_output=True, text=True, cwd=cwd, timeout=110
    )


def test_usage_passes_mypy_strict(tmp_path: Path) -> None:
    result = run(["mypy", "--strict", str(HERE / "typing_usage.py")], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_stubs_match_the_native_module(tmp_path: Path) -> None:
    """stubtest imports replication._native and compares every name and signature with
    _native.pyi: the drift check for the hand-written stubs."""
    result = run(["mypy.stubtest", "replication._native"], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
