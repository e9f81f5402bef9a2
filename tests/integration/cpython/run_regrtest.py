#!/usr/bin/python3
"""Runs a part of CPython's own test suite (Debian's libpython3.11-testsuite)
with or without heapprof and checks that heapprof changes no result.

  run_regrtest.py baseline --results FILE  COMMON
  run_regrtest.py heapprof --results FILE --lib LIBHEAPPROF --go GO
                           [--rate N] [--seed S]  COMMON
  COMMON: --python PY --modules FILE --exclude FILE --work DIR
          [--jobs N] [--timeout SECONDS]

`baseline` runs the modules of the modules file with the test cases of the
exclusion file ignored, without heapprof, and must pass: every case passes,
is skipped or is an expected failure. This proves the exclusion list (the
tests that fail or hang here without heapprof) is right. It writes every
case's outcome and each module's time to its results file.

`heapprof` runs the same under LD_PRELOAD=LIBHEAPPROF, with the profiles of
every process written under the work directory (HEAPPROF_OUT), and must give
each case exactly the outcome the baseline recorded: a case that fails,
errors, hangs (regrtest's --timeout turns a hang into a failure), is skipped
instead of run or disappears is a difference. It then checks that heapprof
was really there: profiles from the test processes exist and one of them
opens in `go tool pprof`.

The runner itself is never preloaded; only the regrtest process tree is.
"""

import argparse
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

SETUP_HINT = "run scripts/setup.sh (it installs libpython3.11-testsuite)"


def fail(msg):
    print(f"cpython: FAIL: {msg}", flush=True)
    sys.exit(1)


def read_list(path):
    """Lines of a list file without comments: [(first word, rest), ...]."""
    entries = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            if line:
                word, _, rest = line.partition(" ")
                entries.append((word, rest.strip(), n))
    return entries


def read_exclusions(path):
    """The exclusion file: `PATTERN  REASON` per line. A PATTERN with no dot
    is a whole module; otherwise a regrtest test-id glob. Every entry must
    give its reason."""
    modules, patterns = {}, {}
    for word, reason, n in read_list(path):
        if not reason:
            fail(f"{path}:{n}: '{word}' has no reason; every exclusion says why")
        (patterns if "." in word else modules)[word] = reason
    return modules, patterns


def check_testsuite(python, modules):
    """The test package must be installed: a missing one fails, never skips."""
    probe = ("import sys, test.libregrtest, importlib.util as u\n"
             "missing = [m for m in sys.argv[1:]\n"
             "           if u.find_spec('test.' + m) is None]\n"
             "print(' '.join(missing))\n")
    if not os.access(python, os.X_OK):
        fail(f"{python} is missing: {SETUP_HINT}")
    r = subprocess.run([python, "-I", "-c", probe, *modules],
                       capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"CPython's test suite is not importable ({r.stderr.strip()}): "
             f"{SETUP_HINT}")
    if r.stdout.split():
        fail(f"test modules missing from the installed test suite: "
             f"{r.stdout.strip()}: {SETUP_HINT}")


def clean_env(work):
    """What the test processes see: nothing of the caller's Python or heapprof
    settings (PYTHONUNBUFFERED alone fails test_cmd_line), a fixed locale and
    PATH, and a temporary directory of their own."""
    drop = ("PYTHON", "HEAPPROF_", "LC_", "LD_PRELOAD", "LANGUAGE")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(LANG="C.UTF-8", PATH="/usr/sbin:/usr/bin:/sbin:/bin",
               TMPDIR=os.path.join(work, "tmp"))
    return env


SEVERITY = ("pass", "skip", "xfail", "xpass", "fail", "error")


def outcome(case):
    """A junit <testcase> as one word."""
    for tag, word in (("failure", "fail"), ("error", "error"),
                      ("skipped", "skip"), ("output", "xfail"),
                      ("outcome", "xpass")):
        if case.find(tag) is not None:
            return word
    return "pass"


def module_of(case_id):
    """The regrtest module a case id belongs to: test.test_os.X.y is test_os;
    the ctypes tests live in the ctypes package (ctypes.test.test_x.X.y)."""
    if case_id.startswith("ctypes.test") or "(ctypes.test" in case_id:
        return "test_ctypes"
    m = re.search(r"\btest\.(test_\w+)", case_id)
    return m.group(1) if m else "?"


def read_junit(path):
    """{case id: outcome}, {module: seconds spent in its cases}."""
    cases, times = {}, {}
    if not os.path.exists(path):
        return cases, times
    for case in ET.parse(path).getroot().iter("testcase"):
        name = case.get("name")
        module = module_of(name)
        # One id can run in several modules (test.fork_wait.ForkWait runs in
        # test_fork1, test_wait3 and test_wait4): keep its worst outcome.
        cases[name] = max(cases.get(name, "pass"), outcome(case),
                          key=SEVERITY.index)
        times[module] = times.get(module, 0.0) + float(case.get("time", 0))
    return cases, times


PROGRESS = re.compile(r"\[\s*\d+/\d+(?:/\d+)?\] (test_\w+) (.*)$")
STATES = ("passed", "failed (env changed)", "failed", "skipped (resource denied)",
          "skipped", "crashed", "timed out", "interrupted", "ran no tests")


def module_state(text):
    """regrtest's word for a finished module, from its progress line:
    `test_os passed -- running: ...` is passed, `test_x failed (2 errors)`
    failed, `test_x timed out (4 min)` timed out."""
    text = text.split(" -- running:", 1)[0]
    return next((s for s in STATES if text.startswith(s)), text)


def run_regrtest(args, modules, patterns, env, times_before):
    """Runs regrtest once, its output passed through; returns its status,
    the wall and CPU seconds of the whole process tree, each module's state,
    each case's outcome and each module's seconds. The modules start longest
    first (by the times of the last baseline), so that the workers finish
    together instead of waiting on a long module started last."""
    order = sorted(modules, key=lambda m: -times_before.get(m, 0.0))
    work = args.work
    ignore = os.path.join(work, "ignore.txt")
    with open(ignore, "w") as f:
        f.write("".join(p + "\n" for p in sorted(patterns)))
    xml = os.path.join(work, "junit.xml")
    cmd = [args.python, "-m", "test", "-j", str(args.jobs),
           "--timeout", str(args.timeout), "-W",
           "--tempdir", os.path.join(work, "regrtest"),
           "--junit-xml", xml, "--ignorefile", ignore, *order]
    print("cpython: " + " ".join(cmd), flush=True)
    states = {}
    start, cpu0 = time.monotonic(), os.times()
    with subprocess.Popen(cmd, env=env, cwd=work, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, errors="replace") as p:
        for line in p.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            m = PROGRESS.search(line.rstrip("\n"))
            if m:
                states[m.group(1)] = module_state(m.group(2))
    wall, cpu1 = time.monotonic() - start, os.times()
    cpu = (cpu1.children_user - cpu0.children_user
           + cpu1.children_system - cpu0.children_system)
    cases, times = read_junit(xml)
    return p.returncode, wall, cpu, states, cases, times


def check_exclusions_exist(args, modules, patterns, env):
    """Every exclusion pattern must still name a test case (a stale entry
    would hide nothing and rot)."""
    r = subprocess.run([args.python, "-m", "test", "--list-cases", *modules],
                       env=env, cwd=args.work, capture_output=True, text=True)
    ids = r.stdout.split()
    if r.returncode != 0 or not ids:
        fail(f"--list-cases failed ({r.returncode}): {r.stderr[-2000:]}")
    parts = [i.split(".") for i in ids]
    stale = [p for p in patterns
             if not any(fnmatch.fnmatchcase(i, p) for i in ids)
             and not any(fnmatch.fnmatchcase(x, p) for ps in parts for x in ps)]
    if stale:
        fail(f"exclusions that name no test case any more: {', '.join(stale)}")
    return len(ids)


def bad_cases(cases):
    return sorted(c for c, o in cases.items() if o in ("fail", "error", "xpass"))


def print_times(modules, times, base_times=None):
    print("cpython: seconds spent in each module's test cases"
          + (" (baseline, heapprof, ratio)" if base_times else ""))
    for m in modules:
        t = times.get(m)
        cell = "missing" if t is None else f"{t:8.1f}"
        if base_times:
            b = base_times.get(m)
            ratio = f"{t / b:6.2f}x" if t and b else ""
            cell = (f"{b:8.1f}" if b is not None else "missing") + " " + cell + " " + ratio
        print(f"  {m:<28} {cell}")


def check_profiles(args, prof_dir, nmodules):
    """heapprof was there: the test processes wrote their exit profiles (at
    least each module's worker process, which exits normally), and the
    largest opens in go tool pprof with samples in it."""
    files = sorted(os.listdir(prof_dir)) if os.path.isdir(prof_dir) else []
    pids = {f.split(".")[1] for f in files if f.startswith("py.")}
    print(f"cpython: {len(files)} profiles from {len(pids)} processes")
    if len(pids) < nmodules:
        fail(f"only {len(pids)} processes wrote profiles into {prof_dir}: "
             "was heapprof preloaded?")
    biggest = max(files, key=lambda f: os.path.getsize(os.path.join(prof_dir, f)))
    r = subprocess.run([args.go, "tool", "pprof", "-raw",
                        os.path.join(prof_dir, biggest)],
                       capture_output=True, text=True)
    samples = r.stdout.split("Samples:", 1)[-1].split("Locations", 1)[0]
    if r.returncode != 0 or not re.search(r"^\s*\d+\s+\d+\s+\d+\s+\d+:", samples, re.M):
        fail(f"go tool pprof cannot read {biggest} or it has no samples: "
             f"{r.stderr[-1000:]}")
    return len(files)


def compare(base, states, cases):
    """Lines naming every module whose state and every case whose outcome
    differs from the baseline. A module that crashed or timed out has no
    case results: it is one line, not a line per lost case."""
    diffs = []
    silent = set()
    for m in base["modules"]:
        b, h = base["states"].get(m, "absent"), states.get(m, "absent")
        if b != h:
            diffs.append(f"  {m}: {b} without heapprof, {h} with it")
        if h in ("crashed", "timed out", "interrupted", "absent"):
            silent.add(m)
    for c in sorted(set(base["cases"]) | set(cases)):
        if module_of(c) in silent:
            continue
        b, h = base["cases"].get(c, "absent"), cases.get(c, "absent")
        if b != h:
            diffs.append(f"  {c}: {b} without heapprof, {h} with it")
    return diffs


def parse_args():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=("baseline", "heapprof"))
    for opt in ("python", "modules", "exclude", "work", "results"):
        ap.add_argument("--" + opt, required=True)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--timeout", type=int, default=240)
    for opt in ("lib", "go", "rate", "seed"):
        ap.add_argument("--" + opt)
    args = ap.parse_args()
    if args.mode == "heapprof" and not (args.lib and args.go):
        ap.error("heapprof mode needs --lib and --go")
    return args


def load_baseline(args, modules, patterns):
    if not os.path.exists(args.results):
        fail(f"no baseline results at {args.results}: run cpython_baseline first")
    with open(args.results) as f:
        base = json.load(f)
    if base["modules"] != modules or base["patterns"] != sorted(patterns):
        fail("the baseline ran other modules or exclusions: run cpython_baseline again")
    return base


def preload_env(args, env, prof_dir):
    """heapprof as users get it: preloaded, every process's profiles (and its
    exit profile) in a scratch directory, the default signal; a fixed seed."""
    os.makedirs(prof_dir)
    env.update(LD_PRELOAD=args.lib,
               HEAPPROF_OUT=os.path.join(prof_dir, "py.%p.%n.pb.gz"))
    if args.rate:
        env["HEAPPROF_RATE"] = args.rate
    if args.seed:
        env["HEAPPROF_SEED"] = args.seed


def summarize(rc, wall, cpu, cases):
    counts = {}
    for o in cases.values():
        counts[o] = counts.get(o, 0) + 1
    print(f"cpython: regrtest exit status {rc}; {wall:.1f} s wall, {cpu:.1f} s CPU; "
          f"{len(cases)} cases: "
          + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))


def finish_baseline(args, rc, result):
    """Without heapprof every listed module passes (or is skipped as a whole)
    and no case fails: otherwise the exclusion list is wrong here."""
    states, cases = result["states"], result["cases"]
    print_times(result["modules"], result["times"])
    ok = ("passed", "skipped", "skipped (resource denied)")
    unfinished = [f"{m} ({states.get(m, 'absent')})" for m in result["modules"]
                  if states.get(m) not in ok]
    bad = bad_cases(cases)
    if rc != 0 or bad or unfinished:
        fail("the suite does not pass here WITHOUT heapprof, so the exclusion "
             f"list ({args.exclude}) is wrong for this machine. regrtest "
             f"status {rc}; modules that did not pass: "
             f"{', '.join(unfinished) or 'none'}; failing cases: "
             f"{', '.join(bad) or 'none'}")
    with open(args.results, "w") as f:
        json.dump(result, f, indent=0)
    print("cpython: PASS (baseline recorded)")


def finish_heapprof(args, rc, result, base, prof_dir):
    """Under heapprof every module and case ends exactly as in the baseline,
    and heapprof was really there."""
    print_times(result["modules"], result["times"], base["times"])
    print(f"cpython: without heapprof {base['wall']:.1f} s wall, "
          f"{base['cpu']:.1f} s CPU; with it {result['wall']:.1f} s wall, "
          f"{result['cpu']:.1f} s CPU")
    with open(os.path.join(args.work, "results.json"), "w") as f:
        json.dump(result, f, indent=0)
    diffs = compare(base, result["states"], result["cases"])
    if rc != 0 or diffs:
        fail(f"heapprof changed the results (regrtest status {rc}, "
             f"{len(diffs)} differences):\n" + "\n".join(diffs))
    nprof = check_profiles(args, prof_dir, len(result["modules"]))
    shutil.rmtree(prof_dir)  # thousands of files: keep only the count
    print(f"cpython: PASS ({len(result['cases'])} cases as without heapprof, "
          f"{nprof} profiles)")


def main():
    args = parse_args()
    excl_modules, patterns = read_exclusions(args.exclude)
    listed = [w for w, _, _ in read_list(args.modules)]
    modules = [m for m in listed if m not in excl_modules]
    check_testsuite(args.python, listed)
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(os.path.join(args.work, "tmp"))
    env = clean_env(args.work)
    prof_dir = os.path.join(args.work, "profiles")
    if args.mode == "baseline":
        times_before = {}
        if os.path.exists(args.results):
            with open(args.results) as f:
                times_before = json.load(f).get("times", {})
            os.remove(args.results)
        ncases = check_exclusions_exist(args, modules, patterns, env)
        print(f"cpython: {len(modules)} modules, {ncases} test cases; "
              f"{len(patterns)} case patterns and {len(excl_modules)} modules excluded")
    else:
        base = load_baseline(args, modules, patterns)
        times_before = base["times"]
        preload_env(args, env, prof_dir)

    rc, wall, cpu, states, cases, times = run_regrtest(args, modules, patterns,
                                                       env, times_before)
    summarize(rc, wall, cpu, cases)
    result = {"modules": modules, "patterns": sorted(patterns), "states": states,
              "cases": cases, "times": times, "wall": wall, "cpu": cpu}
    if args.mode == "baseline":
        finish_baseline(args, rc, result)
    else:
        finish_heapprof(args, rc, result, base, prof_dir)


if __name__ == "__main__":
    main()
