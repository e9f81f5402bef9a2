#!/usr/bin/python3
"""Labels in the peak profile (issue 14): the high-water mark keeps the
labels of the memory that made it.

  lab_peak.py --lib LIBHEAPPROF --go GO --binary LAB_TENANTS

lab_tenants runs at HEAPPROF_RATE=1 with HEAPPROF_PEAK=1, HEAPPROF_HTTP
and HEAPPROF_OUT. From one call site, {tenant=a} grows to 10 MiB (5 x
2 MiB: each block passes the previous mark by more than its step, so the
mark is exactly the fifth block's moment) and frees it all; then
{tenant=b} grows to 4 MiB (2 x 2 MiB), under the mark.

Checked, each profile decoded (pprofpb) and read by `go tool pprof -raw`,
which must agree with the decoder set by set:
  - the peak, written three ways (heapprof_write_profile(HEAPPROF_PEAK),
    GET /debug/pprof/peak, and the ….peak.pb.gz written at exit): the
    only set with any value is {tenant=a}, 5 objects / 10 MiB allocated
    and in use; no {tenant=b}, which came after the mark;
  - the heap profile (heapprof_write_profile(HEAPPROF_HEAP), and the one
    written at exit) has moved on: {tenant=a} 10 MiB allocated and none
    in use, {tenant=b} 2 objects / 4 MiB allocated and in use;
  - each sample's labels: `bytes` first, then the string labels.
"""

import glob
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lablib  # noqa: E402
from lablib import Fatal, ls  # noqa: E402

MiB = 1 << 20
A = ls("tenant", "a")
B = ls("tenant", "b")
PEAK = {A: [5, 10 * MiB, 5, 10 * MiB]}
NOW = {A: [5, 10 * MiB, 0, 0], B: [2, 4 * MiB, 2, 4 * MiB]}


def check(args, path, want, what):
    p = lablib.load(path)
    lablib.check_shape(p, what)
    lablib.check_sets(p, want, what)
    lablib.check_pprof_raw(args.go, path, p, what)


def body(args, work):
    out = os.path.join(work, "exit.%n.pb.gz")
    prog = lablib.Program(args, work, http=True,
                          env={"HEAPPROF_PEAK": "1", "HEAPPROF_OUT": out})
    try:
        prog.alloc(0, 5, 2 * MiB, A)
        prog.free(0)
        prog.alloc(1, 2, 2 * MiB, B)
        peak = prog.write(os.path.join(work, "api.peak.pb.gz"), "peak")
        heap = prog.write(os.path.join(work, "api.heap.pb.gz"), "heap")
        served = lablib.save(work, "served.peak.pb.gz", prog.get("/debug/pprof/peak"))
        prog.finish()
    finally:
        prog.kill()
    check(args, peak, PEAK, "heapprof_write_profile(HEAPPROF_PEAK)")
    check(args, served, PEAK, "/debug/pprof/peak")
    check(args, heap, NOW, "heapprof_write_profile(HEAPPROF_HEAP) after the peak")
    at_exit = sorted(glob.glob(os.path.join(work, "exit.*.pb.gz")))
    peaks = [x for x in at_exit if x.endswith(".peak.pb.gz")]
    heaps = [x for x in at_exit if not x.endswith(".peak.pb.gz")]
    if len(peaks) != 1 or len(heaps) != 1:
        raise Fatal(f"at exit heapprof wrote {at_exit}, expected one heap profile and "
                    "one ….peak.pb.gz")
    check(args, peaks[0], PEAK, f"the exit's {os.path.basename(peaks[0])}")
    check(args, heaps[0], NOW, f"the exit's {os.path.basename(heaps[0])}")


def main():
    return lablib.cli(__doc__, body, "lab_peak")


if __name__ == "__main__":
    sys.exit(main())
