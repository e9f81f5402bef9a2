#!/usr/bin/env bash
# Runs the allocation benchmark under each configuration, interleaved
# (A B C D, A B C D, …) so that the machine's noise hits all alike, and
# prints medians and ratios against glibc measured in the same run; then
# the sampled-path cost per stack depth.
#
# usage: bench/run.sh [ROUNDS] [PAIRS]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-7}
pairs=${2:-20000000}
scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target heapprof alloc_bench sampled_cost >/dev/null
lib=$PWD/build/lib/libheapprof.so
bench=$PWD/build/bin/alloc_bench
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

configs=("glibc" "heapprof-default" "heapprof-4096" "heapprof-1")
env_of() {
  case $1 in
    glibc) echo "" ;;
    heapprof-default) echo "LD_PRELOAD=$lib" ;;
    heapprof-4096) echo "LD_PRELOAD=$lib HEAPPROF_RATE=4096" ;;
    heapprof-1) echo "LD_PRELOAD=$lib HEAPPROF_RATE=1" ;;
  esac
}

for threads in 1 2; do
  for ((r = 0; r < rounds; r++)); do
    for c in "${configs[@]}"; do
      (cd "$out" && env $(env_of "$c") HEAPPROF_SIGNAL=none "$bench" "$pairs" "$threads" 100000) \
        >>"$out/$c.$threads"
    done
  done
done

median() { sort -g "$1" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
printf "\n%-18s %12s %8s %12s %8s\n" "config" "alloc-1t s" "ratio" "alloc-2t s" "ratio"
b1=$(median "$out/glibc.1"); b2=$(median "$out/glibc.2")
for c in "${configs[@]}"; do
  m1=$(median "$out/$c.1"); m2=$(median "$out/$c.2")
  awk -v c="$c" -v m1="$m1" -v b1="$b1" -v m2="$m2" -v b2="$b2" \
    'BEGIN { printf "%-18s %12.3f %7.3fx %12.3f %7.3fx\n", c, m1, m1 / b1, m2, m2 / b2 }'
done
echo "($rounds rounds, $pairs malloc/free pairs, 100k live, medians; ratio = config / glibc in this run)"
echo
HEAPPROF_SIGNAL=none build/bin/sampled_cost
