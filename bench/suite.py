#!/usr/bin/env python3
"""heapprof's benchmark suite: every workload as a whole process under every
configuration, interleaved (A B C … A B C …) for several rounds so that the
machine's noise falls on all alike; prints medians, each as a ratio against
its baseline measured in the same run, and peak RSS; then the C harnesses'
micro-figures. Writes the table to docs/BENCHMARKS.md.

usage: bench/suite.py [--rounds N] [--only WORKLOAD,...] [--no-write]
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

# name: (environment, command prefix, baseline)
CONFIGS = {
    "plain": ({}, [], None),
    "heapprof-default": ({"LD_PRELOAD": LIB}, [], "plain"),
    "heapprof-4096": ({"LD_PRELOAD": LIB, "HEAPPROF_RATE": "4096"}, [], "plain"),
    "heapprof-1": ({"LD_PRELOAD": LIB, "HEAPPROF_RATE": "1"}, [], "plain"),
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


# name: (command, how the result is read, what is better)
def workloads(tmp):
    sql = os.path.join(tmp, "bench.sql")
    sqlite_script(sql)
    return {
        "alloc-1t": ([os.path.join(BIN, "alloc_bench"), "5000000", "1", "100000"], "wall"),
        "alloc-2t": ([os.path.join(BIN, "alloc_bench"), "5000000", "2", "100000"], "wall"),
        "map-delete": ([os.path.join(BIN, "map_bench")], "wall"),
        "sqlite": (["/bin/sh", "-c", "exec sqlite3 :memory: < " + sql], "wall"),
        "redis": (None, "rps"),
    }


def environ_for(config, tmp):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HEAPPROF_", "MALLOC_CONF", "TCMALLOC_", "HEAP"))
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
    results = {(w, c): [] for w in names for c in CONFIGS}
    rss = {(w, c): [] for w in names for c in CONFIGS}
    for r in range(rounds):
        for w in names:
            cmd, kind = loads[w]
            for c in CONFIGS:
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


def table(names, loads, results, rss):
    lines = ["| workload | configuration | median | vs baseline | peak RSS MiB |",
             "|---|---|---|---|---|"]
    for w in names:
        kind = loads[w][1]
        for c, (_, _, base) in CONFIGS.items():
            med = statistics.median(results[(w, c)])
            unit = f"{med:,.0f} req/s" if kind == "rps" else f"{med:.3f} s"
            if base is None:
                ratio = "baseline"
            else:
                b = statistics.median(results[(w, base)])
                # time: config/base (lower is better); rps: config/base (higher)
                ratio = f"{med / b:.3f}× {base}"
            lines.append(f"| {w} | {c} | {unit} | {ratio} | "
                         f"{statistics.median(rss[(w, c)]):.0f} |")
    return "\n".join(lines)


def micro():
    env = dict(os.environ, HEAPPROF_SIGNAL="none")
    cost = subprocess.run([os.path.join(BIN, "sampled_cost")], env=env,
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
    return cost, write, memory


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


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--only", default="")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    for tool in ("redis-server", "redis-benchmark", "heaptrack", "sqlite3"):
        if shutil.which(tool) is None:
            sys.exit(f"suite: {tool} is missing: run scripts/setup.sh")
    for lib in (JEMALLOC, TCMALLOC, LIB):
        if not os.path.exists(lib):
            sys.exit(f"suite: {lib} is missing: run scripts/setup.sh and build")
    only = set(filter(None, args.only.split(",")))
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        names, loads, results, rss = measure(args.rounds, only, tmp)
    body = table(names, loads, results, rss)
    cost, write, memory = micro()
    report = (f"{body}\n\n({args.rounds} rounds, interleaved; medians)\n\n"
              f"Sampled-path cost (bench/sampled_cost, median of 9):\n\n```\n{cost}```\n\n"
              f"Profile writes (bench/write_cost, median of 5):\n\n```\n{write}```\n\n"
              f"Memory with a ~256 MB live heap (bench/memory_cost): what the "
              f"profiler costs is the RSS above the rate-0 run\n\n"
              f"```\n{memory}```\n")
    print(report)
    if not args.no_write:
        path = os.path.join(ROOT, "docs", "BENCHMARKS.md")
        with open(path, "w") as f:
            f.write(HEADER.format(machine=machine(), date=time.strftime("%Y-%m-%d"),
                                  rounds=args.rounds) + report + FOOTER)
        print(f"written to {path}", file=sys.stderr)


HEADER = """# Benchmarks

Regenerate with `bench/run.sh` (which installs what it needs, builds, and
runs `bench/suite.py --rounds {rounds}`). Measured {date} on: {machine}.

Each workload runs as a whole process (start-up and exit included) under
each configuration, the configurations interleaved round by round. A ratio
compares a configuration with its own baseline in the same run: heapprof
and heaptrack with the program's own allocator (`plain`: glibc, except for
redis, which Debian links with jemalloc), jemalloc's and tcmalloc's
profilers with the same allocator unprofiled. For time a ratio above 1 is
slower; for redis (requests/s) a ratio below 1 is slower.

Workloads: `alloc-1t`/`alloc-2t` — 5M malloc/free pairs, 16 B–4 KiB, 8 call
sites, 100k live, on one thread and on two (one block in eight freed by the
other thread); `map-delete` — the map story (1M inserts, deletes, rebuild,
twice); `sqlite` — sqlite3 inserting 300k rows and building two indexes in
memory; `redis` — redis-server under redis-benchmark (50k each of SET, GET,
LPUSH, LRANGE_100; mean requests/s). Peers: jemalloc `prof:true,
lg_prof_sample:19` (one sample per 512 KiB, as heapprof's default);
tcmalloc `TCMALLOC_SAMPLE_PARAMETER=524288`; gperftools' heap profiler
(`HEAPPROFILE`, records every allocation); heaptrack (every allocation,
its own launcher).

"""

FOOTER = """
## Reading it

- heapprof at its default rate is the configuration meant for production;
  `heapprof-1` records every allocation exactly and compares with the
  peers that do the same (gperftools' heap profiler, heaptrack).
- Peak RSS is the profiled process's own (for heaptrack, its launcher's).
"""

if __name__ == "__main__":
    main()
