#!/usr/bin/env bash
# Sets up, builds and runs every heapprof test: unit, integration, and the
# sanitizer builds (ASan+UBSan and TSan over the parts that can run under
# them), all in one CTest run whose summary line closes the output.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
build=${HEAPPROF_BUILD_DIR:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DHEAPPROF_SANITIZER_TESTS=ON >/dev/null
cmake --build "$build" -j "$(nproc)"
cd "$build"
exec ctest --output-on-failure -j "$(nproc)" "$@"
