#!/bin/sh
# Issue 12's "cheap steady state", as docs/BENCHMARKS.md reports it: a
# process with 10,000 buckets scraped every second (bench/scrape_cost.c).
#
#   bench/scrape_cost.sh [BUILD_DIR] [--quick]
#
# Two runs, one after the other (never together: they would share the
# 2 cores):
#   1. continuous: /debug/pprof/allocs every second for 5 minutes — the
#      CPU per scrape and the RSS drift after the first minute;
#   2. alternating: 10 minutes in 10-second phases, scraped and not, for
#      the allocating thread's throughput with and without scraping (the
#      phases are short so that both see the same neighbours' load).
# --quick makes them 40 s and 60 s (settling 10 s) to check the harness.
# Per-second CSVs go to $OUT (default /tmp/scrape_cost).
set -eu
BUILD=${1:-build}
QUICK=0
[ "${2:-}" = --quick ] && QUICK=1
BIN=$BUILD/bin/scrape_cost
LIB=$BUILD/lib/libheapprof.so
OUT=${OUT:-/tmp/scrape_cost}
[ -x "$BIN" ] || { echo "scrape_cost: no $BIN (build the bench targets)" >&2; exit 1; }
[ -f "$LIB" ] || { echo "scrape_cost: no $LIB" >&2; exit 1; }
mkdir -p "$OUT"

if [ "$QUICK" = 1 ]; then
  CONT="--seconds 40 --settle 10" ALT="--seconds 60 --settle 10 --phase 10"
else
  CONT="--seconds 300 --settle 60" ALT="--seconds 600 --settle 60 --phase 10"
fi

here=$(cd "$(dirname "$0")/.." && pwd)
echo "== scrape_cost $(date -u '+%Y-%m-%d %H:%M UTC')"
dirty=
if git -C "$here" status --porcelain 2>/dev/null | grep -q .; then
  dirty='(work tree has changes)'
fi
echo "HEAD $(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo '?') $dirty"
echo "libc6-dbg: $(dpkg-query -W -f '${Status} ${Version}' libc6-dbg 2>/dev/null || echo 'not installed')"
echo "cpu: $(nproc) x $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "== 1. scraped every second ($CONT)"
# shellcheck disable=SC2086
"$BIN" $CONT --lib "$LIB" --csv "$OUT/continuous.csv"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "== 2. alternating phases ($ALT)"
# shellcheck disable=SC2086
"$BIN" $ALT --lib "$LIB" --csv "$OUT/alternating.csv"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
