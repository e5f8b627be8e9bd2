#!/usr/bin/env bash
# Builds the C library, installs the C/C++ package into build/prefix, and runs the C and C++
# tests (ASan + UBSan) with CTest, including the README's C/C++ tour programs and the check that
# README.md shows them verbatim (skipped until README.md has the C/C++ tour section).
#
#   bash scripts/test-c-cpp.sh            # C + C++ tests under sanitizers
#   REPL_VALGRIND=1 bash scripts/test-c-cpp.sh   # also the C tests under Valgrind (slow)
#
# Needs: cargo, cmake >= 3.18, a C and C++ compiler, pkg-config, GoogleTest (Debian:
# libgtest-dev); ninja and valgrind are optional.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

for tool in cargo cmake pkg-config; do
  if ! command -v "$tool" >/dev/null; then
    echo "test-c-cpp: '$tool' is missing (Debian: apt-get install cmake ninja-build g++ pkg-config libgtest-dev)" >&2
    exit 1
  fi
done

echo "==> cargo build -p replication-ffi"
cargo build -p replication-ffi
target_dir="$(cargo metadata --format-version 1 --no-deps | grep -o '"target_directory":"[^"]*"' | cut -d'"' -f4)"
lib_dir="$target_dir/debug"

build="$root/build"
prefix="$build/prefix"
generator=()
if command -v ninja >/dev/null; then generator=(-G Ninja); fi

echo "==> install bindings/cpp into $prefix"
# A fresh prefix each run: a stale library or header must not satisfy the tests.
rm -rf "$prefix"
cmake -S bindings/cpp -B "$build/cpp" "${generator[@]}" -DREPLICATION_LIB_DIR="$lib_dir" >/dev/null
cmake --install "$build/cpp" --prefix "$prefix" >/dev/null

valgrind_opt=OFF
if [[ "${REPL_VALGRIND:-0}" == 1 ]]; then
  if command -v valgrind >/dev/null; then
    valgrind_opt=ON
  else
    echo "test-c-cpp: REPL_VALGRIND=1 but valgrind is not installed; skipping the Valgrind run" >&2
  fi
fi

echo "==> configure and build tests/ into $build/tests"
cmake -S tests -B "$build/tests" "${generator[@]}" \
  -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_PREFIX_PATH="$prefix" \
  -DREPL_VALGRIND="$valgrind_opt" >/dev/null
cmake --build "$build/tests" --parallel "$(nproc 2>/dev/null || echo 2)"

echo "==> ctest"
(cd "$build/tests" && ctest --output-on-failure --timeout 1800)

if ! grep -qxF '## Five-minute tour: C and C++' README.md; then
  echo "test-c-cpp: README.md has no '## Five-minute tour: C and C++' section yet, so" \
       "readme_tour_in_sync was skipped; the tour programs were still built and run"
fi
