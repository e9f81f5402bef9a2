#!/bin/sh
# Issue 13's dump-time cost of demangling and inline frames, as
# docs/BENCHMARKS.md reports it: bench/symbols_cost.cpp, the library built
# here with HEAPPROF_DEMANGLE=none, simple and full, against the library of
# an earlier commit (no demangling, no inline frames), interleaved round by
# round in one invocation.
#
#   bench/symbols_cost.sh [BUILD_DIR] [BASE] [symbols_cost options...]
#
# BUILD_DIR (default build) is a configured build tree; the script builds
# its bin/symbols_cost and lib/libheapprof.so (the library under test). BASE is the
# library to compare with: a path to a libheapprof.so, or a commit, whose
# library is then built once (Release, as here) from `git archive` into
# $BASE_DIR (default /tmp/heapprof-base-COMMIT) and reused; default d3998b0,
# the last commit before issue 13. Any further options go to symbols_cost
# (--rounds, --writes, --styles, --save DIR, --callgrind 0); the default is
# 9 rounds of 10 writes, then one run of each configuration under callgrind
# for the instructions of each write (needs valgrind).
set -eu
BUILD=${1:-build}
BASE=${2:-d3998b0}
if [ $# -gt 2 ]; then shift 2; else shift $#; fi
BIN=$BUILD/bin/symbols_cost
LIB=$BUILD/lib/libheapprof.so
cmake --build "$BUILD" --target symbols_cost >/dev/null ||
  { echo "symbols_cost: cannot build $BUILD's symbols_cost (configure $BUILD first)" >&2; exit 1; }
if [ ! -x "$BIN" ] || [ ! -f "$LIB" ]; then
  echo "symbols_cost: no $BIN or $LIB" >&2
  exit 1
fi

here=$(cd "$(dirname "$0")/.." && pwd)
if [ -f "$BASE" ]; then
  BASE_LIB=$BASE
else
  rev=$(git -C "$here" rev-parse --short "$BASE^{commit}")
  BASE_DIR=${BASE_DIR:-/tmp/heapprof-base-$rev}
  BASE_LIB=$BASE_DIR/build/lib/libheapprof.so
  if [ ! -f "$BASE_LIB" ]; then
    echo "building the library of $rev in $BASE_DIR" >&2
    mkdir -p "$BASE_DIR/src"
    git -C "$here" archive "$rev" | tar -x -C "$BASE_DIR/src"
    cmake -S "$BASE_DIR/src" -B "$BASE_DIR/build" -DCMAKE_BUILD_TYPE=Release \
      -DHEAPPROF_BUILD_TESTS=OFF -DHEAPPROF_BUILD_EXAMPLES=OFF >/dev/null
    cmake --build "$BASE_DIR/build" -j "$(nproc)" --target heapprof >/dev/null
  fi
  echo "previous library: commit $rev ($BASE_LIB)"
fi
exec "$BIN" --base "$BASE_LIB" --lib "$LIB" --callgrind 1 "$@"
