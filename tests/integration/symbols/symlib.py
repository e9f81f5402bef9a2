"""symlib — what the symbol tests (tests/integration/symbols/*.py, issue 13)
share: running a program under heapprof, reading its profile both as
stored (tests/integration/pprofpb.py) and through the real `go tool pprof`,
the source markers, and the references the profile is compared with
(addr2line -i, readelf -n, and `go tool pprof`'s own demangler).

Every check records its violation with fail() and goes on, so that one run
lists everything that is wrong; finish() prints them and gives the exit
status (0 PASS, 1 FAIL). A missing prerequisite (tool, file, a program
that does not run) raises Fatal: it fails loudly, never skips.
"""

import argparse
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import pprofpb  # noqa: E402

HANG_S = 240          # the whole test; CTest's timeout is above it
RUN_TIMEOUT_S = 60    # one program run, one pprof or addr2line (hang detector)
FAILURES = []


class Fatal(Exception):
    """A failure after which the test cannot go on."""


def fail(msg):
    if msg not in FAILURES:  # the same violation seen twice is said once
        FAILURES.append(msg)


def expect(cond, msg):
    if not cond:
        fail(msg)
    return cond


def note(msg):
    print(f"  {msg}", flush=True)


def main(name, body):
    """Runs body(work) with a fresh work directory (removed afterwards, kept
    on failure for a look), a hang detector, and the PASS/FAIL verdict."""
    work = tempfile.mkdtemp(prefix=f"{name}.")

    def hang(signum, frame):
        raise Fatal(f"the test did not end within {HANG_S} s")

    signal.signal(signal.SIGALRM, hang)
    signal.alarm(HANG_S)
    print(f"{name}: start", flush=True)
    try:
        body(work)
    except Fatal as e:
        fail(f"FATAL: {e}")
    finally:
        signal.alarm(0)
    if FAILURES:
        print(f"{name}: FAIL: {len(FAILURES)} violations (files kept in {work}):")
        for f in FAILURES:
            print("  - " + f.replace("\n", "\n    "))
        return 1
    shutil.rmtree(work, ignore_errors=True)
    print(f"{name}: PASS")
    return 0


def need_file(what, path):
    if not path or not os.access(path, os.R_OK):
        raise Fatal(f"{what} {path!r} not found")
    return os.path.abspath(path)


def cli(doc, files, body, name, extra=None):
    """A test's command line and run: --FILE for each of `files` (each must
    be readable), the options extra(parser) adds, then body(args, work)
    under main(). `name` is the test's name, or a function of the parsed
    arguments giving it."""
    ap = argparse.ArgumentParser(description=doc.split("\n", 1)[0])
    for opt in files:
        ap.add_argument(f"--{opt}", required=True)
    if extra is not None:
        extra(ap)
    args = ap.parse_args()

    def run(work):
        for what in files:
            setattr(args, what, need_file(f"--{what}", getattr(args, what)))
        body(args, work)

    return main(name(args) if callable(name) else name, run)


# ---------------------------------------------------------------------------
# running programs
# ---------------------------------------------------------------------------

def clean_env(extra):
    """The environment without LD_PRELOAD or HEAPPROF_*, plus `extra`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("HEAPPROF_") and k != "LD_PRELOAD"}
    env.update(extra)
    return env


def run(argv, what, env=None, ok=(0,)):
    """Runs argv; Fatal if it cannot, hangs, or exits with a status not in
    ok. Returns the CompletedProcess (text)."""
    try:
        r = subprocess.run(argv, env=env, capture_output=True, text=True,
                           timeout=RUN_TIMEOUT_S)
    except FileNotFoundError as e:
        raise Fatal(f"{what}: {e}")
    except subprocess.TimeoutExpired:
        raise Fatal(f"{what} did not end within {RUN_TIMEOUT_S} s: {argv}")
    if r.returncode not in ok:
        raise Fatal(f"{what} exited {r.returncode}: {argv}\nstdout: {r.stdout[-1500:]}"
                    f"\nstderr: {r.stderr[-1500:]}")
    return r


def profiled(lib, argv, out, demangle=None, what=None):
    """Runs argv under heapprof at rate 1 with HEAPPROF_OUT=out (the exit
    profile) and HEAPPROF_DEMANGLE=demangle unless None; returns the
    CompletedProcess once the profile exists. heapprof must stay quiet on
    stderr."""
    extra = {"LD_PRELOAD": lib, "HEAPPROF_RATE": "1", "HEAPPROF_OUT": out,
             "HEAPPROF_SIGNAL": "none"}
    if demangle is not None:
        extra["HEAPPROF_DEMANGLE"] = demangle
    what = what or os.path.basename(argv[0])
    r = run(argv, what, env=clean_env(extra))
    if not os.path.exists(out):
        raise Fatal(f"{what} wrote no profile at {out} (HEAPPROF_OUT); stderr: {r.stderr}")
    said = [x for x in r.stderr.splitlines() if x.startswith("heapprof")]
    expect(not said, f"heapprof said on stderr of {what}: {said[:5]}")
    return r


# ---------------------------------------------------------------------------
# source markers: LINE:x is the line of the allocating call inside x,
# DECL:x the line that declares x
# ---------------------------------------------------------------------------

def markers(source):
    out = {}
    with open(source) as f:
        for n, text in enumerate(f, 1):
            for kind, name in re.findall(r"\b(LINE|DECL):(\S+?)(?:\s|\*/|$)", text):
                if (kind, name) in out:
                    raise Fatal(f"{source}: marker {kind}:{name} twice")
                out[(kind, name)] = n
    return out


# ---------------------------------------------------------------------------
# the profile as stored
# ---------------------------------------------------------------------------

class Profile:
    """A decoded profile with lookups by id and the strings resolved."""

    def __init__(self, path):
        self.path = path
        try:
            self.p = pprofpb.load(path)
        except (OSError, EOFError, pprofpb.DecodeError) as e:
            raise Fatal(f"cannot decode {path}: {type(e).__name__}: {e}")
        self.s = lambda i: pprofpb.string_at(self.p, i)
        self.funcs = {f["id"]: f for f in self.p["function"]}
        self.locs = {x["id"]: x for x in self.p["location"]}
        self.maps = {m["id"]: m for m in self.p["mapping"]}
        self.vidx = pprofpb.value_index(self.p)

    # -- names ----------------------------------------------------------
    def fname(self, fid):
        f = self.funcs.get(fid)
        return self.s(f["name"]) if f else None

    def fsys(self, fid):
        f = self.funcs.get(fid)
        return self.s(f["system_name"]) if f else None

    def lines(self, loc):
        """[{name, system_name, filename, start_line, line}] of a Location,
        innermost first, as stored."""
        out = []
        for ln in loc["line"]:
            f = self.funcs.get(ln["function_id"])
            if f is None:
                out.append({"name": None, "system_name": None, "filename": None,
                            "start_line": None, "line": ln["line"],
                            "function_id": ln["function_id"]})
                continue
            out.append({"name": self.s(f["name"]), "system_name": self.s(f["system_name"]),
                        "filename": self.s(f["filename"]), "start_line": f["start_line"],
                        "line": ln["line"], "function_id": f["id"]})
        return out

    def mapping_of(self, loc):
        return self.maps.get(loc["mapping_id"])

    def mapping_named(self, path):
        return [m for m in self.p["mapping"] if self.s(m["filename"]) == path]

    # -- samples ----------------------------------------------------------
    def label(self, sample, key):
        for lab in sample["label"]:
            if self.s(lab["key"]) == key:
                return lab["num"]
        return None

    def value(self, sample, name):
        return sample["value"][self.vidx[name]]

    def stack(self, sample):
        """The sample's Locations, leaf first."""
        return [self.locs.get(i) for i in sample["location_id"]]

    def frames(self, sample):
        """Every frame of a sample, leaf first, inlined ones expanded."""
        out = []
        for loc in self.stack(sample):
            if loc is not None:
                out += self.lines(loc)
        return out

    def samples_of_size(self, size):
        return [s for s in self.p["sample"] if self.label(s, "bytes") == size]

    def describe(self, loc):
        if loc is None:
            return "<no location>"
        lines = self.lines(loc)
        inner = "; ".join(f"{x['name']} {x['filename']}:{x['line']} s={x['start_line']}"
                          for x in lines) or "no lines"
        m = self.mapping_of(loc)
        mname = self.s(m["filename"]) if m else "no mapping"
        return f"{loc['address']:#x} [{inner}] ({mname})"

    def describe_stack(self, sample):
        return "\n".join("   " + self.describe(loc) for loc in self.stack(sample))


def check_mapping_flags(prof, m, what):
    """A mapping whose names, files, lines and inlined calls heapprof
    resolved says so in all four flags."""
    for flag in ("has_functions", "has_filenames", "has_line_numbers", "has_inline_frames"):
        expect(m[flag] == 1, f"{what}: mapping {prof.s(m['filename'])!r} has {flag} = "
                             f"{m[flag]}, expected true")


def check_line(got, what, name=None, system_name=None, filename=None, line=None,
               start_line=None):
    """One stored Line (from Profile.lines) against what it must say."""
    for key, want in (("name", name), ("system_name", system_name),
                      ("filename", filename), ("line", line), ("start_line", start_line)):
        if want is not None and got.get(key) != want:
            fail(f"{what}: {key} is {got.get(key)!r}, expected {want!r}")


# ---------------------------------------------------------------------------
# go tool pprof
# ---------------------------------------------------------------------------

def pprof(go, args, what):
    r = run([go, "tool", "pprof"] + args, f"go tool pprof {' '.join(args[:-1])} ({what})")
    return r.stdout


RAW_LOC = re.compile(r"^\s*(\d+): (0x[0-9a-f]+) (?:M=(\d+) )?(?:\[F\] )?(.*)$")
RAW_LINE = re.compile(r"^(?P<name>.*) (?P<file>\S*):(?P<line>-?\d+) s=(?P<start>-?\d+)"
                      r"(?:\((?P<sys>.*)\))?$")


def parse_raw(text):
    """`go tool pprof -raw`: {"locations": {id: {address, mapping,
    lines: [{name, file, line, start, sys}]}}, "samples": [{values,
    locations, bytes}]} (sys is the system name where pprof prints it,
    that is where it differs from the name)."""
    out = {"locations": {}, "samples": []}
    part, last = None, None
    for raw in text.splitlines():
        if raw.startswith("Samples:"):
            part = "samples"
            continue
        if raw.startswith("Locations"):
            part = "locations"
            continue
        if raw.startswith("Mappings"):
            part = "mappings"
            continue
        if part == "samples":
            m = re.match(r"^\s*((?:-?\d+\s+)*-?\d+): ((?:\d+ )*\d+)\s*$", raw)
            if m:
                out["samples"].append({"values": [int(x) for x in m.group(1).split()],
                                       "locations": [int(x) for x in m.group(2).split()],
                                       "bytes": None})
                continue
            m = re.match(r"^\s*bytes:\[(\d+)\]", raw)
            if m and out["samples"]:
                out["samples"][-1]["bytes"] = int(m.group(1))
        elif part == "locations":
            m = RAW_LOC.match(raw)
            cont = raw.startswith(" " * 13) and last is not None and not m
            if m:
                last = {"address": int(m.group(2), 16),
                        "mapping": int(m.group(3) or 0), "lines": []}
                out["locations"][int(m.group(1))] = last
                rest = m.group(4)
            elif cont:
                rest = raw[13:]
            else:
                continue
            lm = RAW_LINE.match(rest.rstrip()) if rest.strip() else None
            if lm:
                d = lm.groupdict()
                last["lines"].append({"name": d["name"], "file": d["file"],
                                      "line": int(d["line"]), "start": int(d["start"]),
                                      "sys": d["sys"] if d["sys"] is not None else d["name"]})
    return out


def parse_traces(text):
    """`go tool pprof -traces`: one list per sample block of (name,
    inline) frames, leaf first."""
    blocks, cur = [], None
    for raw in text.splitlines():
        if raw.startswith("-----------+"):
            if cur:
                blocks.append(cur)
            cur = []
            continue
        if cur is None:
            continue
        m = re.match(r"^(.{10})   (\S.*?)( \(inline\))?$", raw)
        if m and not re.match(r"^\s*\S+:\s", raw[:12]):
            cur.append((m.group(2), bool(m.group(3))))
    if cur:
        blocks.append(cur)
    return blocks


def stored_names(go, profile_path, mode, what):
    """system_name -> the name `go tool pprof -symbolize=demangle=MODE`
    shows, for a profile whose names are stored undemangled
    (HEAPPROF_DEMANGLE=none) and whose binaries are gone (pprof then only
    demangles, it cannot re-symbolize). MODE "" is pprof's default."""
    args = ["-raw"] + ([f"-symbolize=demangle={mode}"] if mode else []) + [profile_path]
    raw = parse_raw(pprof(go, args, what))
    out = {}
    for loc in raw["locations"].values():
        for ln in loc["lines"]:
            out[ln["sys"]] = ln["name"]
    return out


def pprof_oracle(go, lib, exe, args, work, tag):
    """How `go tool pprof` itself names every function of exe: runs a copy
    of exe under heapprof with HEAPPROF_DEMANGLE=none (names stored as the
    linker's), deletes the copy, and lets pprof demangle in each of its
    modes. Returns ({"": {...}, "templates": {...}, "full": {...}},
    Profile of that run). Checks that =none stored every name as its
    system_name."""
    d = os.path.join(work, f"oracle-{tag}")
    os.makedirs(d)
    copy = os.path.join(d, os.path.basename(exe))
    shutil.copy2(exe, copy)
    out = os.path.join(work, f"oracle-{tag}.pb.gz")
    profiled(lib, [copy] + args, out, demangle="none", what=f"{tag} (HEAPPROF_DEMANGLE=none)")
    os.unlink(copy)
    prof = Profile(out)
    for f in prof.p["function"]:
        name, sysname = prof.s(f["name"]), prof.s(f["system_name"])
        expect(name == sysname, f"HEAPPROF_DEMANGLE=none stored function {f['id']} as "
                                f"name {name!r} and system_name {sysname!r}: with none "
                                "the name is the linker's")
    modes = {m: stored_names(go, out, m, f"{tag} oracle, demangle={m or 'default'}")
             for m in ("", "templates", "full")}
    return modes, prof


# ---------------------------------------------------------------------------
# ELF and binutils references
# ---------------------------------------------------------------------------

def elf_loads(path):
    """[(p_offset, p_vaddr, p_filesz)] of an ELF64 file's PT_LOAD headers."""
    with open(path, "rb") as f:
        ident = f.read(64)
        if ident[:4] != b"\x7fELF" or ident[4] != 2 or ident[5] != 1:
            raise Fatal(f"{path} is not a little-endian ELF64 file")
        phoff, = struct.unpack_from("<Q", ident, 32)
        phentsize, phnum = struct.unpack_from("<HH", ident, 54)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    out = []
    for i in range(phnum):
        p_type, _flags, off, vaddr, _paddr, filesz = struct.unpack_from(
            "<IIQQQQ", table, i * phentsize)
        if p_type == 1:
            out.append((off, vaddr, filesz))
    return out


def file_address(prof, loc, binary):
    """The address in `binary`'s own numbering (what addr2line takes) of a
    Location: its offset in the file is address - memory_start +
    file_offset (the mapping's bias), and the PT_LOAD segment holding that
    offset turns it into a virtual address."""
    m = prof.mapping_of(loc)
    if m is None:
        raise Fatal(f"location {loc['address']:#x} has no mapping")
    off = loc["address"] - m["memory_start"] + m["file_offset"]
    for p_off, vaddr, filesz in elf_loads(binary):
        if p_off <= off < p_off + filesz:
            return off - p_off + vaddr
    raise Fatal(f"file offset {off:#x} of {loc['address']:#x} is in no PT_LOAD of {binary}")


def addr2line(binary, addr):
    """`addr2line -i -f -C`: [(function, file, line)], innermost first."""
    out = run(["addr2line", "-i", "-f", "-C", "-e", binary, f"{addr:#x}"],
              "addr2line").stdout.splitlines()
    frames = []
    for fn, where in zip(out[0::2], out[1::2]):
        where = re.sub(r" \(discriminator \d+\)$", "", where)
        file, _, line = where.rpartition(":")
        frames.append((fn, file, int(line) if line.isdigit() else 0))
    return frames


def build_id(path):
    r = run(["readelf", "-n", path], "readelf -n")
    m = re.search(r"Build ID: ([0-9a-f]+)", r.stdout)
    if not m:
        raise Fatal(f"readelf -n finds no build id in {path}")
    return m.group(1)


OPERATOR = re.compile(r"operator(?:\(\)|\[\]|->\*?|<=>|<<=?|>>=?|<=?|>=?|[^\w\s(<>]+|\s+\w[\w:]*)")


def simple_cxx(name):
    """A demangled C++ name as pprof shows it by default: without return
    type, parameters, template arguments or clone suffix
    ("void std::vector<int>::_M_realloc_insert<int>(...)" ->
    "std::vector::_M_realloc_insert"); the operator after `operator` is
    kept ("app::operator<<(app::Log&, char const*)" -> "app::operator<<"),
    and so are lambda names ("{lambda()#1}")."""
    name = re.sub(r" \[clone [^\]]*\]", "", name)
    out, depth_a, depth_p, i = [], 0, 0, 0
    while i < len(name):
        m = OPERATOR.match(name, i)
        if m and (i == 0 or not (name[i - 1].isalnum() or name[i - 1] == "_")) \
                and depth_a == 0 and depth_p == 0:
            out.append(m.group(0))
            i = m.end()
            continue
        c = name[i]
        if c == "{":  # {lambda(...)#n}: kept whole
            j = name.index("}", i) + 1
            if depth_a == 0 and depth_p == 0:
                out.append(name[i:j])
            i = j
            continue
        if c == "<" and depth_p == 0:
            depth_a += 1
        elif c == ">" and depth_p == 0 and depth_a:
            depth_a -= 1
        elif c == "(" and depth_a == 0:
            depth_p += 1
        elif c == ")" and depth_a == 0 and depth_p:
            depth_p -= 1
        elif depth_a == 0 and depth_p == 0:
            out.append(c)
        i += 1
    s = "".join(out).strip()
    s = re.sub(r"\s+(const|volatile|&&|&)$", "", s)
    # the return type: what precedes the last space outside `operator X`
    parts = re.split(r"(?<!operator) ", s)
    return parts[-1] if parts else s


def same_simple(stored, reference):
    """Whether a stored simple name is the reference's (from addr2line,
    which prints an inlined function's unqualified DW_AT_name where DWARF
    has no linkage name: "_M_invoke", "operator()")."""
    ref = simple_cxx(reference)
    return stored == ref or stored.endswith("::" + ref)


def compare_with_addr2line(prof, loc, binary, simple_of, what, name_filter=None):
    """A Location's Lines against `addr2line -i -f -C` at the same address:
    as many frames, innermost first, each with the same line, file and
    (simplified) function. simple_of(line) gives a stored Line's name as
    pprof shows it by default; name_filter(addr2line's name), if given,
    says which frames' names to compare. Returns the addr2line frames."""
    addr = file_address(prof, loc, binary)
    ref = addr2line(binary, addr)
    got = prof.lines(loc)
    if not ref or ref[0][1] == "??":
        return ref  # no DWARF here: nothing to compare
    shown = [f"{simple_of(x)} {x['filename']}:{x['line']}" for x in got]
    want = [f"{fn} {file}:{line}" for fn, file, line in ref]
    if len(got) != len(ref):
        fail(f"{what}: location {loc['address']:#x} (file address {addr:#x}) has "
             f"{len(got)} line(s), innermost first:\n  {shown}\n"
             f"addr2line -i -f -C says {len(ref)}:\n  {want}")
        return ref
    for k, (x, (fn, file, line)) in enumerate(zip(got, ref)):
        name_ok = (name_filter is not None and not name_filter(fn)) \
            or same_simple(simple_of(x) or "", fn)
        # binutils names an inlined call whose DIE it cannot name after the
        # function that holds the code ("__invoke_impl" inlined into
        # _M_invoke comes out as _M_invoke's full name; eu-addr2line and
        # llvm-symbolizer name it): no reference for that frame's name.
        if not name_ok and k < len(ref) - 1 and same_simple(simple_cxx(fn), ref[-1][0]):
            name_ok = True
        if x["line"] != line or os.path.normpath(x["filename"] or "") != os.path.normpath(file) \
                or not name_ok:
            fail(f"{what}: location {loc['address']:#x} line {k} is {shown[k]}; "
                 f"addr2line -i -f -C says {want[k]}")
    return ref
