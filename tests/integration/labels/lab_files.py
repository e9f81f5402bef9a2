#!/usr/bin/python3
"""Labels in profile files (issue 14): whatever writes a file — the API,
heapprof_dump, the dump signal, the exit — writes the labels of its moment.

  lab_files.py --lib LIBHEAPPROF --go GO --binary LAB_TENANTS

lab_tenants runs at HEAPPROF_RATE=1 with HEAPPROF_OUT=<work>/f.%n.pb.gz
and HEAPPROF_SIGNAL=USR2, and allocates blocks of 1000 B from one call
site (only the labels tell the sets apart):
  {tenant=a}                  50 blocks
  {endpoint=put, tenant=b}    30 blocks
  M: 16 labels (the most a set may have), k00..k15, values of 1 to 255
     bytes                     4 blocks
  no labels                    3 blocks
then:
  heapprof_write_profile(HEAPPROF_HEAP) and (HEAPPROF_ALLOCS)
  heapprof_dump                                  -> f.1.pb.gz
  {tenant=c} 20 blocks, then SIGUSR2             -> f.2.pb.gz
  {tenant=d} 10 blocks, {tenant=a} freed, exit   -> f.3.pb.gz

Checked, each file decoded (pprofpb) and read by `go tool pprof -raw`,
which must agree with the decoder set by set: exactly the sets of its
moment, with their exact alloc and in-use counts and bytes, and nothing
else; every sample's labels are `bytes` first, then its string labels in
increasing key order; M's sixteen labels all there, in order. The API's
allocs file opens on alloc_space. heapprof says nothing on stderr.
"""

import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lablib  # noqa: E402
from lablib import Fatal, expect, ls  # noqa: E402

A = ls("tenant", "a")
B = ls("endpoint", "put", "tenant", "b")
C = ls("tenant", "c")
D = ls("tenant", "d")
M = tuple((f"k{i:02d}", ("v" * (1 + i * 17))[:255] if i < 15 else "w" * 255)
          for i in range(16))
NONE = ()


def check(args, path, want, what):
    p = lablib.load(path)
    lablib.check_shape(p, what)
    lablib.check_sets(p, want, what)
    lablib.check_pprof_raw(args.go, path, p, what)
    for s in p["sample"]:
        got = lablib.pprofpb.string_labels(p, s)
        if len(got) > 2:
            expect(tuple(got) == M, f"{what}: a sample with labels {got}, expected "
                                    f"the 16 labels of M in key order")
    return p


def body(args, work):
    out = os.path.join(work, "f.%n.pb.gz")
    prog = lablib.Program(args, work, env={"HEAPPROF_OUT": out, "HEAPPROF_SIGNAL": "USR2"})
    f = lambda n: os.path.join(work, f"f.{n}.pb.gz")  # noqa: E731
    try:
        prog.alloc(0, 50, 1000, A)
        prog.alloc(1, 30, 1000, B)
        prog.alloc(2, 4, 1000, M)
        prog.alloc(3, 3, 1000, NONE)
        first = {A: [50, 50000, 50, 50000], B: [30, 30000, 30, 30000],
                 M: [4, 4000, 4, 4000], NONE: [3, 3000, 3, 3000]}
        check(args, prog.write(os.path.join(work, "api.heap.pb.gz"), "heap"), first,
              "heapprof_write_profile(HEAPPROF_HEAP)")
        allocs = check(args, prog.write(os.path.join(work, "api.allocs.pb.gz"), "allocs"),
                       first, "heapprof_write_profile(HEAPPROF_ALLOCS)")
        dflt = allocs["default_sample_type"]
        expect(dflt and lablib.pprofpb.string_at(allocs, dflt) == "alloc_space",
               "heapprof_write_profile(HEAPPROF_ALLOCS) does not open on alloc_space")
        dumped = prog.dump()
        expect(dumped == f(1), f"heapprof_dump wrote {dumped}, expected {f(1)}")
        check(args, dumped, first, "heapprof_dump")

        prog.alloc(4, 20, 1000, C)
        prog.signal(signal.SIGUSR2)
        second = dict(first)
        second[C] = [20, 20000, 20, 20000]
        check(args, lablib.wait_for_file(f(2), "the dump signal"), second,
              "the dump signal's profile")

        prog.alloc(5, 10, 1000, D)
        prog.free(0)
        prog.finish()
    finally:
        prog.kill()
    third = dict(second)
    third[A] = [50, 50000, 0, 0]
    third[D] = [10, 10000, 10, 10000]
    if not os.path.exists(f(3)):
        raise Fatal(f"no exit profile {f(3)}: {sorted(os.listdir(work))}")
    check(args, f(3), third, "the exit profile")
    expect(not os.path.exists(f(4)), f"a profile {f(4)} nobody asked for")


def main():
    return lablib.cli(__doc__, body, "lab_files")


if __name__ == "__main__":
    sys.exit(main())
