#!/usr/bin/env bash
# The project's one test command (README.md "Run the tests"; .ci/run calls it).
# Lint, Rust tests (unit, property, failpoint, crash), header drift, C/C++ under
# sanitizers, Python. Assumes the tools .ci/run installs are present.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy -p replication-core --all-targets --features failpoints -- -D warnings

step "cargo test --workspace (includes the include/replication.h drift check)"
cargo test --workspace

step "failpoint tests"
cargo test -p replication-core --features failpoints --test failpoints

step "C and C++ tests (ASan + UBSan)"
scripts/test-c-cpp.sh

step "Python tests"
scripts/test-python.sh

printf '\nAll test stages passed.\n'
