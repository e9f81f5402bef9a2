#!/usr/bin/env bash
# The demo: installs what it needs, builds, and tells heapprof's story —
# a map filled with 1,000,000 entries and emptied with deletes still holds
# its buckets; only a rebuild gives the memory back — with heapprof
# profiles read by go tool pprof, and SVG graphs of each phase.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target map_delete map_reset >/dev/null

out=${HEAPPROF_DEMO_OUT:-out/demo}
rm -rf "$out"
mkdir -p "$out"
export HEAPPROF_SIGNAL=none

# Prints the head of a pprof -top table: its header and the first rows.
top() {
  go tool pprof -top "$@" 2>/dev/null | sed -n '/^Showing nodes/,$p' | head -"${rows:-5}"
}

for kind in int str; do
  case $kind in
    int) title="map[int]int" ;;
    str) title="map[string]*T (values are heap objects)" ;;
  esac
  echo
  echo "=== $title: fill 1,000,000 entries, delete every key, rebuild"
  build/bin/map_delete "$kind" "$out"
  for phase in before after-delete after-rebuild; do
    p="$out/$kind-$phase.pb.gz"
    echo
    echo "\$ go tool pprof -top -sample_index=inuse_space $p"
    top -sample_index=inuse_space "$p"
    go tool pprof -svg -sample_index=inuse_space -output "$out/$kind-$phase.svg" "$p" 2>/dev/null
  done
  echo
  echo "\$ go tool pprof -top -sample_index=inuse_space -base $kind-before $kind-after-delete   # what the deletes gave back"
  rows=4 top -sample_index=inuse_space -base "$out/$kind-before.pb.gz" "$out/$kind-after-delete.pb.gz"
  echo
  echo "\$ go tool pprof -top -sample_index=inuse_space -base $kind-after-delete $kind-after-rebuild   # what the rebuild gave back"
  rows=5 top -sample_index=inuse_space -base "$out/$kind-after-delete.pb.gz" "$out/$kind-after-rebuild.pb.gz"
  echo
  echo "\$ go tool pprof -top -sample_index=alloc_space $kind-after-delete   # allocation history: deletes change nothing"
  rows=4 top -sample_index=alloc_space "$out/$kind-after-delete.pb.gz"
done

echo
echo "=== clearing by deleting every key vs building a new map"
build/bin/map_reset

echo
echo "Profiles and graphs (SVG) of each phase are in $out/:"
ls "$out"
echo "Explore one in the browser: go tool pprof -http=127.0.0.1:8080 $out/int-after-delete.pb.gz"
