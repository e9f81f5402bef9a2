#!/usr/bin/python3
"""A C allocation inside two inlined static inline helpers (issue 13), for
tests/programs/sym_inline.c built -O2 -g, run under heapprof at rate 1.

  sym_inline.py --lib LIBHEAPPROF --binary SYM_INLINE --source sym_inline.c --go GO

build (a real function) calls make_node, which calls grow, which calls
malloc; both helpers are inlined, so the malloc call's return address is
in build. Checked, as stored (decoding the protobuf):
  - the 100 allocations of 40 bytes are one bucket whose leaf Location has
    three Lines, innermost first: grow at LINE:grow, make_node at
    LINE:make_node, build at LINE:build; each names its own Function
    (name = system_name, the file sym_inline.c, start_line its DECL:
    line); the next Location is main;
  - the Location has exactly the frames `addr2line -i -f -C` prints for
    its address (and so does every Location in the binary);
  - the binary's Mapping has has_inline_frames (and the other three);
and through `go tool pprof`:
  - -raw -symbolize=none shows the three Lines as stored;
  - -traces shows the stack as grow (inline), make_node (inline), build,
    main, ...;
  - -top -sample_index=alloc_objects has a row "grow (inline)" with 100
    flat, and build's row is not marked inline.
"""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import symlib  # noqa: E402
from symlib import expect, fail  # noqa: E402

COUNT, SIZE = 100, 40  # sym_inline's default count; sizeof(struct node) + 24
CHAIN = ["grow", "make_node", "build"]


def body(args, work):
    marks = symlib.markers(args.source)
    src = os.path.abspath(args.source)
    out = os.path.join(work, "sym_inline.pb.gz")
    symlib.profiled(args.lib, [args.binary], out)
    prof = symlib.Profile(out)

    samples = prof.samples_of_size(SIZE)
    if len(samples) != 1:
        fail(f"{len(samples)} samples of {SIZE} bytes, expected one bucket:\n"
             + "\n".join(prof.describe_stack(s) for s in samples))
        if not samples:
            return
    s = samples[0]
    expect(prof.value(s, "alloc_objects/count") == COUNT,
           f"the {SIZE}-byte bucket counts {prof.value(s, 'alloc_objects/count')} "
           f"allocations, expected {COUNT}")
    stack = prof.stack(s)
    leaf = prof.lines(stack[0])
    names = [x["name"] for x in leaf]
    if names != CHAIN:
        fail(f"the malloc call site's Location has Lines {names} (innermost first), "
             f"expected {CHAIN}:\n{prof.describe_stack(s)}")
    for x in leaf:
        if x["name"] in CHAIN:
            symlib.check_line(x, f"Line of {x['name']}", system_name=x["name"],
                              filename=src, line=marks[("LINE", x["name"])],
                              start_line=marks[("DECL", x["name"])])
    caller = prof.lines(stack[1]) if len(stack) > 1 else []
    expect([x["name"] for x in caller] == ["main"],
           f"the caller's Location has Lines {[x['name'] for x in caller]}, expected [main]")
    ids = [x["function_id"] for x in leaf]
    expect(len(set(ids)) == len(ids), f"the Lines share Functions: ids {ids}")

    binary = os.path.abspath(args.binary)
    maps = prof.mapping_named(binary)
    if len(maps) != 1:
        fail(f"{len(maps)} mappings name {binary}")
    else:
        symlib.check_mapping_flags(prof, maps[0], "sym_inline")
        for loc in prof.p["location"]:
            if loc["mapping_id"] == maps[0]["id"]:
                symlib.compare_with_addr2line(prof, loc, binary, lambda x: x["name"],
                                              "sym_inline vs addr2line")

    # -- go tool pprof ------------------------------------------------------
    raw = symlib.parse_raw(symlib.pprof(args.go, ["-raw", "-symbolize=none", out],
                                        "sym_inline"))
    theirs = raw["locations"].get(stack[0]["id"], {"lines": []})["lines"]
    shown = [(x["name"], x["line"], x["start"]) for x in theirs]
    want = [(n, marks[("LINE", n)], marks[("DECL", n)]) for n in CHAIN]
    expect(shown == want, f"go tool pprof -raw -symbolize=none shows the leaf location "
                          f"as {shown}, expected {want}")

    traces = symlib.parse_traces(symlib.pprof(
        args.go, ["-traces", "-sample_index=alloc_space", out], "sym_inline"))
    want = [("grow", True), ("make_node", True), ("build", False), ("main", False)]
    hits = [b for b in traces if b[:4] == want]
    expect(hits, f"go tool pprof -traces has no stack starting {want}; stacks through "
                 f"build: {[b for b in traces if any(n == 'build' for n, _ in b)]}")

    top = symlib.pprof(args.go, ["-top", "-nodecount=1000", "-sample_index=alloc_objects",
                                 out], "sym_inline")
    expect(re.search(rf"^\s*{COUNT}\s.*\sgrow \(inline\)$", top, re.M),
           f"go tool pprof -top has no row 'grow (inline)' with {COUNT} flat:\n{top}")
    expect(re.search(r"\smake_node \(inline\)$", top, re.M),
           f"go tool pprof -top has no row 'make_node (inline)':\n{top}")
    expect(re.search(r"\sbuild$", top, re.M),
           f"go tool pprof -top has no row 'build' (not inlined):\n{top}")


def main():
    return symlib.cli(__doc__, ("lib", "binary", "source", "go"), body, "sym_inline")


if __name__ == "__main__":
    sys.exit(main())
