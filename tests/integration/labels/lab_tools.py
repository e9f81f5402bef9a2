#!/usr/bin/python3
"""`go tool pprof`'s label tools on a labelled heap profile (issue 14):
-tags, -tagfocus, -tagignore, -tagroot give each tenant's exact bytes.

  lab_tools.py --lib LIBHEAPPROF --go GO --binary LAB_TENANTS

lab_tenants runs at HEAPPROF_RATE=1 and allocates blocks of 1000 B from
one call site (so that neither stack nor size tells the tenants apart),
then writes its exit profile:
  {tenant=t1}                 40 blocks, 10 of them freed
  {tenant=t2}                 40 blocks
  {tenant=42}                 21 blocks (a value that looks numeric)
  {endpoint=get, tenant=t3}    5 blocks
  no labels                    2 blocks
In use: t1 30000, t2 40000, 42 21000, t3 5000, unlabelled 2000 (98000 B).

Checked (-unit=B, so that pprof prints exact bytes):
  - -tags -sample_index=inuse_space: a `tenant:` block whose Total is the
    labelled bytes (96000: pprof leaves unlabelled samples out of a
    key's block) with one line per tenant, its bytes and its percentage
    of that Total as pprof formats it; an `endpoint:` block with get
    alone; with -sample_index=alloc_space, t1's line has its 40000 B;
  - -top -tagfocus=tenant=t1 -sample_index=inuse_space: "Showing nodes
    accounting for 30000B … of 98000B total"; -tagignore=tenant=t1: the
    other 68000B;
  - -tagroot=tenant -traces: every tenant's samples have a root
    pseudo-frame named by the tenant (pprof 1.19 names the frame by the
    value; -raw shows its file is the key, "t1 tenant:0"), their values
    summing to the tenant's bytes; -top -tagroot=tenant gives each such
    frame the tenant's bytes, cumulatively;
  - the numeric gotcha the README documents: -tagfocus=tenant=42 matches
    nothing (pprof takes 42 as a range over numeric labels, and says so
    on stderr), -tagfocus=tenant=^42$ matches the 21000 B of tenant 42.
"""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lablib  # noqa: E402
from lablib import Fatal, expect, ls, note  # noqa: E402

INUSE = {"t1": 30000, "t2": 40000, "42": 21000, "t3": 5000}
UNLABELLED = 2000
TOTAL = sum(INUSE.values()) + UNLABELLED


def percentage(v, total):
    """pprof's measurement.Percentage."""
    if total == 0:
        return "  0%"
    if v == total:
        return "  100%"
    return f"{100 * v / total:5.2f}%"


def pprof(args, path, flags, what):
    """Runs go tool pprof; (stdout, stderr)."""
    r = lablib.symlib.run([args.go, "tool", "pprof"] + flags + [path],
                          f"go tool pprof {' '.join(flags)} ({what})")
    return r.stdout, r.stderr


def tag_blocks(text):
    """-tags: {key: (total, [(bytes, percent, value)])}, bytes as printed
    with -unit=B ("30000.0B")."""
    out, cur = {}, None
    for line in text.splitlines():
        m = re.match(r"^ (\S+): Total (\S+)$", line)
        if m:
            cur = out.setdefault(m.group(1), (m.group(2), []))
            continue
        m = re.match(r"^\s+(\S+) \((\s*[\d.]+%)\): (.*)$", line)
        if m and cur is not None:
            cur[1].append((m.group(1), m.group(2), m.group(3)))
        elif not line.strip():
            cur = None
    return out


def b(n):
    return f"{n:.1f}B"


def showing(text):
    """-top's "Showing nodes accounting for X, P% of T total": (X, T) in
    bytes (-unit=B prints "30000B", and 0 as "0")."""
    m = re.search(r"Showing nodes accounting for (\d+)B?, [\d.]+% of (\d+)B? total", text)
    return (int(m.group(1)), int(m.group(2))) if m else None


def check_tags(args, path):
    text, _ = pprof(args, path, ["-tags", "-unit=B", "-sample_index=inuse_space"], "tags")
    blocks = tag_blocks(text)
    labelled = sum(INUSE.values())
    if not expect("tenant" in blocks, f"-tags has no tenant: block:\n{text}"):
        return
    total, lines = blocks["tenant"]
    expect(total == b(labelled), f"-tags: tenant: Total {total}, expected {b(labelled)}")
    want = sorted((b(v), percentage(v, labelled).strip(), t) for t, v in INUSE.items())
    got = sorted((x, p.strip(), t) for x, p, t in lines)
    expect(got == want, f"-tags: tenant: lines {got}, expected {want}\n{text}")
    expect("endpoint" in blocks and blocks["endpoint"][0] == b(5000)
           and [(x, t) for x, _, t in blocks["endpoint"][1]] == [(b(5000), "get")],
           f"-tags: endpoint: block {blocks.get('endpoint')}, expected Total {b(5000)} "
           f"with get alone")
    text, _ = pprof(args, path, ["-tags", "-unit=B", "-sample_index=alloc_space"], "tags alloc")
    lines = tag_blocks(text).get("tenant", ("", []))[1]
    expect((b(40000), "t1") in [(x, t) for x, _, t in lines],
           f"-tags -sample_index=alloc_space: tenant: lines {lines}, expected t1 at "
           f"{b(40000)} (30 in use and 10 freed)")


def check_focus(args, path):
    base = ["-top", "-unit=B", "-sample_index=inuse_space"]
    text, _ = pprof(args, path, base + ["-tagfocus=tenant=t1"], "tagfocus t1")
    expect(showing(text) == (INUSE["t1"], TOTAL),
           f"-tagfocus=tenant=t1: {showing(text)}, expected ({INUSE['t1']}, {TOTAL}):\n{text}")
    text, _ = pprof(args, path, base + ["-tagignore=tenant=t1"], "tagignore t1")
    expect(showing(text) == (TOTAL - INUSE["t1"], TOTAL),
           f"-tagignore=tenant=t1: {showing(text)}, expected "
           f"({TOTAL - INUSE['t1']}, {TOTAL}):\n{text}")
    # the numeric gotcha
    text, err = pprof(args, path, base + ["-tagfocus=tenant=42"], "tagfocus 42")
    expect(showing(text) == (0, TOTAL),
           f"-tagfocus=tenant=42: {showing(text)}, expected (0, {TOTAL}): pprof takes 42 "
           f"as a numeric range, which no string label matches:\n{text}")
    expect("as range" in err, f"-tagfocus=tenant=42: pprof did not say it took 42 as a "
                              f"range; stderr: {err!r}")
    text, _ = pprof(args, path, base + ["-tagfocus=tenant=^42$"], "tagfocus ^42$")
    expect(showing(text) == (INUSE["42"], TOTAL),
           f"-tagfocus=tenant=^42$: {showing(text)}, expected ({INUSE['42']}, {TOTAL}):\n"
           f"{text}")


def trace_blocks(text):
    """-traces: [(value in bytes, [frame names, leaf first])]; the label
    lines (key:  value) at a block's head are skipped."""
    out, cur = [], None
    for line in text.splitlines():
        if line.startswith("-----------+"):
            cur = None
            continue
        m = re.match(r"^\s*(\d+)B   (\S.*)$", line)
        if m and cur is None:
            cur = (int(m.group(1)), [m.group(2)])
            out.append(cur)
            continue
        m = re.match(r"^ {13}(\S.*)$", line)
        if m and cur is not None:
            cur[1].append(m.group(1))
    return out


def check_tagroot(args, path):
    text, _ = pprof(args, path, ["-traces", "-unit=B", "-sample_index=inuse_space",
                                 "-tagroot=tenant"], "tagroot traces")
    blocks = trace_blocks(text)
    if not expect(blocks, f"-tagroot=tenant -traces: no samples read:\n{text}"):
        return
    per_root = {}
    for value, frames in blocks:
        per_root[frames[-1]] = per_root.get(frames[-1], 0) + value
        expect("lab_alloc" in frames, f"-tagroot=tenant -traces: a sample without "
                                      f"lab_alloc: {frames}")
    for t, v in INUSE.items():
        expect(per_root.get(t) == v,
               f"-tagroot=tenant -traces: samples under a root frame {t!r} hold "
               f"{per_root.get(t)} B, expected {v} (roots: {per_root})")
    raw, _ = pprof(args, path, ["-raw", "-tagroot=tenant"], "tagroot raw")
    pseudo = set(re.findall(r"^\s+\d+: 0x0 (\S+) (\S+):0 s=0", raw, re.M))
    expect({(t, "tenant") for t in INUSE} <= pseudo,
           f"-tagroot=tenant -raw: pseudo-frames {sorted(pseudo)}, expected one named by "
           f"each tenant with file 'tenant'")
    top, _ = pprof(args, path, ["-top", "-cum", "-unit=B", "-sample_index=inuse_space",
                                "-tagroot=tenant"], "tagroot top")
    for t, v in INUSE.items():
        m = re.search(rf"^\s*\S+\s+\S+\s+\S+\s+(\d+)B\s+\S+\s+{re.escape(t)}$", top, re.M)
        expect(m is not None and int(m.group(1)) == v,
               f"-top -tagroot=tenant: the frame {t!r} has cum "
               f"{m.group(1) if m else None} B, expected {v}")


def body(args, work):
    out = os.path.join(work, "exit.%n.pb.gz")
    prog = lablib.Program(args, work, env={"HEAPPROF_OUT": out})
    try:
        prog.alloc(0, 30, 1000, ls("tenant", "t1"))
        prog.alloc(1, 10, 1000, ls("tenant", "t1"))
        prog.free(1)
        prog.alloc(2, 40, 1000, ls("tenant", "t2"))
        prog.alloc(3, 21, 1000, ls("tenant", "42"))
        prog.alloc(4, 5, 1000, ls("endpoint", "get", "tenant", "t3"))
        prog.alloc(5, 2, 1000)
        prog.finish()
    finally:
        prog.kill()
    path = os.path.join(work, "exit.1.pb.gz")
    if not os.path.exists(path):
        raise Fatal(f"no exit profile {path}: {sorted(os.listdir(work))}")
    p = lablib.load(path)
    lablib.check_shape(p, "the exit profile")
    # the profile is what the checks below assume (else their failures mislead)
    lablib.check_sets(p, {ls("tenant", "t1"): [40, 40000, 30, 30000],
                          ls("tenant", "t2"): [40, 40000, 40, 40000],
                          ls("tenant", "42"): [21, 21000, 21, 21000],
                          ls("endpoint", "get", "tenant", "t3"): [5, 5000, 5, 5000],
                          (): [2, 2000, 2, 2000]}, "the exit profile")
    check_tags(args, path)
    check_focus(args, path)
    check_tagroot(args, path)
    if lablib.symlib.FAILURES:
        note(f"profile kept at {path}")


def main():
    return lablib.cli(__doc__, body, "lab_tools")


if __name__ == "__main__":
    sys.exit(main())
