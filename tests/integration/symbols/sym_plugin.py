#!/usr/bin/python3
"""A plugin allocated from, then unloaded before the profile is written
(issue 13), with tests/programs/sym_plugin_host under heapprof at rate 1.

  sym_plugin.py --lib LIBHEAPPROF --host SYM_PLUGIN_HOST --plugin SYM_PLUGIN.so
                --plugin2 SYM_PLUGIN2.so --source sym_plugin.c --go GO
                --variant loaded|delete|overwrite|reuse|reload

The plugins are copied into the work directory (plug.so, plug2.so), and
pristine copies kept for readelf. The host (sym_plugin_host.c says how)
dlopens plug.so, calls plugin_alloc 5 times (5 blocks of 1111 bytes, kept),
and by variant:
  loaded     keeps it loaded (the reference: what every other variant must
             give for the plugin's samples)
  delete     dlcloses it (really unloaded: the host checks /proc/self/maps)
             and deletes plug.so
  overwrite  dlcloses it and overwrites plug.so in place with plug2.so's
             bytes: a valid library with another build id whose function
             at the same offset is plugin_again
  reuse      dlcloses it and dlopens plug2.so, which the loader puts at the
             same address (checked: the test needs it), and calls
             plugin_again 3 times (3 blocks of 2222) from the same call site
  reload     overwrites plug.so with plug2.so's bytes after the dlclose and
             dlopens plug.so again: same path, same address, new content
then exits, and heapprof writes HEAPPROF_OUT.

Checked, as stored (decoding the protobuf):
  - the 1111-byte bucket holds 5 allocations and 5555 bytes in use; its
    leaf Location's only Line is plugin_alloc, sym_plugin.c,
    LINE:plugin_alloc, start_line DECL:plugin_alloc; then call_plugin in
    the host;
  - that Location's Mapping is plug.so's path, with the original plug.so's
    build id (readelf -n), a range inside what /proc/self/maps showed
    while it was loaded and holding the address, and the four has_* flags;
  - reuse, reload: the 2222-byte bucket (3 allocations) names plugin_again
    with its own Location and a Mapping with plug2.so's build id (and its
    path: plug2.so for reuse, plug.so for reload), while the 1111-byte
    bucket still names plugin_alloc and plug.so's build id;
and through `go tool pprof`: -raw -symbolize=none shows the same Lines and
the Mapping's path and build id; -traces shows plugin_alloc, call_plugin,
load, main for the 1111-byte samples (and plugin_again for the 2222).
"""

import os
import re
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import symlib  # noqa: E402
from symlib import expect, fail, note  # noqa: E402

VARIANTS = ("loaded", "delete", "overwrite", "reuse", "reload")
FIRST = {"func": "plugin_alloc", "size": 1111, "count": 5}
SECOND = {"func": "plugin_again", "size": 2222, "count": 3}


def loads(stdout):
    """[(path, lo, hi)] from the host's "loaded PATH LO HI" lines."""
    out = []
    for line in stdout.splitlines():
        m = re.fullmatch(r"loaded (\S+) (0x[0-9a-f]+) (0x[0-9a-f]+)", line)
        if m:
            out.append((m.group(1), int(m.group(2), 16), int(m.group(3), 16)))
    return out


def check_site(prof, which, path, bid, rng, src, marks, what):
    """The bucket of `which` (FIRST or SECOND): its leaf names the plugin's
    function, and its Mapping the library it was in. Returns the leaf
    Location (or None)."""
    samples = prof.samples_of_size(which["size"])
    if len(samples) != 1:
        fail(f"{what}: {len(samples)} samples of {which['size']} bytes, expected one "
             "bucket:\n" + "\n".join(prof.describe_stack(s) for s in samples))
        if not samples:
            return None
    s = samples[0]
    n = which["count"]
    for vname, want in (("alloc_objects/count", n), ("inuse_objects/count", n),
                        ("inuse_space/bytes", n * which["size"])):
        expect(prof.value(s, vname) == want, f"{what}: the {which['size']}-byte bucket has "
                                             f"{vname} {prof.value(s, vname)}, expected {want}")
    stack = prof.stack(s)
    leaf = stack[0]
    lines = prof.lines(leaf) if leaf else []
    if [x["name"] for x in lines] != [which["func"]]:
        fail(f"{what}: the {which['size']}-byte allocation's leaf has Lines "
             f"{[x['name'] for x in lines]}, expected [{which['func']!r}]; its stack:\n"
             f"{prof.describe_stack(s)}")
    else:
        symlib.check_line(lines[0], f"{what}: {which['func']}'s Line",
                          system_name=which["func"], filename=src,
                          line=marks[("LINE", "plugin_alloc")],
                          start_line=marks[("DECL", "plugin_alloc")])
    caller = prof.lines(stack[1]) if len(stack) > 1 and stack[1] else []
    expect(caller and caller[-1]["name"] == "call_plugin",
           f"{what}: the plugin's caller is {[x['name'] for x in caller]}, expected "
           "call_plugin")
    m = prof.mapping_of(leaf) if leaf else None
    if m is None:
        fail(f"{what}: the {which['func']} frame ({leaf and hex(leaf['address'])}) has no "
             "mapping")
        return leaf
    expect(prof.s(m["filename"]) == path, f"{what}: {which['func']}'s mapping is "
                                          f"{prof.s(m['filename'])!r}, expected {path!r}")
    expect(prof.s(m["build_id"]) == bid, f"{what}: {which['func']}'s mapping has build id "
                                         f"{prof.s(m['build_id'])!r}, expected {bid!r} "
                                         "(readelf -n of the library it was in)")
    lo, hi = rng
    expect(lo <= m["memory_start"] < m["memory_limit"] <= hi,
           f"{what}: {which['func']}'s mapping covers {m['memory_start']:#x}-"
           f"{m['memory_limit']:#x}, not inside {lo:#x}-{hi:#x} where it was loaded")
    expect(m["memory_start"] <= leaf["address"] < m["memory_limit"],
           f"{what}: {which['func']}'s address {leaf['address']:#x} is outside its mapping "
           f"{m['memory_start']:#x}-{m['memory_limit']:#x}")
    symlib.check_mapping_flags(prof, m, f"{what}: {which['func']}'s library")
    return leaf


def body(args, work):
    marks = symlib.markers(args.source)
    src = os.path.abspath(args.source)
    plug, plug2 = os.path.join(work, "plug.so"), os.path.join(work, "plug2.so")
    keep = os.path.join(work, "pristine")
    os.makedirs(keep)
    for frm, to in ((args.plugin, plug), (args.plugin2, plug2)):
        shutil.copy2(frm, to)
        shutil.copy2(frm, os.path.join(keep, os.path.basename(to)))
    bid1 = symlib.build_id(os.path.join(keep, "plug.so"))
    bid2 = symlib.build_id(os.path.join(keep, "plug2.so"))
    if bid1 == bid2:
        raise symlib.Fatal(f"the two plugins have the same build id {bid1}: the test "
                           "cannot tell them apart")

    out = os.path.join(work, "plugin.pb.gz")
    r = symlib.profiled(args.lib, [args.host, args.variant, plug, plug2], out,
                        what=f"sym_plugin_host {args.variant}")
    seen = loads(r.stdout)
    want_loads = 2 if args.variant in ("reuse", "reload") else 1
    if len(seen) != want_loads:
        raise symlib.Fatal(f"the host reported {len(seen)} loads, expected {want_loads}: "
                           f"{r.stdout}")
    note(f"loads: {[(p, hex(lo), hex(hi)) for p, lo, hi in seen]}")
    if args.variant == "delete":
        expect(not os.path.exists(plug), "the host did not delete plug.so")
    if args.variant in ("overwrite", "reload"):
        expect(symlib.build_id(plug) == bid2, "plug.so was not overwritten with plug2.so")
    if want_loads == 2:
        (_, lo1, hi1), (_, lo2, hi2) = seen
        if not (lo1 < hi2 and lo2 < hi1):
            raise symlib.Fatal(f"the loader put the second library at {lo2:#x}-{hi2:#x}, "
                               f"away from the first ({lo1:#x}-{hi1:#x}): this variant "
                               "tests an address reused, and none was")

    prof = symlib.Profile(out)
    what = f"variant {args.variant}"
    leaf1 = check_site(prof, FIRST, plug, bid1, seen[0][1:], src, marks, what)
    leaf2 = None
    if want_loads == 2:
        path2 = plug2 if args.variant == "reuse" else plug
        leaf2 = check_site(prof, SECOND, path2, bid2, seen[1][1:], src, marks, what)
        if leaf1 and leaf2:
            expect(leaf1["id"] != leaf2["id"], f"{what}: plugin_alloc's and plugin_again's "
                                               f"samples share location {leaf1['id']}")
            expect(leaf1["mapping_id"] != leaf2["mapping_id"],
                   f"{what}: the two libraries share mapping {leaf1['mapping_id']}")
    else:
        expect(not prof.samples_of_size(SECOND["size"]),
               f"{what}: samples of {SECOND['size']} bytes, but plugin_again never ran")

    # -- go tool pprof ------------------------------------------------------
    raw_text = symlib.pprof(args.go, ["-raw", "-symbolize=none", out], f"sym_plugin {what}")
    raw = symlib.parse_raw(raw_text)
    for which, leaf, path, bid in ((FIRST, leaf1, plug, bid1),
                                   (SECOND, leaf2, plug2 if args.variant == "reuse" else plug,
                                    bid2)):
        if leaf is None:
            continue
        theirs = raw["locations"].get(leaf["id"], {"lines": []})["lines"]
        shown = [(x["name"], os.path.basename(x["file"]), x["line"], x["start"])
                 for x in theirs]
        want = [(which["func"], "sym_plugin.c", marks[("LINE", "plugin_alloc")],
                 marks[("DECL", "plugin_alloc")])]
        expect(shown == want, f"{what}: go tool pprof -raw -symbolize=none shows the "
                              f"{which['func']} frame as {shown}, expected {want}")
        mid = raw["locations"].get(leaf["id"], {}).get("mapping")
        mline = re.search(rf"^{mid}: 0x[0-9a-f]+/0x[0-9a-f]+/0x[0-9a-f]+ (\S+) ([0-9a-f]*)",
                          raw_text.split("Mappings", 1)[-1], re.M) if mid else None
        expect(mline and mline.group(1) == path and mline.group(2) == bid,
               f"{what}: go tool pprof -raw shows the {which['func']} frame's mapping as "
               f"{mline and mline.group(0)!r}, expected {path} {bid}")
    traces = symlib.parse_traces(symlib.pprof(
        args.go, ["-traces", "-sample_index=alloc_space", out], f"sym_plugin {what}"))
    for which in (FIRST, SECOND) if want_loads == 2 else (FIRST,):
        want = [(which["func"], False), ("call_plugin", False), ("load", False),
                ("main", False)]
        expect(any(b[:4] == want for b in traces),
               f"{what}: go tool pprof -traces has no stack starting {want}; stacks "
               f"through call_plugin: "
               f"{[b for b in traces if ('call_plugin', False) in b]}")


def main():
    return symlib.cli(
        __doc__, ("lib", "host", "plugin", "plugin2", "source", "go"), body,
        lambda args: f"sym_plugin[{args.variant}]",
        lambda ap: ap.add_argument("--variant", required=True, choices=VARIANTS))


if __name__ == "__main__":
    sys.exit(main())
