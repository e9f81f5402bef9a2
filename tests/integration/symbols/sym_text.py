#!/usr/bin/python3
"""Inlined frames in Go's text heap format (issue 13): /debug/pprof/heap
?debug=1 from tests/programs/sym_inline under heapprof, served over HTTP.

  sym_text.py --lib LIBHEAPPROF --binary SYM_INLINE --source sym_inline.c --go GO

sym_inline --wait makes its 100 nodes (an allocation inside two inlined
static inline helpers, see sym_inline.py), says "ready" and waits for the
end of its stdin; heapprof serves on HEAPPROF_HTTP=127.0.0.1:0 and says
its port on stderr.

Checked:
  - the debug=1 text lists, like Go, one "#\\t0x<pc>\\t<name>[+0x<off>]\\t
    <file>:<line>" row per frame including each inlined one: the nodes'
    record (100: 4000) has rows grow, make_node, build with one and the
    same pc, at LINE:grow, LINE:make_node, LINE:build of sym_inline.c,
    then main at another pc (offsets are not checked);
  - the same moment's /debug/pprof/heap, decoded: the record's leaf
    Location has the Lines grow, make_node, build; `go tool pprof -traces`
    of it shows grow (inline), make_node (inline), build, main.
"""

import http.client
import os
import re
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import symlib  # noqa: E402
from symlib import expect, fail  # noqa: E402

CHAIN = ["grow", "make_node", "build"]
COUNT, SIZE = 100, 40
ROW = re.compile(r"^#\t0x([0-9a-f]+)\t(.+?)(?:\+0x[0-9a-f]+)?(?:\t(.*):(\d+))?$")


class Target:
    def __init__(self, args, work):
        env = symlib.clean_env({"LD_PRELOAD": args.lib, "HEAPPROF_RATE": "1",
                                "HEAPPROF_HTTP": "127.0.0.1:0", "HEAPPROF_SIGNAL": "none",
                                "HEAPPROF_OUT": os.path.join(work, "exit.%p.pb.gz")})
        self.proc = subprocess.Popen([args.binary, "--wait"], env=env, cwd=work,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.lines, self.port = [], None
        self.up = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        ready = self.proc.stdout.readline()
        if ready != b"ready\n":
            self.kill()
            raise symlib.Fatal(f"sym_inline --wait said {ready!r}, not ready")
        if not self.up.wait(20):
            self.kill()
            raise symlib.Fatal("heapprof did not say its serving line; stderr: "
                               + " | ".join(self.lines))

    def _read(self):
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.lines.append(line)
            m = re.fullmatch(r"heapprof: serving http://127\.0\.0\.1:(\d+)/debug/pprof/", line)
            if m and self.port is None:
                self.port = int(m.group(1))
                self.up.set()

    def get(self, path):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            c.request("GET", path)
            r = c.getresponse()
            body = r.read()
        finally:
            c.close()
        if r.status != 200:
            raise symlib.Fatal(f"GET {path}: {r.status} {body[:200]!r}")
        return body

    def finish(self):
        self.proc.stdin.close()
        try:
            rc = self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.kill()
            return fail("sym_inline did not exit within 30 s of the end of its input")
        expect(rc == 0, f"sym_inline exited {rc}")

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def records(text):
    """[(header, [(pc, name, file, line)])] of a debug=1 heap text."""
    out = []
    for line in text.splitlines():
        if re.match(r"^\d+: \d+ \[\d+: \d+\] @", line):
            out.append((line, []))
        elif line.startswith("#\t") and out:
            m = ROW.match(line)
            if m:
                out[-1][1].append((int(m.group(1), 16), m.group(2), m.group(3),
                                   int(m.group(4) or 0)))
            else:
                out[-1][1].append((None, line, None, None))
    return out


def body(args, work):
    marks = symlib.markers(args.source)
    src = os.path.abspath(args.source)
    t = Target(args, work)
    try:
        text = t.get("/debug/pprof/heap?debug=1").decode("utf-8", "replace")
        proto = t.get("/debug/pprof/heap")
    finally:
        t.finish()
    with open(os.path.join(work, "heap.txt"), "w") as f:
        f.write(text)
    path = os.path.join(work, "heap.pb.gz")
    with open(path, "wb") as f:
        f.write(proto)

    # -- the text ----------------------------------------------------------
    recs = [(h, rows) for h, rows in records(text)
            if h.startswith(f"{COUNT}: {COUNT * SIZE} [")]
    if len(recs) != 1:
        fail(f"{len(recs)} records '{COUNT}: {COUNT * SIZE} [...' in the debug=1 text, "
             f"expected 1:\n{text[:3000]}")
    for header, rows in recs[:1]:
        names = [r[1] for r in rows]
        if names[:4] != CHAIN + ["main"]:
            fail(f"the nodes' record lists frames {names}, expected {CHAIN + ['main']} first "
                 f"(the inlined frames each on their own row):\n{header}\n"
                 + "\n".join(f"  {hex(r[0]) if r[0] is not None else '?'} {r[1]} "
                             f"{r[2]}:{r[3]}" for r in rows))
            continue
        pcs = [r[0] for r in rows[:4]]
        expect(pcs[0] == pcs[1] == pcs[2] and pcs[3] != pcs[0],
               f"the inlined rows grow, make_node, build must share one pc and main have "
               f"another: {[hex(p) if p else p for p in pcs]}")
        for pc, name, file, line in rows[:3]:
            expect(file == src and line == marks[("LINE", name)],
                   f"debug=1 row {name}: {file}:{line}, expected {src}:{marks[('LINE', name)]}")

    # -- the profile of the same moment --------------------------------
    prof = symlib.Profile(path)
    samples = prof.samples_of_size(SIZE)
    leaf = prof.lines(prof.stack(samples[0])[0]) if len(samples) == 1 else []
    expect([x["name"] for x in leaf] == CHAIN,
           f"/debug/pprof/heap: the nodes' leaf Location has Lines "
           f"{[x['name'] for x in leaf]}, expected {CHAIN}")
    traces = symlib.parse_traces(symlib.pprof(args.go, ["-traces", path], "sym_text"))
    want = [("grow", True), ("make_node", True), ("build", False), ("main", False)]
    expect(any(b[:4] == want for b in traces),
           f"go tool pprof -traces of /debug/pprof/heap has no stack starting {want}: "
           f"{[b for b in traces if any(n == 'build' for n, _ in b)]}")


def main():
    return symlib.cli(__doc__, ("lib", "binary", "source", "go"), body, "sym_text")


if __name__ == "__main__":
    sys.exit(main())
