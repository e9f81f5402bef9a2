#!/usr/bin/python3
"""A program that never labels gets the profiles it got before labels
existed (issue 14): no string label anywhere, byte for byte the same
shape of sample.

  lab_plain.py --lib LIBHEAPPROF --go GO --binary LAB_TENANTS

lab_tenants runs at HEAPPROF_RATE=1 with HEAPPROF_HTTP and HEAPPROF_OUT
and is never asked to push a label: it allocates 5 x 100 B and 7 x 3000
B (3 of those freed) from one call site.

Checked, on /debug/pprof/heap, /allocs, a delta_heap, the
heapprof_write_profile file and the exit profile:
  - every Sample message is, field by field on the wire, location_id
    (1), value (2), then exactly one label (3); that Label is exactly
    key (1) = "bytes" then num (3) = the block size: no str (2), no
    num_unit (4) — what heapprof wrote before labels;
  - the values are exact: 5 x 100 and 7 x 3000 allocated, 4 of the
    3000 B blocks in use, and nothing else (the program allocates
    nothing more);
  - `go tool pprof -tags` shows a bytes: block and no other;
and on /debug/pprof/heap?debug=1: no `# labels:` line, and a blank line
or a frame row after every record line.
"""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lablib  # noqa: E402
from lablib import Fatal, expect, fail  # noqa: E402

pprofpb = lablib.pprofpb
WANT = {(): [12, 5 * 100 + 7 * 3000, 9, 5 * 100 + 4 * 3000]}


def check_wire(path, what):
    """Each Sample's fields in order, and its one Label's, on the wire."""
    raw = pprofpb.load_raw(path)
    strings = [v for num, wt, v in pprofpb.fields(raw) if num == 6]
    try:
        bytes_key = strings.index(b"bytes")
    except ValueError:
        return fail(f"{what}: no string 'bytes' in the string table")
    n = 0
    for num, wt, msg in pprofpb.fields(raw):
        if num != 2:
            continue
        n += 1
        order = [f for f, _, _ in pprofpb.fields(msg)]
        if order != [1, 2, 3]:
            fail(f"{what}: sample {n} has fields {order} on the wire, expected [1, 2, 3] "
                 "(location ids, values, one label)")
            continue
        label = [(f, v) for f, _, v in pprofpb.fields(msg) if f == 3][0][1]
        got = [(f, v) for f, _, v in pprofpb.fields(label)]
        if len(got) != 2 or got[0] != (1, bytes_key) or got[1][0] != 3 or got[1][1] <= 0:
            fail(f"{what}: sample {n}'s label is {got} on the wire, expected "
                 f"[(1, {bytes_key} = 'bytes'), (3, the block size)]")
    expect(n > 0, f"{what}: no samples")


def check(args, path, want, what):
    check_wire(path, what)
    p = lablib.load(path)
    lablib.check_sets(p, want, what)
    text = lablib.pprof(args.go, ["-tags", path], what)
    keys = re.findall(r"^ (\S+): Total", text, re.M)
    expect(keys == ["bytes"], f"{what}: go tool pprof -tags shows the blocks {keys}, "
                              f"expected bytes alone:\n{text}")


def body(args, work):
    out = os.path.join(work, "exit.%n.pb.gz")
    prog = lablib.Program(args, work, http=True, env={"HEAPPROF_OUT": out})
    try:
        prog.alloc(0, 5, 100)
        prog.alloc(1, 3, 3000)
        prog.alloc(2, 4, 3000)
        prog.free(1)
        check(args, lablib.save(work, "heap.pb.gz", prog.get("/debug/pprof/heap")), WANT,
              "/debug/pprof/heap")
        check(args, lablib.save(work, "allocs.pb.gz", prog.get("/debug/pprof/allocs")), WANT,
              "/debug/pprof/allocs")
        check(args, lablib.save(work, "delta.pb.gz", prog.get("/debug/pprof/delta_heap")),
              WANT, "/debug/pprof/delta_heap")
        check(args, prog.write(os.path.join(work, "api.pb.gz"), "heap"), WANT,
              "heapprof_write_profile")
        text = prog.get("/debug/pprof/heap?debug=1").decode("utf-8", "replace")
        lablib.save(work, "heap.txt", text.encode())
        prog.finish()
    finally:
        prog.kill()
    lines = text.splitlines()
    expect("# labels" not in text, "/debug/pprof/heap?debug=1 of a program that never "
                                   "labels has a '# labels' line")
    records = [i for i, x in enumerate(lines) if lablib.RECORD.match(x)]
    expect(len(records) == 2, f"/debug/pprof/heap?debug=1: {len(records)} records, "
                              "expected 2 (the 100 B and the 3000 B blocks)")
    for i in records:
        after = lines[i + 1] if i + 1 < len(lines) else ""
        expect(after == "" or after.startswith("#\t0x"),
               f"/debug/pprof/heap?debug=1: record {lines[i]!r} is followed by {after!r}")
    path = os.path.join(work, "exit.1.pb.gz")
    if not os.path.exists(path):
        raise Fatal(f"no exit profile {path}: {sorted(os.listdir(work))}")
    check(args, path, WANT, "the exit profile")


def main():
    return lablib.cli(__doc__, body, "lab_plain")


if __name__ == "__main__":
    sys.exit(main())
