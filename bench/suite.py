#!/usr/bin/env python3
"""heapprof's benchmark suite: every workload as a whole process under every
configuration, interleaved (A B C … A B C …) for several rounds so that the
machine's noise falls on all alike; prints medians, each as a ratio against
its baseline measured in the same run, and peak RSS; then the C harnesses'
micro-figures. Writes the table to docs/BENCHMARKS.md.

usage: bench/suite.py [--rounds N] [--only WORKLOAD,...] [--no-write]
       bench/suite.py --counted-only [--no-write]
         (only the callgrind table, replaced in place in docs/BENCHMARKS.md)
"""
import argparse
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build")
BIN = os.path.join(BUILD, "bin")
LIB = os.path.join(BUILD, "lib", "libheapprof.so")
LIBDIR = "/usr/lib/x86_64-linux-gnu"
JEMALLOC = os.path.join(LIBDIR, "libjemalloc.so.2")
TCMALLOC = os.path.join(LIBDIR, "libtcmalloc.so.4")
FORWARD = os.path.join(BUILD, "lib", "libforward.so")

# name: (environment, command prefix, baseline)
CONFIGS = {
    "plain": ({}, [], None),
    "forward-only": ({"LD_PRELOAD": FORWARD}, [], "plain"),
    "heapprof-default": ({"LD_PRELOAD": LIB}, [], "plain"),
    "heapprof-4096": ({"LD_PRELOAD": LIB, "HEAPPROF_RATE": "4096"}, [], "plain"),
    "heapprof-1": ({"LD_PRELOAD": LIB, "HEAPPROF_RATE": "1"}, [], "plain"),
    # Issue 15: heapprof attached to the running program instead of
    # preloaded (alloc_bench loads it and calls heapprof_attach_start first
    # thing, as `heapprof attach` does from gdb: ALLOC_BENCH_ATTACH), so
    # alloc workloads only.
    "heapprof-attached-default": ({"ALLOC_BENCH_ATTACH": LIB}, [], "plain"),
    "heapprof-attached-4096": ({"ALLOC_BENCH_ATTACH": LIB, "HEAPPROF_RATE": "4096"}, [],
                               "plain"),
    "jemalloc": ({"LD_PRELOAD": JEMALLOC}, [], None),
    "jemalloc-prof-19": ({"LD_PRELOAD": JEMALLOC,
                          "MALLOC_CONF": "prof:true,lg_prof_sample:19"}, [], "jemalloc"),
    "tcmalloc": ({"LD_PRELOAD": TCMALLOC}, [], None),
    "tcmalloc-sample-512k": ({"LD_PRELOAD": TCMALLOC,
                              "TCMALLOC_SAMPLE_PARAMETER": "524288"}, [], "tcmalloc"),
    "gperftools-heapprofile": ({"LD_PRELOAD": TCMALLOC, "HEAPPROFILE": "@TMP@/gp",
                                "HEAP_PROFILE_ALLOCATION_INTERVAL": "0"}, [], "tcmalloc"),
    "heaptrack": ({}, ["heaptrack", "-o", "@TMP@/ht"], "plain"),
}


def sqlite_script(path):
    with open(path, "w") as f:
        f.write("CREATE TABLE t(a INTEGER, b TEXT, c BLOB);\n"
                "WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s"
                " WHERE x < 300000)\n"
                "  INSERT INTO t SELECT x, 'row-' || x, randomblob(64) FROM s;\n"
                "CREATE INDEX tb ON t(b);\nCREATE INDEX tc ON t(c);\n"
                "SELECT count(*), sum(a) FROM t;\n")


# Who runs what. The sampling profilers and the forwarding floor run the
# full-length allocation workloads; the ones that record every allocation
# run a tenth of them (gperftools' heap profiler is ~100x slower: the full
# length would take hours), each group against its own baselines.
SAMPLING = ["plain", "forward-only", "heapprof-default", "heapprof-4096",
            "heapprof-attached-default", "heapprof-attached-4096",
            "jemalloc", "jemalloc-prof-19", "tcmalloc", "tcmalloc-sample-512k"]
EXACT = ["plain", "heapprof-1", "heaptrack", "tcmalloc", "gperftools-heapprofile"]
EVERY = [c for c in CONFIGS if c != "forward-only" and "attached" not in c]
PAIRS, EXACT_PAIRS = 20000000, 2000000


def alloc(pairs, threads):
    return [os.path.join(BIN, "alloc_bench"), str(pairs), str(threads), "100000"]


# name: (command, how the result is read, configurations)
def workloads(tmp):
    sql = os.path.join(tmp, "bench.sql")
    sqlite_script(sql)
    return {
        "alloc-1t": (alloc(PAIRS, 1), "wall", SAMPLING),
        "alloc-2t": (alloc(PAIRS, 2), "wall", SAMPLING),
        "alloc-1t-exact": (alloc(EXACT_PAIRS, 1), "wall", EXACT),
        "alloc-2t-exact": (alloc(EXACT_PAIRS, 2), "wall", EXACT),
        "map-delete": ([os.path.join(BIN, "map_bench")], "wall", EVERY),
        "sqlite": (["/bin/sh", "-c", "exec sqlite3 :memory: < " + sql], "wall", EVERY),
        "redis": (None, "rps", EVERY),
    }


def environ_for(config, tmp):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HEAPPROF_", "MALLOC_CONF", "TCMALLOC_", "HEAP",
                             "ALLOC_BENCH_"))
           and k != "LD_PRELOAD"}
    env["HEAPPROF_SIGNAL"] = "none"
    extra, prefix, _ = CONFIGS[config]
    for k, v in extra.items():
        env[k] = v.replace("@TMP@", tmp)
    return env, [p.replace("@TMP@", tmp) for p in prefix]


def run_wall(cmd, env, prefix):
    """Wall seconds and peak RSS (MiB) of one whole process."""
    start = time.monotonic()
    proc = subprocess.Popen(prefix + cmd, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    took = time.monotonic() - start
    if status != 0:
        raise RuntimeError(f"{cmd[0]} exited {status}")
    return took, usage.ru_maxrss / 1024


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_redis(env, prefix):
    """Mean requests/s over SET, GET, LPUSH, LRANGE_100 of redis-benchmark
    against a redis-server run under the configuration."""
    port = str(free_port())
    server = subprocess.Popen(prefix + ["redis-server", "--port", port, "--bind",
                                        "127.0.0.1", "--save", "", "--appendonly",
                                        "no", "--loglevel", "warning"],
                              env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            if subprocess.run(["redis-cli", "-p", port, "ping"],
                              capture_output=True).stdout == b"PONG\n":
                break
            time.sleep(0.05)
        out = subprocess.run(["redis-benchmark", "-p", port, "-n", "50000", "-t",
                              "set,get,lpush,lrange_100", "-q"],
                             capture_output=True, text=True, check=True).stdout
        # Final lines only ("NAME: N requests per second"); the LPUSH that
        # fills the list for LRANGE is not one of the four.
        rps = [float(m.group(2)) for m in re.finditer(
            r"^(SET|GET|LPUSH|LRANGE_100 \(first 100 elements\)): ([\d.]+) "
            r"requests per second", out.replace("\r", "\n"), re.M)]
        if len(rps) != 4:
            raise RuntimeError("redis-benchmark: " + out)
        subprocess.run(["redis-cli", "-p", port, "shutdown", "nosave"],
                       capture_output=True)
        _, _, usage = os.wait4(server.pid, 0)
        return statistics.mean(rps), usage.ru_maxrss / 1024
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def measure(rounds, only, tmp):
    loads = workloads(tmp)
    names = [w for w in loads if not only or w in only]
    results = {(w, c): [] for w in names for c in loads[w][2]}
    rss = {(w, c): [] for w in names for c in loads[w][2]}
    for r in range(rounds):
        for w in names:
            cmd, kind, configs = loads[w]
            for c in configs:
                env, prefix = environ_for(c, tmp)
                value, peak = (run_redis(env, prefix) if kind == "rps"
                               else run_wall(cmd, env, prefix))
                results[(w, c)].append(value)
                rss[(w, c)].append(peak)
                for leftover in os.listdir(tmp):  # peers' profile files
                    if leftover.startswith(("gp", "ht", "heapprof.", "jeprof")):
                        os.unlink(os.path.join(tmp, leftover))
        print(f"round {r + 1}/{rounds} done", file=sys.stderr)
    return names, loads, results, rss


def quartiles(values):
    v = sorted(values)
    return v[len(v) // 4], v[(3 * len(v)) // 4]


def table(names, loads, results, rss):
    """Medians, the ratio of medians, and the middle half of the runs (first
    to third quartile) over the baseline's median: how far a ratio can be
    trusted on this machine."""
    lines = ["| workload | configuration | median | vs baseline | middle half | "
             "peak RSS MiB |", "|---|---|---|---|---|---|"]
    for w in names:
        _, kind, configs = loads[w]
        for c in configs:
            base = CONFIGS[c][2] or c
            med = statistics.median(results[(w, c)])
            b = statistics.median(results[(w, base)])
            unit = f"{med:,.0f} req/s" if kind == "rps" else f"{med:.3f} s"
            # time: config/base (lower is better); rps: config/base (higher)
            ratio = "baseline" if base == c else f"{med / b:.3f}× {base}"
            q1, q3 = quartiles(results[(w, c)])
            lines.append(f"| {w} | {c} | {unit} | {ratio} | {q1 / b:.2f}–{q3 / b:.2f} | "
                         f"{statistics.median(rss[(w, c)]):.0f} |")
    return "\n".join(lines)


def targets(names, results):
    """Issue 6's workload targets, each with its figure from this run."""
    med = {k: statistics.median(v) for k, v in results.items() if v}

    def ratio(w, c):
        b = CONFIGS[c][2]
        return med[(w, c)] / med[(w, b)] if (w, c) in med and (w, b) in med else None

    rows = []

    def row(what, value, ok):
        if value is not None:
            rows.append(f"| {what} | {value} | {'met' if ok else 'missed'} |")

    for w in ("alloc-1t", "alloc-2t"):
        r = ratio(w, "heapprof-default")
        if r is None:
            continue
        row(f"{w}: default rate ≤ 1.02× glibc", f"{r:.3f}×", r <= 1.02)
        f = ratio(w, "forward-only")
        if f is not None:
            row(f"{w}: of which interposing alone (forward-only)", f"{f:.3f}×", True)
        for peer in ("jemalloc-prof-19", "tcmalloc-sample-512k"):
            p = ratio(w, peer)
            if p is not None:
                row(f"{w}: below {peer}'s own overhead", f"{r:.3f}× vs {p:.3f}×", r < p)
        for rate in ("default", "4096"):
            a, p = ratio(w, f"heapprof-attached-{rate}"), ratio(w, f"heapprof-{rate}")
            if a is not None and p is not None:
                row(f"{w}: attached costs what preloaded does ({rate}, within 0.02)",
                    f"{a:.3f}× vs {p:.3f}×", a <= p + 0.02)
    r1, r2 = ratio("alloc-1t", "heapprof-default"), ratio("alloc-2t", "heapprof-default")
    if r1 is not None and r2 is not None:
        row("scaling: alloc-2t's ratio no worse than alloc-1t's",
            f"{r2:.3f}× vs {r1:.3f}×", r2 <= r1 + 0.01)
    rr = ratio("redis", "heapprof-default")
    row("redis: default rate ≥ 0.98× requests/s", rr and f"{rr:.3f}×", rr and rr >= 0.98)
    for w in ("alloc-1t-exact", "alloc-2t-exact"):
        if (w, "heapprof-1") not in med:
            continue
        mine = med[(w, "heapprof-1")]
        for peer in ("heaptrack", "gperftools-heapprofile"):
            if (w, peer) in med:
                row(f"{w}: rate 1 faster than {peer}",
                    f"{mine:.2f} s vs {med[(w, peer)]:.2f} s", mine < med[(w, peer)])
    if not rows:
        return ""
    return ("| target | this run | |\n|---|---|---|\n" + "\n".join(rows) +
            "\n\n(two ratios whose middle halves overlap in the table above "
            "are not told apart by this run)\n")


COUNTED = [("plain", {}), ("forward-only", {"LD_PRELOAD": FORWARD}),
           ("heapprof rate 0 (wrapper alone)", {"LD_PRELOAD": LIB, "HEAPPROF_RATE": "0"}),
           ("heapprof-default", {"LD_PRELOAD": LIB}),
           ("heapprof-4096", {"LD_PRELOAD": LIB, "HEAPPROF_RATE": "4096"}),
           # Issue 14: the same with 4 labels pushed before the loop: what
           # labels cost every allocation (nothing) and each sample.
           ("heapprof-default, 4 labels", {"LD_PRELOAD": LIB, "ALLOC_BENCH_LABELS": "4"}),
           ("heapprof-4096, 4 labels", {"LD_PRELOAD": LIB, "HEAPPROF_RATE": "4096",
                                        "ALLOC_BENCH_LABELS": "4"}),
           # Issue 15: attached instead of preloaded (alloc_bench dlopens the
           # library and calls heapprof_attach_start before the loop, as
           # `heapprof attach` does from gdb): attach mode's own malloc and
           # free, header-less sampled blocks, the page filter.
           ("attached, rate 0 (wrapper alone)", {"ALLOC_BENCH_ATTACH": LIB,
                                                 "HEAPPROF_RATE": "0"}),
           ("attached, default rate", {"ALLOC_BENCH_ATTACH": LIB}),
           ("attached, 4096", {"ALLOC_BENCH_ATTACH": LIB, "HEAPPROF_RATE": "4096"})]
COUNTED_PAIRS = 1000000
COUNTED_SEED = "1"


def count_pairs(env, tmp, pairs=COUNTED_PAIRS, alloc_bench=None, keep=None):
    """Callgrind's event totals inside alloc_bench's run() (one thread,
    `pairs` pairs) under `env`: instructions and D1 misses per pair. The
    callgrind output is kept as `keep` if given (callgrind_annotate reads
    it), else deleted."""
    out = os.path.join(tmp, "callgrind.out")
    cmd = alloc(pairs, 1)
    if alloc_bench is not None:
        cmd[0] = alloc_bench
    subprocess.run(["valgrind", "--tool=callgrind", "--cache-sim=yes",
                    "--toggle-collect=run", "--callgrind-out-file=" + out, *cmd],
                   env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    with open(out) as f:
        text = f.read()
    if keep is not None:
        shutil.move(out, keep)
    else:
        os.unlink(out)
    events = re.search(r"^events: (.*)$", text, re.M).group(1).split()
    totals = dict(zip(events, map(int, re.search(r"^totals: (.*)$", text,
                                                   re.M).group(1).split())))
    if totals["Ir"] == 0:
        sys.exit("suite: callgrind counted nothing in alloc_bench's run(): "
                 "was it built with LTO or stripped?")
    return totals["Ir"] / pairs, (totals["D1mr"] + totals["D1mw"]) / pairs


def counted(tmp, note=""):
    """Instructions and D1 misses per malloc/free pair of alloc-1t's loop,
    by callgrind's cache simulator, counted only inside alloc_bench's run()
    (start-up and exit left out): figures the neighbours cannot move."""
    rows, base = [], None
    for name, extra in COUNTED:
        env, _ = environ_for("plain", tmp)
        # One seed for every row: each samples the same allocations, so a
        # row differs from another only by what its configuration does.
        env["HEAPPROF_SEED"] = COUNTED_SEED
        env.update(extra)
        ir, d1 = count_pairs(env, tmp)
        if base is None:
            base = (ir, d1)
        rows.append(f"| {name} | {ir:.1f} | {ir - base[0]:+.1f} ({ir / base[0]:.3f}×) "
                    f"| {d1:.3f} | {d1 - base[1]:+.3f} ({d1 / base[1]:.3f}×) |")
    return (f"Instructions and cache misses (alloc-1t's loop, {COUNTED_PAIRS:,} "
            "pairs, under callgrind's cache simulator: deterministic, unlike the "
            f"times; HEAPPROF_SEED={COUNTED_SEED}; the label rows push 4 labels before the loop, "
            "`ALLOC_BENCH_LABELS=4`; the attached rows load heapprof into the running "
            "program before the loop instead of preloading it, as `heapprof attach` "
            f"does, `ALLOC_BENCH_ATTACH`){note}:\n\n| configuration | instructions / pair | vs plain | "
            "D1 misses / pair | vs plain |\n|---|---|---|---|---|\n" +
            "\n".join(rows) + "\n\n")


def micro():
    env = dict(os.environ, HEAPPROF_SIGNAL="none")
    cost = subprocess.run([os.path.join(BIN, "sampled_cost")], env=env,
                          capture_output=True, text=True, check=True).stdout
    labels = subprocess.run([os.path.join(BIN, "label_cost")], env=env,
                            capture_output=True, text=True, check=True).stdout
    env["HEAPPROF_RATE"] = "1"
    write = subprocess.run([os.path.join(BIN, "write_cost")], env=env,
                           capture_output=True, text=True, check=True).stdout
    memory = ""
    for rate in ("0", "524288", "1"):
        env["HEAPPROF_RATE"] = rate
        memory += subprocess.run([os.path.join(BIN, "memory_cost")], env=env,
                                 capture_output=True, text=True,
                                 check=True).stdout
    return cost, labels, write, memory


def machine():
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    libc = subprocess.run(["ldd", "--version"], capture_output=True,
                          text=True).stdout.splitlines()[0]
    return (f"{os.cpu_count()} cores ({cpu}), {platform.release()} kernel, "
            f"{libc}; a shared machine, so only ratios within one run mean much")


COUNTED_START = "Instructions and cache misses (alloc-1t's loop"


def counted_only(write):
    """The callgrind table alone, put in place of the one in
    docs/BENCHMARKS.md (the rest of the file is left as it was)."""
    for f in (LIB, FORWARD, os.path.join(BIN, "alloc_bench")):
        if not os.path.exists(f):
            sys.exit(f"suite: {f} is missing: build first (bench/run.sh builds)")
    if shutil.which("valgrind") is None:
        sys.exit("suite: valgrind is missing: run bench/run.sh once")
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip() or "?"
    note = (f"; counted {time.strftime('%Y-%m-%d')} at {commit} by "
            "`bench/suite.py --counted-only`, later than the times above")
    with tempfile.TemporaryDirectory() as tmp:
        counts = counted(tmp, note)
    print(counts)
    if not write:
        return
    path = os.path.join(ROOT, "docs", "BENCHMARKS.md")
    with open(path) as f:
        doc = f.read()
    start = doc.find(COUNTED_START)
    rule = doc.find("\n|---|", start)
    end = doc.find("\n\n", rule)
    if start < 0 or rule < 0 or end < 0:
        sys.exit(f"suite: no callgrind table in {path} to replace")
    with open(path, "w") as f:
        f.write(doc[:start] + counts + doc[end + 2:])
    print(f"written to {path}", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--only", default="")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--counted-only", action="store_true")
    args = ap.parse_args()
    if args.counted_only:
        return counted_only(not args.no_write)
    for tool in ("redis-server", "redis-benchmark", "heaptrack", "sqlite3", "valgrind"):
        if shutil.which(tool) is None:
            sys.exit(f"suite: {tool} is missing: run scripts/setup.sh")
    for lib in (JEMALLOC, TCMALLOC, LIB, FORWARD):
        if not os.path.exists(lib):
            sys.exit(f"suite: {lib} is missing: run scripts/setup.sh and build")
    only = set(filter(None, args.only.split(",")))
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        names, loads, results, rss = measure(args.rounds, only, tmp)
        body = table(names, loads, results, rss)
        goals = targets(names, results)
        counts = counted(tmp) if not only or "alloc-1t" in only else ""
    cost, labels, write, memory = micro()
    report = (f"{body}\n\n({args.rounds} rounds, interleaved; medians)\n\n"
              f"{goals}\n"
              f"{counts}"
              f"Sampled-path cost (bench/sampled_cost, median of 9; 'label "
              f"cost' is what 4 labels add to each sample):\n\n```\n{cost}```\n\n"
              f"Label calls (bench/label_cost):\n\n```\n{labels}```\n\n"
              f"Profile writes (bench/write_cost, median of 5; a wait longer "
              f"than 100 µs counts as 'not preempted' only if the thread kept "
              f"its CPU throughout, and 'slept' counts the allocating thread's "
              f"voluntary context switches — a lock or a blocked page fault):"
              f"\n\n```\n{write}```\n\n"
              f"Memory with a ~256 MB live heap (bench/memory_cost): what the "
              f"profiler costs is the RSS above the rate-0 run\n\n"
              f"```\n{memory}```\n")
    print(report)
    if not args.no_write:
        path = os.path.join(ROOT, "docs", "BENCHMARKS.md")
        # The sections written by hand after the footer (each issue's
        # measurements) are kept as they are.
        kept = ""
        if os.path.exists(path):
            with open(path) as f:
                old = f.read()
            at = old.find(FOOTER.strip())
            if at >= 0:
                kept = old[at + len(FOOTER.strip()):].lstrip("\n")
                kept = "\n" + kept if kept else ""
        with open(path, "w") as f:
            f.write(HEADER.format(machine=machine(), date=time.strftime("%Y-%m-%d"),
                                  rounds=args.rounds) + report + FOOTER + kept)
        print(f"written to {path}", file=sys.stderr)


HEADER = """# Benchmarks

Regenerate with `bench/run.sh --rounds {rounds}` (which installs what it
needs, builds, and runs `bench/suite.py`). Measured {date} on: {machine}.

Each workload runs as a whole process (start-up and exit included) under
each configuration, the configurations interleaved round by round. A ratio
compares a configuration with its own baseline in the same run: heapprof
and heaptrack with the program's own allocator (`plain`: glibc, except for
redis, which Debian links with jemalloc), jemalloc's and tcmalloc's
profilers with the same allocator unprofiled. For time a ratio above 1 is
slower; for redis (requests/s) a ratio below 1 is slower.

Workloads: `alloc-1t`/`alloc-2t` — 20M malloc/free pairs, 16 B–4 KiB, 8
call sites, 100k live, on one thread and on two (one block in eight freed
by the other thread); `alloc-1t-exact`/`alloc-2t-exact` — the same with 2M
pairs, for the configurations that record every allocation (gperftools'
heap profiler is ~100× slower: the full length would take hours), with
their own baselines; `map-delete` — the map story (1M inserts, deletes, rebuild,
twice); `sqlite` — sqlite3 inserting 300k rows and building two indexes in
memory; `redis` — redis-server under redis-benchmark (50k each of SET, GET,
LPUSH, LRANGE_100; mean requests/s). Peers: jemalloc `prof:true,
lg_prof_sample:19` (one sample per 512 KiB, as heapprof's default);
tcmalloc `TCMALLOC_SAMPLE_PARAMETER=524288`; gperftools' heap profiler
(`HEAPPROFILE`, records every allocation); heaptrack (every allocation,
its own launcher). `forward-only` is `bench/forward.c`, an interposer
that only forwards malloc and free to glibc: the floor under any
LD_PRELOAD profiler, so that heapprof's ratio can be split into what
interposing costs and what heapprof adds. `heapprof-attached-*` load
heapprof into the running alloc_bench instead (`ALLOC_BENCH_ATTACH`: dlopen
and heapprof_attach_start, what `heapprof attach` calls from gdb, done by
the program itself before it starts its loops).

"""

FOOTER = """
## Reading it

- heapprof at its default rate is the configuration meant for production;
  `heapprof-1` records every allocation exactly and compares with the
  peers that do the same (gperftools' heap profiler, heaptrack).
- "middle half" is the first to third quartile of the configuration's
  runs over the baseline's median. This machine is shared: neighbours'
  load moves single runs by ±10-30 %, so ratios a percent or two apart
  whose middle halves overlap are not distinguished by one run. For a
  finer answer, run more rounds of one workload
  (`bench/run.sh --rounds 21 --only alloc-1t`), or count instructions
  and cache misses, which do not depend on the neighbours
  (`valgrind --tool=callgrind --cache-sim=yes build/bin/alloc_bench
  1000000 1 100000`, with and without the preload).
- `forward-only` over `plain` is what interposing alone costs; heapprof
  over `forward-only` is what heapprof adds to it.
- Peak RSS is the profiled process's own (for heaptrack, its launcher's).
"""

if __name__ == "__main__":
    main()
