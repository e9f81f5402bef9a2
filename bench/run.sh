#!/usr/bin/env bash
# The benchmark suite, from one command: installs what it needs (the peers
# too), builds, runs bench/suite.py and writes docs/BENCHMARKS.md.
#
# usage: bench/run.sh [--rounds N] [--only WORKLOAD,...] [--no-write]
#        bench/run.sh --counted-only [--no-write]   (the callgrind table alone)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
if ! dpkg-query -W -f='${Status}\n' libgoogle-perftools4 heaptrack valgrind 2>/dev/null |
     grep -c "install ok installed" | grep -qx 3; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    libgoogle-perftools4 heaptrack valgrind </dev/null
fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target heapprof alloc_bench map_bench \
  sampled_cost write_cost memory_cost label_cost forward heapprof_cli attach_target >/dev/null
exec python3 bench/suite.py "$@"
