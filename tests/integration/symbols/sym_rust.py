#!/usr/bin/python3
"""Rust names (issue 13), for tests/programs/sym_rust.rs built by Debian's
rustc with -g -C opt-level=1, in v0 or legacy symbol mangling, run under
heapprof at rate 1 with the default HEAPPROF_DEMANGLE.

  sym_rust.py --lib LIBHEAPPROF --binary SYM_RUST --source sym_rust.rs --go GO
              --mangling v0|legacy

As in sym_cxx.py, `go tool pprof`'s own demangler is the reference: the
program runs once more from a copy deleted afterwards with
HEAPPROF_DEMANGLE=none, and pprof names each function of that profile.

Checked, as stored (decoding the protobuf):
  - sym_rust::grow_cache is named "sym_rust::grow_cache" (the hash
    dropped), with the linker's name as system_name (_RNv...8sym_rust
    10grow_cache for v0, _ZN8sym_rust10grow_cache17h<16 hex>E for legacy);
    Cache::add_row as pprof names it (<sym_rust::Cache>::add_row for v0,
    sym_rust::Cache::add_row for legacy); every function of the crate as
    pprof's default demangling names it; no Rust-mangled function keeps a
    mangled name, a ::h<hash> or a $ escape;
  - each Vec's allocation (20 of them, 800-952 bytes): the leaf Location's
    last Line is grow_cache at LINE:grow_cache, start_line
    DECL:grow_cache; Vec::with_capacity and the allocator's code are
    inlined there, so the Location has the Lines `addr2line -i -f -C`
    prints (count, files, lines; names for the crate's own frames), and
    the next Location is add_row at LINE:Cache::add_row, start_line
    DECL:Cache::add_row; the binary's mapping has has_inline_frames;
and through `go tool pprof`: -raw -symbolize=none shows grow_cache's
stored name and its mangled system name; -traces shows the inlined frames
"(inline)" above sym_rust::grow_cache, then add_row.
"""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import symlib  # noqa: E402
from symlib import expect, fail  # noqa: E402

SIZES = [8 * (100 + i) for i in range(20)]
GROW = {"v0": r"_RNvCs[0-9A-Za-z_]+_8sym_rust10grow_cache",
        "legacy": r"_ZN8sym_rust10grow_cache17h[0-9a-f]{16}E"}
ADD_ROW = {"v0": r"_RNvMCs[0-9A-Za-z_]+_8sym_rustNtB[0-9A-Za-z_]*_5Cache7add_row",
           "legacy": r"_ZN8sym_rust5Cache7add_row17h[0-9a-f]{16}E"}
ADD_ROW_NAME = {"v0": "<sym_rust::Cache>::add_row", "legacy": "sym_rust::Cache::add_row"}
LEGACY = re.compile(r"_ZN.*17h[0-9a-f]{16}E(\..*)?$")


def is_rust(sysname):
    return sysname.startswith("_R") or bool(LEGACY.match(sysname))


def body(args, work):
    marks = symlib.markers(args.source)
    src = os.path.abspath(args.source)
    oracle, _ = symlib.pprof_oracle(args.go, args.lib, args.binary, [], work,
                                    f"sym_rust_{args.mangling}")
    out = os.path.join(work, "sym_rust.pb.gz")
    symlib.profiled(args.lib, [args.binary], out)
    prof = symlib.Profile(out)

    # -- names ----------------------------------------------------------------
    grow = add_row = None
    for f in prof.p["function"]:
        name, sysname = prof.s(f["name"]), prof.s(f["system_name"]) or ""
        what = f"function {f['id']} (system_name {sysname!r})"
        if re.fullmatch(GROW[args.mangling] + r"(\..*)?", sysname):
            grow = f
        if re.fullmatch(ADD_ROW[args.mangling] + r"(\..*)?", sysname):
            add_row = f
        if "8sym_rust" in sysname:
            want = oracle[""].get(sysname)
            if want is None:
                fail(f"{what} is not in the reference run's profile")
            elif name != want:
                fail(f"{what}: name {name!r}; go tool pprof names it {want!r}")
                continue
        if is_rust(sysname):
            expect(not name.startswith(("_R", "_ZN")), f"{what}: name {name!r} is mangled")
            expect(not re.search(r"::h[0-9a-f]{16}$", name), f"{what}: name {name!r} keeps "
                                                             "the hash")
            expect("$" not in name, f"{what}: name {name!r} keeps a $ escape")
    if grow is None:
        fail(f"no function's system name matches {GROW[args.mangling]!r}: "
             f"{sorted(prof.s(f['system_name']) for f in prof.p['function'] if 'grow' in prof.s(f['system_name']) or 'sym_rust' in prof.s(f['name']))}")
    else:
        expect(prof.s(grow["name"]) == "sym_rust::grow_cache",
               f"grow_cache is named {prof.s(grow['name'])!r}, expected 'sym_rust::grow_cache'")
    if add_row is None:
        fail(f"no function's system name matches {ADD_ROW[args.mangling]!r}")
    else:
        expect(prof.s(add_row["name"]) == ADD_ROW_NAME[args.mangling],
               f"add_row is named {prof.s(add_row['name'])!r}, expected "
               f"{ADD_ROW_NAME[args.mangling]!r}")

    # -- the Vecs' allocations ----------------------------------------------
    binary = os.path.abspath(args.binary)
    maps = prof.mapping_named(binary)
    if len(maps) != 1:
        fail(f"{len(maps)} mappings name {binary}")
    else:
        symlib.check_mapping_flags(prof, maps[0], f"sym_rust_{args.mangling}")
    samples = [s for n in SIZES for s in prof.samples_of_size(n)]
    expect(len(samples) == len(SIZES), f"{len(samples)} samples of the Vecs' sizes, "
                                       f"expected {len(SIZES)} ({SIZES[0]}..{SIZES[-1]})")
    for s in samples[:1] + samples[-1:]:  # all alike: the first and the last
        stack = prof.stack(s)
        leaf = prof.lines(stack[0])
        if not leaf or grow is None or leaf[-1]["function_id"] != grow["id"]:
            fail(f"the Vec's allocation ({prof.label(s, 'bytes')} bytes): its leaf "
                 f"Location does not end in grow_cache:\n{prof.describe_stack(s)}")
            continue
        symlib.check_line(leaf[-1], "grow_cache's Line", filename=src,
                          line=marks[("LINE", "grow_cache")],
                          start_line=marks[("DECL", "grow_cache")])
        expect(len(leaf) >= 2, f"the allocation in grow_cache has {len(leaf)} Line(s): "
                               "Vec::with_capacity's inlined code is missing "
                               f"({[x['name'] for x in leaf]})")
        caller = prof.lines(stack[1]) if len(stack) > 1 else []
        if not caller or add_row is None or caller[-1]["function_id"] != add_row["id"]:
            fail(f"grow_cache's caller is {[x['name'] for x in caller]}, expected add_row")
        else:
            symlib.check_line(caller[-1], "add_row's Line", filename=src,
                              line=marks[("LINE", "Cache::add_row")],
                              start_line=marks[("DECL", "Cache::add_row")])
        if maps:
            symlib.compare_with_addr2line(
                prof, stack[0], binary, lambda x: x["name"],
                f"sym_rust_{args.mangling} vs addr2line",
                name_filter=lambda fn: "sym_rust::" in fn)

    # -- go tool pprof -------------------------------------------------------
    if grow is None:
        return
    gname = prof.s(grow["name"])
    raw = symlib.parse_raw(symlib.pprof(args.go, ["-raw", "-symbolize=none", out],
                                        "sym_rust"))
    rows = [x for loc in raw["locations"].values() for x in loc["lines"]
            if x["sys"] == prof.s(grow["system_name"])]
    expect(rows and all(x["name"] == "sym_rust::grow_cache" for x in rows),
           f"go tool pprof -raw -symbolize=none shows grow_cache's frames as "
           f"{[(x['name'], x['sys']) for x in rows]}")
    traces = symlib.parse_traces(symlib.pprof(
        args.go, ["-traces", "-sample_index=alloc_space", out], "sym_rust"))
    after = ADD_ROW_NAME[args.mangling]
    good = [b for b in traces if (gname, False) in b and b[0][1]
            and b.index((gname, False)) + 1 < len(b)
            and b[b.index((gname, False)) + 1] == (after, False)]
    expect(good, f"go tool pprof -traces has no stack with inlined frames above "
                 f"{gname}, then {after}; stacks through it: "
                 f"{[b for b in traces if any(n == gname for n, _ in b)][:2]}")


def main():
    return symlib.cli(
        __doc__, ("lib", "binary", "source", "go"), body, lambda args: f"sym_rust[{args.mangling}]",
        lambda ap: ap.add_argument("--mangling", required=True,
                                   choices=("v0", "legacy")))


if __name__ == "__main__":
    sys.exit(main())
