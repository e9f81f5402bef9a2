#!/usr/bin/python3
"""Labels over HTTP (issue 14): every profile heapprof serves carries the
labels of the allocations it counts.

  lab_http.py --lib LIBHEAPPROF --go GO --binary LAB_TENANTS

lab_tenants runs at HEAPPROF_RATE=1 with HEAPPROF_HTTP=127.0.0.1:0 and
makes, from one call site and all of one size (so that only the
labels tell them apart: a bucket that ignored them would merge them):
  {endpoint=get, tenant=a}  100 x 1000 B, kept
  {tenant=b}                 40 x 1000 B, freed
  {tenant=q"x\\y}            10 x 1000 B, kept (a value Go's %q escapes)
  no labels                   5 x 1000 B, kept

Checked, each profile decoded (pprofpb) and read by `go tool pprof -raw`,
which must agree with the decoder set by set:
  - /debug/pprof/heap and /allocs: exactly those four sets with those
    alloc and in-use counts and bytes, nothing else; each sample's labels
    are `bytes` first, then its string labels sorted by key; heap opens on
    inuse_space, allocs on alloc_space;
  - /debug/pprof/heap?debug=1: each labelled record's `@` line is followed
    by Go's `# labels: {"endpoint":"get", "tenant":"a"}` line (sorted,
    %q-quoted, ", " between pairs), then its frames; an unlabelled record
    has none; the counts per label set are the proto's; the header's
    totals are the proto's; `go tool pprof` reads the text and its
    totals (in-use objects and bytes) are the proto's;
  - /heap?seconds=2 and /allocs?seconds=2 windows during which only
    {tenant=w} allocates (30 x 1000 B): the only set with any nonzero
    value in either is {tenant=w}, exactly 30 objects / 30000 B allocated
    and in use. The allocations are placed inside the windows by their
    clock readings against the window's time_nanos - duration_nanos (a
    window that opened late is tried again, at most 3 times);
  - /debug/pprof/delta_heap twice: the first has every set's allocations
    since start; then {tenant=d} allocates 20 x 1000 B, and the second has
    alloc values for {tenant=d} alone, and the in-use of every live set.
"""

import http.client
import os
import re
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lablib  # noqa: E402
from lablib import Fatal, expect, ls, note, show  # noqa: E402

A = ls("endpoint", "get", "tenant", "a")
B = ls("tenant", "b")
Q = ls("tenant", 'q"x\\y')
W = ls("tenant", "w")
D = ls("tenant", "d")
NONE = ()
WINDOW_S = 2
SIZE = 1000


def check_default(p, want, what):
    """The sample type pprof opens on: default_sample_type, or the last
    sample type where it is not set."""
    got = p["default_sample_type"]
    name = lablib.pprofpb.string_at(p, got) if got else \
        lablib.pprofpb.string_at(p, p["sample_type"][-1][0])
    expect(name == want, f"{what}: pprof opens on {name!r}, expected {want!r}")


def check_cumulative(args, work, prog, want):
    heap = lablib.save(work, "heap.pb.gz", prog.get("/debug/pprof/heap"))
    allocs = lablib.save(work, "allocs.pb.gz", prog.get("/debug/pprof/allocs"))
    text = prog.get("/debug/pprof/heap?debug=1").decode("utf-8", "replace")
    lablib.save(work, "heap.txt", text.encode())
    for path, what, default in ((heap, "/debug/pprof/heap", "inuse_space"),
                                (allocs, "/debug/pprof/allocs", "alloc_space")):
        p = lablib.load(path)
        lablib.check_shape(p, what)
        lablib.check_sets(p, want, what)
        check_default(p, default, what)
        lablib.check_pprof_raw(args.go, path, p, what)
    check_text(args, work, text, lablib.load(heap))


def check_text(args, work, text, proto):
    what = "/debug/pprof/heap?debug=1"
    recs = lablib.text_records(text, what)
    ours = lablib.by_set(proto)
    got = lablib.text_by_set(recs)
    expect(got == ours, f"{what}: counts per label set "
                        f"{ {show(k): v for k, v in got.items()} }, the proto's "
                        f"{ {show(k): v for k, v in ours.items()} }")
    for r in recs:
        expect(r["next"].startswith("#\t0x"),
               f"{what}: record {r['counts']} {r['line'] or '(no labels line)'} is "
               f"followed by {r['next']!r}, expected its first frame row")
    wanted_lines = {lablib.go_labels_line(s) for s in ours if s}
    expect({r["line"] for r in recs if r["line"]} == wanted_lines,
           f"{what}: labels lines {sorted({r['line'] for r in recs if r['line']})}, "
           f"expected {sorted(wanted_lines)}")
    # the header: "heap profile: io: ib [ao: ab] @ heap/2"
    totals = [sum(v[k] for v in ours.values()) for k in range(4)]
    m = re.match(r"^heap profile: (\d+): (\d+) \[(\d+): (\d+)\] @ heap/\d+$",
                 text.splitlines()[0] if text else "")
    if expect(m is not None, f"{what}: first line {text[:80]!r} is not Go's heap header"):
        io, ib, ao, ab = (int(m.group(k)) for k in (1, 2, 3, 4))
        expect([ao, ab, io, ib] == totals,
               f"{what}: header totals [alloc_objects, alloc_space, inuse_objects, "
               f"inuse_space] = {[ao, ab, io, ib]}, the proto's {totals}")
    # go tool pprof reads the text (its '# labels:' lines are comments to it)
    path = lablib.save(work, "heap.txt", text.encode())
    raw = lablib.pprof(args.go, ["-raw", "-symbolize=none", path], "debug=1 text")
    names, sums = None, None
    for line in raw.splitlines():
        if names is None and re.match(r"^\s*[a-z_]+/\w+(\s+[a-z_]+/\w+)*\s*$", line):
            names = line.split()
            sums = [0] * len(names)
            continue
        m = lablib.RAW_SAMPLE.match(line)
        if m and names:
            for k, x in enumerate(m.group(1).split()):
                sums[k] += int(x)
    if not expect(names is not None, f"go tool pprof -raw of the debug=1 text has no "
                                     f"sample types line:\n{raw[:1500]}"):
        return
    proto_total = dict(zip(lablib.VALUES, totals))
    alias = {"objects/count": "inuse_objects/count", "space/bytes": "inuse_space/bytes"}
    expect(any(alias.get(n, n) == "inuse_space/bytes" for n in names),
           f"go tool pprof reads the debug=1 text as {names}: no in-use bytes")
    for n, total in zip(names, sums):
        want = proto_total.get(alias.get(n, n))
        expect(want is not None and total == want,
               f"go tool pprof reads the debug=1 text's {n} total as {total}, the proto's "
               f"is {want}")


def get_async(prog, path, out):
    """Sends GET path now (connected and sent when this returns); its
    answer is read by a thread, into out["body"] (or out["error"])."""
    c = http.client.HTTPConnection("127.0.0.1", prog.port, timeout=lablib.ANSWER_S)
    c.request("GET", path)

    def run():
        try:
            r = c.getresponse()
            body = r.read()
            if r.status == 200:
                out["body"] = body
            else:
                out["error"] = f"{r.status} {body[:200]!r}"
        except OSError as e:
            out["error"] = f"{type(e).__name__}: {e}"
        finally:
            c.close()
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def check_windows(args, work, prog):
    """Opens a heap and an allocs window, lets {tenant=w} allocate in them,
    and checks that w alone has values there."""
    for attempt in range(1, 4):
        answers = {"heap": {}, "allocs": {}}
        threads = [get_async(prog, f"/debug/pprof/{k}?seconds={WINDOW_S}", answers[k])
                   for k in answers]
        # heapprof's one server thread reads the windows' requests (sent on
        # connections it has accepted) before it accepts this one: once
        # answered, both windows are open
        prog.get("/debug/pprof/heap")
        t0, t1 = prog.alloc(4, 30, SIZE, W)
        for t in threads:
            t.join(lablib.ANSWER_S)
        placed = True
        for kind, a in answers.items():
            if "body" not in a:
                raise Fatal(f"/debug/pprof/{kind}?seconds={WINDOW_S}: "
                            f"{a.get('error', 'no answer')}")
            path = lablib.save(work, f"{kind}-window-{attempt}.pb.gz", a["body"])
            p = lablib.load(path)
            opened = p["time_nanos"] - p["duration_nanos"]
            if not (opened < t0 and t1 < opened + WINDOW_S * 10**9 - 10**8):
                note(f"attempt {attempt}: {kind} window opened at {opened}, the "
                     f"allocations ran {t0}..{t1}: not inside it, again")
                placed = False
            a["path"], a["p"] = path, p
        if placed:
            break
        prog.free(4)
    else:
        raise Fatal("three ?seconds= windows in a row opened after the allocations "
                    "meant to fall inside them")
    for kind, a in answers.items():
        what = f"/debug/pprof/{kind}?seconds={WINDOW_S}"
        lablib.check_shape(a["p"], what)
        lablib.check_sets(a["p"], {W: [30, 30000, 30, 30000]}, what)
        expect(a["p"]["duration_nanos"] >= WINDOW_S * 10**9,
               f"{what}: duration_nanos {a['p']['duration_nanos']}")
        lablib.check_pprof_raw(args.go, a["path"], a["p"], what)


def check_delta_heap(args, work, prog, since_start, live):
    first = lablib.save(work, "delta_heap-1.pb.gz", prog.get("/debug/pprof/delta_heap"))
    p = lablib.load(first)
    lablib.check_shape(p, "first delta_heap")
    got = lablib.by_set(p)
    allocs = {k: v[:2] for k, v in got.items() if any(v[:2])}
    expect(allocs == since_start,
           f"first delta_heap: alloc [objects, bytes] per set "
           f"{ {show(k): v for k, v in allocs.items()} }, expected everything "
           f"since start { {show(k): v for k, v in since_start.items()} }")
    prog.alloc(5, 20, SIZE, D)
    second = lablib.save(work, "delta_heap-2.pb.gz", prog.get("/debug/pprof/delta_heap"))
    p = lablib.load(second)
    lablib.check_shape(p, "second delta_heap")
    want = {k: [0, 0] + v for k, v in live.items()}
    want[D] = [20, 20000, 20, 20000]
    lablib.check_sets(p, want, "second delta_heap (alloc since the first, in use now)")
    lablib.check_pprof_raw(args.go, second, p, "second delta_heap")


def body(args, work):
    prog = lablib.Program(args, work, http=True)
    try:
        prog.alloc(0, 100, SIZE, A)
        prog.alloc(1, 40, SIZE, B)
        prog.free(1)
        prog.alloc(2, 10, SIZE, Q)
        prog.alloc(3, 5, SIZE, NONE)
        check_cumulative(args, work, prog, {
            A: [100, 100000, 100, 100000], B: [40, 40000, 0, 0],
            Q: [10, 10000, 10, 10000], NONE: [5, 5000, 5, 5000]})
        check_windows(args, work, prog)
        w = lablib.by_set(lablib.load(lablib.save(work, "heap-after-windows.pb.gz",
                                                   prog.get("/debug/pprof/heap"))))
        if W not in w:
            raise Fatal(f"{show(W)} is not in /debug/pprof/heap after the windows")
        check_delta_heap(args, work, prog,
                         since_start={A: [100, 100000], B: [40, 40000], Q: [10, 10000],
                                      NONE: [5, 5000], W: w[W][:2]},
                         live={A: [100, 100000], Q: [10, 10000], NONE: [5, 5000],
                               W: w[W][2:]})
        prog.finish()
    finally:
        prog.kill()


def main():
    return lablib.cli(__doc__, body, "lab_http")


if __name__ == "__main__":
    sys.exit(main())
