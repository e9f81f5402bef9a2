#!/usr/bin/env python3
"""Issue 15's figures: what heapprof costs a process it was attached to,
against the same library preloaded, and what attaching costs.

Parts (all by default; --only picks some):
  code     the machine code of attach mode's malloc and free against the
           preloaded ones (objdump; instructions on the path that takes no
           branch, as compare_counted.py counts them)
  counted  callgrind's instructions and D1 misses per malloc/free pair of
           alloc-1t's loop (as bench/suite.py counts them), preloaded and
           attached in process (alloc_bench's ALLOC_BENCH_ATTACH: dlopen
           RTLD_LOCAL + heapprof_attach_start, what gdb does), at rate 0,
           the default rate and 4096, with fixed seeds
  wall     alloc-1t and alloc-2t (alloc_bench, 20M pairs), plain, preloaded,
           attached by a real `heapprof attach PID` and attached in process,
           at the default rate and 4096: configurations interleaved round
           by round, each time being alloc_bench's own (from the go byte
           to the end of its loops: ALLOC_BENCH_WAIT), wall and CPU
           seconds, medians and per-round ratios (each against the same
           round's plain or preloaded run)
  time     wall time of `heapprof attach PID` and `heapprof detach PID` on
           an idle program, a busy allocating program (1 and 2 threads:
           bench/attach_target.c) and redis-server under redis-benchmark;
           and how long the target's threads were held up, from the
           target's side (attach_target) or a client's (redis: PING round
           trips), against a window of the same length just before

usage: bench/attach_cost.py [--only code,counted,wall,time] [--rounds N]
                            [--pairs N] [--seeds 1,2,3] [--build DIR]
"""
import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare_counted  # noqa: E402
import suite  # noqa: E402

BUILD = suite.BUILD
HEAPPROF = os.path.join(BUILD, "bin", "heapprof")
TARGET = os.path.join(BUILD, "bin", "attach_target")


def paths(build):
    global BUILD, HEAPPROF, TARGET
    BUILD = os.path.abspath(build)
    suite.BUILD, suite.BIN = BUILD, os.path.join(BUILD, "bin")
    suite.LIB = os.path.join(BUILD, "lib", "libheapprof.so")
    HEAPPROF = os.path.join(BUILD, "bin", "heapprof")
    TARGET = os.path.join(BUILD, "bin", "attach_target")


def median(v):
    return statistics.median(v) if v else float("nan")


# ---- code ----

def code():
    funcs = compare_counted.disassembly(suite.LIB)
    lines = ["| function | instructions listed | no-branch path | its instructions |",
             "|---|---|---|---|"]
    for fn in ("malloc", "attach_malloc", "free", "attach_free"):
        if fn not in funcs:
            sys.exit(f"attach_cost: no {fn} in {suite.LIB}'s symbol table (stripped?)")
        path = compare_counted.fall_through(funcs[fn])
        lines.append(f"| `{fn}` | {len(funcs[fn])} | {len(path)} | "
                     f"{'; '.join('`' + i + '`' for i in path)} |")
    def bare(insns):  # labels' names stripped too: malloc.cold vs attach_malloc.cold
        return [re.sub(r"<[^>]*>", "<>", i) for i in insns]

    same = bare(funcs["malloc"]) == bare(funcs["attach_malloc"])
    lines.append("")
    lines.append(f"attach_malloc and malloc: {'the same' if same else 'different'} "
                 "instructions once addresses are stripped.")
    return "\n".join(lines)


# ---- counted ----

def counted(seeds, pairs):
    rows = [("rate 0 (the wrapper)", {"HEAPPROF_RATE": "0"})]
    rows += [(f"default rate, seed {s}", {"HEAPPROF_SEED": s}) for s in seeds]
    rows += [(f"rate 4096, seed {s}", {"HEAPPROF_RATE": "4096", "HEAPPROF_SEED": s})
             for s in seeds]
    out = ["| configuration | preloaded | attached | attached − preloaded | "
           "D1 preloaded | D1 attached |", "|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        env, _ = suite.environ_for("plain", tmp)
        ir, d1 = suite.count_pairs(env, tmp, pairs)
        out.append(f"| plain glibc | {ir:.3f} | | | {d1:.3f} | |")
        print(out[-1], file=sys.stderr, flush=True)
        for name, extra in rows:
            cells = []
            for how in ("preload", "attach"):
                env, _ = suite.environ_for("plain", tmp)
                env.update(extra)
                env["LD_PRELOAD" if how == "preload" else "ALLOC_BENCH_ATTACH"] = suite.LIB
                cells.append(suite.count_pairs(env, tmp, pairs))
            (pi, pd), (ai, ad) = cells
            out.append(f"| {name} | {pi:.3f} | {ai:.3f} | {ai - pi:+.3f} | {pd:.3f} | {ad:.3f} |")
            print(out[-1], file=sys.stderr, flush=True)
    return "\n".join(out)


# ---- wall ----

WALL = [  # name, environment, `heapprof attach` options (None: no attach)
    ("plain", {}, None),
    ("preloaded default", {"LD_PRELOAD": "@LIB@"}, None),
    ("attached default (heapprof attach)", {}, []),
    ("attached default (in process)", {"ALLOC_BENCH_ATTACH": "@LIB@"}, None),
    ("preloaded 4096", {"LD_PRELOAD": "@LIB@", "HEAPPROF_RATE": "4096"}, None),
    ("attached 4096 (heapprof attach)", {}, ["--rate", "4096"]),
    ("attached 4096 (in process)", {"ALLOC_BENCH_ATTACH": "@LIB@",
                                    "HEAPPROF_RATE": "4096"}, None),
]


def tool_env(tmp):
    """The heapprof command's environment: its attach records in `tmp`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEAPPROF_")}
    env["XDG_RUNTIME_DIR"] = tmp
    return env


def run_cmd(cmd, env, cwd):
    """(seconds, stdout+stderr) of a command that must succeed."""
    t0 = time.monotonic()
    p = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    took = time.monotonic() - t0
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: status {p.returncode}\n{p.stdout}{p.stderr}")
    return took, p.stdout + p.stderr


def wall_once(pairs, threads, extra, attach, tmp):
    env, _ = suite.environ_for("plain", tmp)
    env.update({k: v.replace("@LIB@", suite.LIB) for k, v in extra.items()})
    env["ALLOC_BENCH_WAIT"] = "1"
    proc = subprocess.Popen(suite.alloc(pairs, threads), env=env, cwd=tmp,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError("alloc_bench did not say ready")
        if attach is not None:
            run_cmd([HEAPPROF, "attach", str(proc.pid), "--signal", "none", *attach],
                    tool_env(tmp), tmp)
        proc.stdin.write("g")
        proc.stdin.close()
        line = proc.stdout.readline().split()
        if proc.wait() != 0 or len(line) != 2:
            raise RuntimeError(f"alloc_bench exited {proc.returncode} ({line})")
        return float(line[0]), float(line[1])  # wall, CPU
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for f in os.listdir(tmp):  # the attached runs' exit profiles
            if f.startswith("heapprof."):
                os.unlink(os.path.join(tmp, f))


def paired(a, b):
    """The median of per-round ratios a/b, and their middle half: rounds
    run back to back, so each ratio sees one moment's neighbours."""
    r = [x / y for x, y in zip(a, b)]
    q1, q3 = suite.quartiles(r)
    return f"{median(r):.3f}× ({q1:.2f}–{q3:.2f})"


def wall(rounds, pairs):
    loads = [("alloc-1t", 1), ("alloc-2t", 2)]
    results = {(w, c[0]): [] for w, _ in loads for c in WALL}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            for w, threads in loads:
                for name, extra, attach in WALL:
                    results[(w, name)].append(wall_once(pairs, threads, extra, attach, tmp))
            print(f"wall: round {r + 1}/{rounds} done", file=sys.stderr, flush=True)
    out = ["| workload | configuration | wall, median | CPU, median | wall vs plain | "
           "CPU vs plain |", "|---|---|---|---|---|---|"]
    for w, _ in loads:
        base = results[(w, "plain")]
        for name, _, _ in WALL:
            v = results[(w, name)]
            walls, cpus = [x[0] for x in v], [x[1] for x in v]
            vs = ("baseline", "baseline") if name == "plain" else (
                paired(walls, [x[0] for x in base]), paired(cpus, [x[1] for x in base]))
            out.append(f"| {w} | {name} | {median(walls):.3f} s | {median(cpus):.3f} s | "
                       f"{vs[0]} | {vs[1]} |")
    out += ["", "| workload | attached / preloaded | wall | CPU |", "|---|---|---|---|"]
    for w, _ in loads:
        for rate in ("default", "4096"):
            pre = results[(w, f"preloaded {rate}")]
            for how in ("heapprof attach", "in process"):
                att = results[(w, f"attached {rate} ({how})")]
                out.append(f"| {w} | {rate}, {how} | "
                           f"{paired([x[0] for x in att], [x[0] for x in pre])} | "
                           f"{paired([x[1] for x in att], [x[1] for x in pre])} |")
    return "\n".join(out), results


# ---- time ----

def overlapping(spans, a, b):
    return [s for s in spans if s[0] < b and s[1] > a]


def parse_target(text):
    gaps, held = {}, {}
    for line in text.splitlines():
        f = line.split()
        if f and f[0] == "gap":
            t, start, length = int(f[1]), int(f[2]), int(f[3])
            gaps.setdefault(t, []).append((start, start + length, length))
        elif f and f[0] == "held":
            t = int(f[1])
            held.setdefault(t, []).append((int(f[2]), int(f[3]), int(f[4])))
    return gaps, held


def window_figures(gaps, held, a, b, busy):
    """Over [a, b] (ns): the longest gap of any thread, and the most time
    any one thread was held (not runnable; busy threads only), in ms."""
    longest = max([g[2] for spans in gaps.values() for g in overlapping(spans, a, b)],
                  default=0)
    most_held = max([sum(h[2] for h in overlapping(spans, a, b))
                     for spans in held.values()], default=0)
    return longest / 1e6, most_held / 1e6 if busy else None


def how_entered(transcript):
    """How the safe point was found (`-v`), gdb's thread number kept: 1 is
    the main thread."""
    m = re.search(r"heapprof-attach: (.*)", transcript)
    return m.group(1).strip() if m else "?"


def attach_detach(pid, tmp):
    """After 2.5 s of the target's own pace: heapprof attach, a second,
    heapprof detach, half a second. For each command: (start ns, end ns,
    its time in s, its -v transcript)."""
    took = []
    for pause, args in ((2.5, ["attach", str(pid), "-v", "--signal", "none"]),
                        (1.0, ["detach", str(pid), "-v"])):
        time.sleep(pause)
        t0 = time.monotonic_ns()
        seconds, said = run_cmd([HEAPPROF] + args, tool_env(tmp), tmp)
        took.append((t0, time.monotonic_ns(), seconds, said))
    time.sleep(0.5)
    return took


def remove_profiles(tmp):
    for f in os.listdir(tmp):
        if f.startswith("heapprof."):
            os.unlink(os.path.join(tmp, f))


def time_target(kind, threads, rounds, tmp):
    """Attach and detach of fresh attach_target processes, one per round."""
    rows = []
    for _ in range(rounds):
        cmd = [TARGET, "idle"] if kind == "idle" else [TARGET, "busy", str(threads)]
        env, _ = suite.environ_for("plain", tmp)
        proc = subprocess.Popen(cmd, env=env, cwd=tmp, stdout=subprocess.PIPE, text=True)
        try:
            if proc.stdout.readline().strip() != "ready":
                raise RuntimeError("attach_target did not say ready")
            (a0, a1, took_a, said_a), (d0, d1, took_d, said_d) = attach_detach(proc.pid, tmp)
            proc.send_signal(signal.SIGTERM)
            text = proc.stdout.read()
            if proc.wait() != 0:
                raise RuntimeError(f"attach_target exited {proc.returncode}")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        gaps, held = parse_target(text)
        span = min(a1 - a0, 2_000_000_000)
        rows.append({
            "attach_s": took_a, "detach_s": took_d,
            "attach": window_figures(gaps, held, a0, a1, kind == "busy"),
            "detach": window_figures(gaps, held, d0, d1, kind == "busy"),
            "control": window_figures(gaps, held, a0 - span, a0, kind == "busy"),
            "entered": how_entered(said_a), "entered_detach": how_entered(said_d),
        })
        remove_profiles(tmp)
    return rows


class Pinger(threading.Thread):
    """PING round trips to redis on one connection, back to back: (sent
    ns, round trip ns) each."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.trips, self.stop = [], False

    def run(self):
        buf = b""
        while not self.stop:
            t0 = time.monotonic_ns()
            self.sock.sendall(b"PING\r\n")
            while b"\r\n" not in buf:
                chunk = self.sock.recv(64)
                if not chunk:
                    return
                buf += chunk
            line, buf = buf.split(b"\r\n", 1)
            if line != b"+PONG":
                raise RuntimeError(f"redis answered {line!r}")
            self.trips.append((t0, time.monotonic_ns() - t0))
            time.sleep(0.001)


def time_redis(rounds, tmp):
    rows = []
    for _ in range(rounds):
        port = suite.free_port()
        env, _ = suite.environ_for("plain", tmp)
        server = subprocess.Popen(["redis-server", "--port", str(port), "--bind",
                                   "127.0.0.1", "--save", "", "--appendonly", "no",
                                   "--loglevel", "warning"], env=env, cwd=tmp,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        load = pinger = None
        try:
            for _ in range(200):
                if subprocess.run(["redis-cli", "-p", str(port), "ping"],
                                  capture_output=True).stdout == b"PONG\n":
                    break
                time.sleep(0.05)
            load = subprocess.Popen(["redis-benchmark", "-p", str(port), "-n", "100000000",
                                     "-t", "set,get,lpush,lpop", "-c", "20", "-q"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            pinger = Pinger(port)
            pinger.start()
            (a0, a1, took_a, said_a), (d0, d1, took_d, said_d) = attach_detach(server.pid, tmp)
            pinger.stop = True
            pinger.join(10)
            if load.poll() is not None:
                raise RuntimeError("redis-benchmark ended during the attach")
            if subprocess.run(["redis-cli", "-p", str(port), "ping"],
                              capture_output=True).stdout != b"PONG\n":
                raise RuntimeError("redis does not answer after the detach")
        finally:
            for p in (load, server):
                if p is not None and p.poll() is None:
                    p.kill()
                    p.wait()
        span = min(a1 - a0, 2_000_000_000)

        def worst(a, b):
            return max([rtt for t, rtt in pinger.trips if a <= t < b], default=0) / 1e6

        rows.append({"attach_s": took_a, "detach_s": took_d,
                     "attach": (worst(a0, a1), None), "detach": (worst(d0, d1), None),
                     "control": (worst(a0 - span, a0), None),
                     "entered": how_entered(said_a), "entered_detach": how_entered(said_d)})
        remove_profiles(tmp)
    return rows


def in_process(rounds, tmp):
    """dlopen and heapprof_attach_start's own times, in alloc_bench (ms)."""
    dl, start = [], []
    for _ in range(rounds):
        env, _ = suite.environ_for("plain", tmp)
        env["ALLOC_BENCH_ATTACH"] = suite.LIB
        p = subprocess.run(suite.alloc(1000, 1)[:-1] + ["100"], env=env, cwd=tmp,
                           capture_output=True, text=True, check=True)
        m = re.search(r"dlopen ([\d.]+) ms, heapprof_attach_start ([\d.]+) ms", p.stderr)
        dl.append(float(m.group(1)))
        start.append(float(m.group(2)))
    return (f"In the target itself (alloc_bench with ALLOC_BENCH_ATTACH, {rounds} runs): "
            f"dlopen {median(dl):.2f} ms ({min(dl):.2f}–{max(dl):.2f}), "
            f"heapprof_attach_start {median(start):.2f} ms "
            f"({min(start):.2f}–{max(start):.2f}).")


def times(rounds):
    cases = [("idle (attach_target idle)", lambda t: time_target("idle", 0, rounds, t)),
             ("busy, 1 thread (attach_target busy 1)",
              lambda t: time_target("busy", 1, rounds, t)),
             ("busy, 2 threads (attach_target busy 2)",
              lambda t: time_target("busy", 2, rounds, t))]
    if shutil.which("redis-server") and shutil.which("redis-benchmark"):
        cases.append(("redis-server under redis-benchmark (20 clients)",
                      lambda t: time_redis(rounds, t)))
    out = ["| target | attach s, median (min–max) | detach s, median (min–max) | "
           "longest gap ms: attach / detach / before | most held ms: attach / detach / "
           "before | entered at |", "|---|---|---|---|---|---|"]
    raw = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, fn in cases:
            rows = fn(tmp)
            raw[name] = rows

            def spread(key):
                v = [r[key] for r in rows]
                return f"{median(v):.3f} ({min(v):.3f}–{max(v):.3f})"

            def fig(i):
                parts = []
                for w in ("attach", "detach", "control"):
                    v = [r[w][i] for r in rows]
                    parts.append("–" if v[0] is None else f"{median(v):.1f}")
                return " / ".join(parts)

            entered = sorted({r["entered"] for r in rows})
            out.append(f"| {name} | {spread('attach_s')} | {spread('detach_s')} | {fig(0)} | "
                       f"{fig(1)} | {'; '.join(entered)} |")
            print(out[-1], file=sys.stderr, flush=True)
        out.append("\n" + in_process(rounds, tmp))
    return "\n".join(out), raw


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="code,counted,wall,time")
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--pairs", type=int, default=suite.PAIRS)
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--build", default=BUILD)
    ap.add_argument("--raw", action="store_true", help="print every round's figures")
    args = ap.parse_args()
    paths(args.build)
    parts = set(args.only.split(","))
    for f in (suite.LIB, HEAPPROF, TARGET, os.path.join(suite.BIN, "alloc_bench")):
        if not os.path.exists(f):
            sys.exit(f"attach_cost: {f} is missing: build first")
    if "code" in parts:
        print("## Fast paths (objdump)\n\n" + code() + "\n", flush=True)
    if "counted" in parts:
        print(f"## Callgrind, alloc-1t's loop ({suite.COUNTED_PAIRS:,} pairs), per pair\n\n" +
              counted(args.seeds.split(","), suite.COUNTED_PAIRS) + "\n", flush=True)
    if "wall" in parts:
        text, results = wall(args.rounds, args.pairs)
        print(f"## Wall time ({args.rounds} rounds, {args.pairs:,} pairs)\n\n" + text + "\n",
              flush=True)
        if args.raw:
            for k, v in results.items():
                print(k, " ".join(f"{x:.3f}/{c:.3f}" for x, c in v))
    if "time" in parts:
        text, raw = times(args.rounds)
        print(f"## Attach and detach ({args.rounds} rounds)\n\n" + text + "\n", flush=True)
        if args.raw:
            for name, rows in raw.items():
                for r in rows:
                    print(name, r)


if __name__ == "__main__":
    main()
