#!/usr/bin/env bash
# Builds the `replication` wheel from python/, installs it into build/venv and runs the Python
# tests (tests/python) with warnings as errors and a per-test timeout.
#
# Usage: scripts/test-python.sh [extra pytest arguments]
# Environment: PYTHON (default python3) picks the interpreter the venv is made from.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/build/venv"
PYTHON="${PYTHON:-python3}"

# maturin >= 1.9.4 sets PYO3_BUILD_EXTENSION_MODULE itself (see python/pyproject.toml).
TOOLS=("maturin>=1.9.4,<2" "pytest>=8" "pytest-timeout>=2.3" "mypy>=1.10")

if [[ ! -x "$VENV/bin/python" ]]; then
    echo "==> creating $VENV"
    "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
# maturin's build backend runs the `maturin` executable from PATH.
export PATH="$VENV/bin:$PATH"

echo "==> installing test tools"
"$PY" -m pip install --quiet --disable-pip-version-check "${TOOLS[@]}"

echo "==> building and installing python/ (release build, may take a few minutes)"
# --no-build-isolation: use the maturin installed above instead of fetching one per build.
# --force-reinstall: the version does not change between builds, the code does.
"$PY" -m pip install --quiet --disable-pip-version-check \
    --no-build-isolation --force-reinstall --no-deps "$ROOT/python"

echo "==> pytest tests/python"
cd "$ROOT"
exec "$PY" -m pytest -W error -p no:cacheprovider tests/python "$@"
