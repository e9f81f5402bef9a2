#!/usr/bin/env python3
"""Two (or more) builds of heapprof compared the way bench/suite.py counts:
instructions and D1 misses per malloc/free pair inside alloc_bench's run()
under callgrind, with fixed seeds so that every build samples the same
allocations; and the allocation entry points' machine code, compared
instruction for instruction once addresses are stripped.

The same alloc_bench (this tree's build/bin/alloc_bench) runs against
every build's libheapprof.so, so that only the library differs. The rows
with labels (ALLOC_BENCH_LABELS=4) run only against builds whose library
has heapprof_label_push; the attached rows (ALLOC_BENCH_ATTACH: heapprof
loaded into the running program, issue 15) only against builds whose
library has heapprof_attach_start.

usage: bench/compare_counted.py [--seeds 1,2,3] [--keep DIR] BUILD_DIR...
  e.g. git worktree add /tmp/base 69b5cd3 && (cd /tmp/base && cmake -S . -B
       build -DCMAKE_BUILD_TYPE=Release && cmake --build build --target heapprof)
       bench/compare_counted.py /tmp/base/build build
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import suite  # noqa: E402

# The entry points whose fall-through path BENCHMARKS.md counts (the
# unsampled fast path: malloc 8 instructions, free 9), and attach mode's
# (issue 15: internal functions the patched GOT slots call, not exported).
FAST = ["malloc", "free", "attach_malloc", "attach_free"]
ATTACH = ["attach_malloc", "attach_free"]


def interposed(lib):
    """The functions the library exports that are not its own API: the
    allocator and the few libc calls it wraps."""
    out = subprocess.run(["nm", "-D", "--defined-only", lib], capture_output=True,
                         text=True, check=True).stdout
    return sorted({line.split()[-1] for line in out.splitlines()
                   if " T " in line and not line.split()[-1].startswith("heapprof_")})


def disassembly(lib):
    """{function: [instruction, …]} with addresses, encodings, PC-relative
    displacements and comments stripped, so that two builds compare by
    instructions alone."""
    text = subprocess.run(["objdump", "-d", "--no-show-raw-insn", lib],
                          capture_output=True, text=True, check=True).stdout
    funcs, name = {}, None
    for line in text.splitlines():
        m = re.match(r"^[0-9a-f]+ <(.*)>:$", line)
        if m:
            name = m.group(1)
            funcs[name] = []
            continue
        m = re.match(r"^ +[0-9a-f]+:\t(.*)$", line)
        if m and name is not None:
            insn = re.sub(r"\s*#.*$", "", m.group(1))
            insn = re.sub(r"[0-9a-f]+ <([^>+]*)(\+0x[0-9a-f]+)?>", r"<\1>", insn)
            insn = re.sub(r"-?0x[0-9a-f]+\(%rip\)", "RIP", insn)
            funcs[name].append(" ".join(insn.split()))
    return funcs


def fall_through(insns):
    """Instructions on the path that takes no conditional branch, up to and
    including the first jmp or ret: the fast path of malloc and free."""
    path = []
    for i in insns:
        path.append(i)
        if i.startswith(("jmp", "ret")):
            break
    return path


def exports(lib, name):
    out = subprocess.run(["nm", "-D", "--defined-only", lib], capture_output=True,
                         text=True, check=True).stdout
    return re.search(r"\b" + name + r"\b", out) is not None


def has_labels(lib):
    return exports(lib, "heapprof_label_push")


def rows(seeds):
    yield "plain glibc", None, {}
    yield "heapprof rate 0 (the wrapper)", "lib", {"HEAPPROF_RATE": "0"}
    for s in seeds:
        yield f"heapprof default rate, seed {s}", "lib", {"HEAPPROF_SEED": s}
    for s in seeds:
        yield f"heapprof rate 4096, seed {s}", "lib", {"HEAPPROF_RATE": "4096",
                                                       "HEAPPROF_SEED": s}
    for s in seeds:
        yield (f"heapprof default rate, 4 labels, seed {s}", "labels",
               {"HEAPPROF_SEED": s, "ALLOC_BENCH_LABELS": "4"})
    for s in seeds:
        yield (f"heapprof rate 4096, 4 labels, seed {s}", "labels",
               {"HEAPPROF_RATE": "4096", "HEAPPROF_SEED": s, "ALLOC_BENCH_LABELS": "4"})
    # Issue 15: attached in process (ALLOC_BENCH_ATTACH) instead of preloaded.
    yield "attached, rate 0 (the wrapper)", "attach", {"HEAPPROF_RATE": "0"}
    for s in seeds:
        yield f"attached, default rate, seed {s}", "attach", {"HEAPPROF_SEED": s}
    for s in seeds:
        yield (f"attached, rate 4096, seed {s}", "attach",
               {"HEAPPROF_RATE": "4096", "HEAPPROF_SEED": s})


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--pairs", type=int, default=suite.COUNTED_PAIRS)
    ap.add_argument("--keep", help="keep each callgrind output file here")
    ap.add_argument("builds", nargs="+")
    args = ap.parse_args()
    libs = [os.path.join(os.path.abspath(b), "lib", "libheapprof.so") for b in args.builds]
    bench = os.path.join(suite.BIN, "alloc_bench")
    for f in libs + [bench]:
        if not os.path.exists(f):
            sys.exit(f"compare_counted: {f} is missing: build it first")
    labelled = [has_labels(lib) for lib in libs]
    attachable = [exports(lib, "heapprof_attach_start") for lib in libs]
    # An alloc_bench older than ALLOC_BENCH_LABELS ignores it, and its
    # "4 labels" rows would silently be the unlabelled ones.
    probe = subprocess.run([bench, "1", "1", "1"], capture_output=True,
                           env=dict(os.environ, ALLOC_BENCH_LABELS="99"))
    if probe.returncode != 2:
        sys.exit(f"compare_counted: {bench} does not know ALLOC_BENCH_LABELS: "
                 f"rebuild it (cmake --build build --target alloc_bench)")
    # Likewise ALLOC_BENCH_ATTACH: the attached rows would be plain glibc's.
    probe = subprocess.run([bench, "1", "1", "1"], capture_output=True,
                           env=dict(os.environ, ALLOC_BENCH_ATTACH="/nonexistent.so"))
    if probe.returncode != 2:
        sys.exit(f"compare_counted: {bench} does not know ALLOC_BENCH_ATTACH: "
                 f"rebuild it (cmake --build build --target alloc_bench)")

    # The machine code first: it takes no time.
    code = [disassembly(lib) for lib in libs]
    print("Interposed functions, against the first build (instructions, "
          "addresses stripped):\n")
    names = interposed(libs[0])
    names += [n for n in ATTACH if n in code[0]]
    for fn in names + [n + ".cold" for n in names if n + ".cold" in code[0]]:
        verdict = ["same" if c.get(fn) == code[0][fn] else
                   "absent" if fn not in c else "DIFFERENT" for c in code[1:]]
        fast = (f", fall-through path {len(fall_through(code[0][fn]))}"
                if fn in FAST else "")
        print(f"  {fn:40} {len(code[0][fn]):3} listed{fast}: " + ", ".join(verdict))
    changed = sorted(f for f in code[0] if f in code[-1] and code[0][f] != code[-1][f]
                     and not f.endswith("@plt"))
    print("\nFunctions whose code differs between the first and the last build "
          "(PLT stubs left out):\n  " + " ".join(changed) + "\n", flush=True)

    seeds = args.seeds.split(",")
    header = "| configuration | " + " | ".join(args.builds) + " | last − first |"
    print(header + "\n|---|" + "---|" * (len(libs) + 1), flush=True)
    seen = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, kind, extra in rows(seeds):
            cells = []
            for i, lib in enumerate(libs):
                if kind is None and i > 0:  # plain runs no library: once
                    cells.append(cells[0])
                    continue
                if (kind == "labels" and not labelled[i]) or (
                        kind == "attach" and not attachable[i]):
                    cells.append(None)
                    continue
                env, _ = suite.environ_for("plain", tmp)
                env.update(extra)
                if kind == "attach":
                    env["ALLOC_BENCH_ATTACH"] = lib
                elif kind is not None:
                    env["LD_PRELOAD"] = lib
                keep = None
                if args.keep:
                    os.makedirs(args.keep, exist_ok=True)
                    tag = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-")
                    keep = os.path.join(args.keep, f"{tag}.build{i}")
                ir, d1 = suite.count_pairs(env, tmp, args.pairs, bench, keep)
                cells.append((ir, d1))
            seen[name] = cells
            shown = [f"{c[0]:.3f} (D1 {c[1]:.3f})" if c else "" for c in cells]
            d = (f"{cells[-1][0] - cells[0][0]:+.3f}" if cells[0] and cells[-1] else "")
            bare = seen.get(name.replace(", 4 labels", ""))
            if kind == "labels" and cells[-1] and bare and bare[-1]:
                d = f"{cells[-1][0] - bare[-1][0]:+.3f} vs no labels"
            preloaded = seen.get(name.replace("attached, ", "heapprof "))
            if kind == "attach" and cells[-1] and preloaded and preloaded[-1]:
                d = f"{cells[-1][0] - preloaded[-1][0]:+.3f} vs preloaded"
            print(f"| {name} | " + " | ".join(shown) + f" | {d} |", flush=True)


if __name__ == "__main__":
    main()
