#!/usr/bin/python3
"""C++ names and inline frames (issue 13), for tests/programs/sym_cxx.cpp
built -O2 -g, run under heapprof at rate 1.

  sym_cxx.py --lib LIBHEAPPROF --binary SYM_CXX --source sym_cxx.cpp --go GO

HEAPPROF_DEMANGLE in this script's environment (CTest's ENVIRONMENT) is
passed to the program: unset or simple, templates, full, none.

The reference for names is `go tool pprof` itself: the program is run once
more, from a copy deleted afterwards, with HEAPPROF_DEMANGLE=none (every
name stored as the linker's), and pprof's demangler names each function
in its default, templates and full modes (it cannot re-symbolize a binary
that is gone, so it only demangles).

Checked, each as stored (decoding the protobuf) and as `go tool pprof`
shows it:
  - names: every function with a mangled (_Z) system_name is named as
    `go tool pprof -symbolize=demangle=MODE` names it (simple: pprof's
    default), or its system_name with none; C names are their own;
    literal names for our functions and the standard library's
    (std::vector::_M_realloc_insert, std::_Function_handler::_M_invoke,
    main::{lambda()#1}::operator(), std::__new_allocator::allocate...);
    system_name is the linker's (_Z..., no @VERSION); full has no
    " [clone ...]";
  - inline frames: the operator new call site in _M_realloc_insert is one
    Location whose Lines are, innermost first, __new_allocator::allocate
    ... _M_realloc_insert; every Location in the binary has the Lines
    `addr2line -i -f -C` prints at the same address (count, file, line,
    function); the vector's stack goes allocate ... _M_realloc_insert ...
    push_back ... main::{lambda()#1}::operator(), _M_invoke, run, main;
    the binary's mapping has has_inline_frames (and the other three);
  - lines and start_line: each of our functions' allocating line and its
    declaration line (source markers LINE:x, DECL:x);
  - through pprof: -raw -symbolize=none shows the same Lines as decoded;
    -traces shows the vector's stack with each inlined frame as its own
    "(inline)" frame; -top has a row for __new_allocator::allocate marked
    (inline).
"""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import symlib  # noqa: E402
from symlib import expect, fail, note  # noqa: E402

# Our functions, by system name: the marker naming their lines, and their
# name in each mode (none: the system name).
OURS = {
    "_ZN3app11make_bufferIiEEPT_m": ("make_buffer", {
        "simple": "app::make_buffer", "templates": "app::make_buffer<int>",
        "full": "int* app::make_buffer<int>(unsigned long)"}),
    "_ZN3app11make_bufferIdEEPT_m": ("make_buffer", {
        "simple": "app::make_buffer", "templates": "app::make_buffer<double>",
        "full": "double* app::make_buffer<double>(unsigned long)"}),
    "_ZN3applsERNS_3LogEPKc": ("operator<<", {
        "simple": "app::operator<<", "templates": "app::operator<<",
        "full": "app::operator<<(app::Log&, char const*)"}),
    "_ZN3app8Registry3addEl": ("Registry::add", {
        "simple": "app::Registry::add", "templates": "app::Registry::add",
        "full": "app::Registry::add(long)"}),
    "_ZL3runRKSt8functionIFlvEE": ("run", {
        "simple": "run", "templates": "run", "full": "run(std::function<long ()> const&)"}),
    "_ZZ4mainENKUlvE_clEv": ("lambda", {
        "simple": "main::{lambda()#1}::operator()",
        "templates": "main::{lambda()#1}::operator()",
        "full": "main::{lambda()#1}::operator()() const"}),
    "main": ("main", {"simple": "main", "templates": "main", "full": "main"}),
}
# The standard library's, found by their system names (gcc 12's
# libstdc++): the simple name, checked in simple mode (the other modes are
# checked against pprof's demangler), and each must be in the profile.
STD = {
    r"_ZNSt6vectorIN3app6WidgetESaIS1_EE17_M_realloc_insert": "std::vector::_M_realloc_insert",
    r"_ZNSt17_Function_handlerI.*E9_M_invokeE": "std::_Function_handler::_M_invoke",
    r"_ZNSt15__new_allocatorIN3app6WidgetEE8allocateE": "std::__new_allocator::allocate",
}
SIZES_OF = {"make_buffer<int>": [1200], "make_buffer<double>": [1600],
            "operator<<": [4, 6], "Registry::add": [32]}
WIDGET = 48
VECTOR_SIZES = [WIDGET << k for k in range(11)]  # 1000 push_backs: 1, 2, 4 ... 1024
PPROF_MODE = {"simple": "", "templates": "templates", "full": "full"}


def own_system_name(sysname):
    """The OURS key a stored system name stands for (a clone suffix such as
    .constprop.0 allowed), or None."""
    if sysname is None:
        return None
    base = re.sub(r"\.(constprop|isra|part|cold|lto_priv)\.\d+.*$", "", sysname)
    return base if base in OURS else None


class Check:
    def __init__(self, args, work):
        self.args, self.work = args, work
        env_mode = os.environ.get("HEAPPROF_DEMANGLE") or None
        self.mode = env_mode or "simple"
        if self.mode not in ("simple", "templates", "full", "none"):
            raise symlib.Fatal(f"HEAPPROF_DEMANGLE={env_mode!r} is not a mode this test knows")
        self.marks = symlib.markers(args.source)
        note(f"mode {self.mode}; reference run (HEAPPROF_DEMANGLE=none) first")
        self.oracle, _ = symlib.pprof_oracle(args.go, args.lib, args.binary, [], work, "sym_cxx")
        self.out = os.path.join(work, "sym_cxx.pb.gz")
        symlib.profiled(args.lib, [args.binary], self.out, demangle=env_mode,
                        what=f"sym_cxx (HEAPPROF_DEMANGLE={env_mode})")
        self.prof = symlib.Profile(self.out)

    # -- names -------------------------------------------------------------
    def simple_of(self, x):
        """A stored Line's function as pprof shows it by default."""
        if self.mode == "simple":
            return x["name"]
        sysname = x["system_name"] or ""
        if sysname in self.oracle[""]:
            return self.oracle[""][sysname]
        return symlib.simple_cxx(x["name"] or "")

    def shown(self, x):
        """A stored Line's function as `go tool pprof -traces` shows it:
        pprof demangles only a name equal to its system name."""
        if x["name"] == x["system_name"]:
            return self.oracle[""].get(x["system_name"], x["name"])
        return x["name"]

    def expected_name(self, sysname):
        if self.mode == "none":
            return sysname
        return self.oracle[PPROF_MODE[self.mode]].get(sysname)

    def names(self):
        prof, seen = self.prof, set()
        for f in prof.p["function"]:
            name, sysname = prof.s(f["name"]), prof.s(f["system_name"])
            what = f"function {f['id']} (system_name {sysname!r})"
            expect(name, f"{what} has no name")
            expect("@" not in (sysname or ""), f"{what}: system_name carries an ELF "
                                               "symbol version")
            expect("@" not in (name or ""), f"{what}: name {name!r} carries an ELF "
                                            "symbol version")
            # (where the name must come from, what it must be): the first
            # that disagrees is reported
            wants = []
            if self.mode == "none" or re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", sysname or "") \
                    and not (sysname or "").startswith("_Z"):
                wants.append((f"the system name (mode {self.mode})", sysname))
            elif (sysname or "").startswith("_Z"):
                pmode = PPROF_MODE[self.mode] or "default"
                wants.append((f"go tool pprof -symbolize=demangle={pmode} (of the reference "
                              "run's name)", self.expected_name(sysname)))
            own = own_system_name(sysname)
            if own:
                seen.add(own)
                wants.append(("this test's table", sysname if self.mode == "none"
                              else OURS[own][1][self.mode]))
            for pattern, simple in STD.items():
                if re.match(pattern, sysname or ""):
                    seen.add(pattern)
                    if self.mode == "simple":
                        wants.append(("this test's table", simple))
            for source, want in wants:
                if want is None:
                    fail(f"{what} is not in the reference run's profile")
                    break
                if name != want:
                    fail(f"{what}: name {name!r}, expected {want!r} ({source})")
                    break
            if self.mode == "full":
                expect(" [clone" not in (name or ""), f"{what}: name {name!r} keeps the "
                                                      "clone suffix")
        for key in list(OURS) + list(STD):
            expect(key in seen, f"no function's system name is (or matches) {key!r}; "
                                "system names in the profile: "
                                f"{sorted(prof.s(f['system_name']) for f in prof.p['function'])}")

    # -- sites: lines and start lines ------------------------------------
    def leaf_line_of(self, sample, own):
        """The Line of the leaf Location that belongs to OURS[own]."""
        loc = self.prof.stack(sample)[0]
        for x in self.prof.lines(loc) if loc else []:
            if own_system_name(x["system_name"]) == own:
                return x
        return None

    def sites(self):
        prof, src = self.prof, os.path.abspath(self.args.source)
        for key, sizes in SIZES_OF.items():
            own = {"make_buffer<int>": "_ZN3app11make_bufferIiEEPT_m",
                   "make_buffer<double>": "_ZN3app11make_bufferIdEEPT_m",
                   "operator<<": "_ZN3applsERNS_3LogEPKc",
                   "Registry::add": "_ZN3app8Registry3addEl"}[key]
            marker = OURS[own][0]
            samples = [s for n in sizes for s in prof.samples_of_size(n)
                       if self.leaf_line_of(s, own) is not None]
            if not samples:
                fail(f"no sample of {sizes} bytes has {key} in its leaf location; samples "
                     f"of that size:\n" + "\n".join(prof.describe_stack(s) for n in sizes
                                                    for s in prof.samples_of_size(n)))
                continue
            for s in samples:
                symlib.check_line(self.leaf_line_of(s, own), f"{key}'s allocation",
                                  filename=src, line=self.marks[("LINE", marker)],
                                  start_line=self.marks[("DECL", marker)])

    # -- the vector's stack ------------------------------------------------
    def vector_samples(self):
        out = []
        for n in VECTOR_SIZES:
            for s in self.prof.samples_of_size(n):
                loc = self.prof.stack(s)[0]
                lines = self.prof.lines(loc) if loc else []
                if lines and "_M_realloc_insert" in (lines[-1]["system_name"] or ""):
                    out.append(s)
        return out

    def vector(self):
        prof, src = self.prof, os.path.abspath(self.args.source)
        samples = self.vector_samples()
        if len(samples) != len(VECTOR_SIZES):
            fail(f"{len(samples)} samples of the vector's growth whose leaf location ends "
                 f"in _M_realloc_insert, expected {len(VECTOR_SIZES)} (sizes "
                 f"{VECTOR_SIZES}); samples of {WIDGET} bytes:\n"
                 + "\n".join(prof.describe_stack(s) for s in prof.samples_of_size(WIDGET)))
            if not samples:
                return None
        s = samples[0]
        leaf = prof.lines(prof.stack(s)[0])
        simple = [self.simple_of(x) for x in leaf]
        expect(len(leaf) >= 2 and simple[0] == "std::__new_allocator::allocate",
               f"the operator new call site in _M_realloc_insert: Lines {simple}, expected "
               "std::__new_allocator::allocate (inlined) first and _M_realloc_insert last")
        frames = prof.frames(s)
        names = [self.simple_of(x) for x in frames]
        want = ["std::__new_allocator::allocate", "std::vector::_M_realloc_insert",
                "std::vector::push_back", "main::{lambda()#1}::operator()",
                "std::_Function_handler::_M_invoke", "run", "main"]
        it = iter(names)
        missing = [w for w in want if w not in it]
        expect(not missing, f"the vector's stack lacks {missing} (in this order: {want}); "
                            f"its frames: {names}")
        # gcc's DWARF gives a lambda's operator() no declaration line (only
        # its closure type has one): its start_line is not checked.
        for name, marker, start in (("main::{lambda()#1}::operator()", "lambda", False),
                                    ("run", "run", True), ("main", "main", True)):
            for x in frames:
                if self.simple_of(x) == name:
                    symlib.check_line(x, f"the vector's stack, frame {name}", filename=src,
                                      line=self.marks[("LINE", marker)],
                                      start_line=self.marks[("DECL", marker)] if start
                                      else None)
                    break
        return s

    # -- every location against addr2line -------------------------------
    def addr2line(self):
        prof, binary = self.prof, os.path.abspath(self.args.binary)
        maps = prof.mapping_named(binary)
        if len(maps) != 1:
            fail(f"{len(maps)} mappings name {binary}; mappings: "
                 f"{[prof.s(m['filename']) for m in prof.p['mapping']]}")
            return
        symlib.check_mapping_flags(prof, maps[0], "sym_cxx")
        compared = 0
        for loc in prof.p["location"]:
            if loc["mapping_id"] == maps[0]["id"]:
                symlib.compare_with_addr2line(prof, loc, binary, self.simple_of,
                                              "sym_cxx vs addr2line")
                compared += 1
        expect(compared >= 10, f"only {compared} locations in the binary's mapping")

    # -- through go tool pprof -------------------------------------------
    def pprof(self, vector_sample):
        prof, go = self.prof, self.args.go
        raw = symlib.parse_raw(symlib.pprof(go, ["-raw", "-symbolize=none", self.out],
                                            "sym_cxx"))
        for loc in prof.p["location"]:
            theirs = raw["locations"].get(loc["id"])
            ours = [{"name": x["name"], "file": x["filename"], "line": x["line"],
                     "start": x["start_line"], "sys": x["system_name"]}
                    for x in prof.lines(loc)]
            if theirs is None or theirs["lines"] != ours:
                fail(f"go tool pprof -raw -symbolize=none shows location {loc['id']} as "
                     f"{theirs}; decoded: {ours}")
        if vector_sample is None:
            return
        traces = symlib.parse_traces(symlib.pprof(
            go, ["-traces", "-sample_index=alloc_space", self.out], "sym_cxx"))
        want = []
        for loc in prof.stack(vector_sample):
            lines = prof.lines(loc)
            want += [(self.shown(x), i < len(lines) - 1) for i, x in enumerate(lines)]
        if want not in traces:
            close = [b for b in traces if b and b[-1] == want[-1] and
                     any("_M_realloc_insert" in n for n, _ in b)]
            fail(f"go tool pprof -traces has no block for the vector's stack\n  expected "
                 f"{want}\n  blocks through _M_realloc_insert: {close[:2]}")
        alloc = self.shown(prof.lines(prof.stack(vector_sample)[0])[0])
        inlined = [b for b in traces if b and b[0] == (alloc, True)]
        if self.mode in ("simple", "none"):
            expect(alloc == "std::__new_allocator::allocate",
                   f"-traces names the vector's leaf {alloc!r}, expected "
                   "std::__new_allocator::allocate (inline)")
        expect(inlined, f"go tool pprof -traces shows no stack whose leaf is {alloc!r} "
                        "(inline)")
        top = symlib.pprof(go, ["-top", "-nodecount=1000", "-sample_index=alloc_objects",
                                self.out], "sym_cxx")
        expect(re.search(r"\s" + re.escape(alloc) + r" \((partial-)?inline\)$", top, re.M),
               f"go tool pprof -top has no row '{alloc} (inline)':\n{top[-3000:]}")

    def run(self):
        self.names()
        self.sites()
        s = self.vector()
        self.addr2line()
        self.pprof(s)


def main():
    mode = os.environ.get("HEAPPROF_DEMANGLE") or "default"
    return symlib.cli(__doc__, ("lib", "binary", "source", "go"),
                      lambda args, work: Check(args, work).run(),
                      f"sym_cxx[{mode}]")


if __name__ == "__main__":
    sys.exit(main())
