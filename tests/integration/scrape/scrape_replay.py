#!/usr/bin/python3
"""Replays Parca's and Grafana Alloy's scrape schedules against a real
heapprof'd service under load, and checks every answer as those engines
(and Pyroscope's ingestion) would.

  scrape_replay.py --lib LIBHEAPPROF --service LEAKY_SERVICE --go GO
                   [--seconds 70] [--rate 65536] [--save DIR]
  scrape_replay.py --recheck DIR          the checks alone, on a saved run

The service is examples/leaky_service, preloaded with heapprof serving
/debug/pprof/ on a port of its own (HEAPPROF_HTTP=127.0.0.1:0), and driven
by `leaky_service --load` for the whole run so that its memory grows.
Meanwhile, all at once:

  Parca   every 10 s, timeout 13 s, five targets on their own offsets:
          allocs, block, goroutine, mutex, profile?seconds=9;
          only a User-Agent header; one keep-alive connection per target
  Alloy   every 15 s, timeout 10 s: allocs, delta_heap, block, mutex,
          goroutine, profile?seconds=14; keep-alive, no Accept-Encoding.
          After each delta_heap answer the checker fetches allocs on the
          same connection, to pin the instant the window closed
  a human GET heap?seconds=10 on a connection of its own, mid-run
  `go tool pprof -raw` of /debug/pprof/heap, mid-run
  idle clients: 3 connected sockets that never send, 3 keep-alive
          connections left idle after one request (each reopened when the
          server closes it), and 2 slowloris clients sending a request head
          one byte a second

A reused keep-alive connection that the server closed while idle is
retried once on a new one, as Go's transport does (both engines are Go).

Checked (class Checker; every violation is collected and printed, then
the exit status is 1):
  - every allocs, delta_heap and heap answer: 200 within its scraper's
    timeout, Content-Type application/octet-stream, Content-Disposition
    attachment; filename="allocs"/"heap" (what delta_heap and ?seconds=
    name is reported), X-Content-Type-Options: nosniff, a gzip body;
  - every profile: Parca's normalizer and Pyroscope's validation (ids
    1..n in order, string_table[0] == "", no empty label key, one value
    per sample type, no '-' in sample type names, valid UTF-8, no zero
    location or function id); duration_nanos 0 on cumulative profiles,
    the window on ?seconds= (+-1 s) and delta_heap (since the previous
    delta_heap request, +-1 s); time_nanos within 2 s of our clock at
    the answer;
  - allocs scrapes in sequence: every sample (location addresses +
    labels) of one is in the next, its alloc values never lower;
  - block, goroutine, mutex, profile: 404 text/plain, X-Go-Pprof: 1,
    within 1 s;
  - delta_heap's alloc_space summed over its windows equals the growth of
    the cumulative alloc_space, and its inuse_space the allocs profile's
    (tolerances in Checker.delta_sums);
  - heap?seconds=10 answers after its window; go tool pprof succeeds and
    names cache_remember; our decoder agrees with go tool pprof;
  - the example's story holds in the last allocs profile: every sample
    under cache_remember carries a tenant and an endpoint label, all four
    tenants are there, and globex (its cache has no limit) holds more
    in-use bytes than the other three together;
  - no slowloris connection outlives 30 s; heapprof says nothing on
    stderr but its serving line; the service, its load and heapprof's
    server are alive at the end, and the service dies of the SIGTERM sent.

SCRAPE_REPLAY_CORRUPT=MODE (see CORRUPTIONS) damages one answer or one
decoded profile before the checks: each mode must make the run fail,
which shows the checks can fail. With --save DIR the answers are kept, and
--recheck DIR runs the checks again on them (with or without a corruption)
without replaying.
"""

import argparse
import gzip
import http.client
import json
import math
import os
import re
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

# The profile decoder is shared with the other Python tests
# (tests/integration/pprofpb.py).
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from pprofpb import (DecodeError, decode_profile, label_set,  # noqa: E402
                     string_at, strings, value_index)

HOST = "127.0.0.1"
PARCA_UA = "conprof/v0.22.0"
ALLOY_UA = "Alloy/v1.5.1 (linux/amd64)"
HUMAN_UA = "curl/7.88.1"
MEMORY = {"allocs", "delta_heap", "heap"}
NOT_SERVED = {"block", "goroutine", "mutex", "profile"}
FAST_404_S = 1.0  # the "never waits behind ?seconds=" guarantee, not a benchmark

# (engine, target, path, interval s, offset s, timeout s, user agent)
SCHEDULE = [
    ("parca", "memory", "/debug/pprof/allocs", 10, 0.7, 13, PARCA_UA),
    ("parca", "block", "/debug/pprof/block", 10, 2.3, 13, PARCA_UA),
    ("parca", "goroutine", "/debug/pprof/goroutine", 10, 4.1, 13, PARCA_UA),
    ("parca", "mutex", "/debug/pprof/mutex", 10, 6.2, 13, PARCA_UA),
    ("parca", "process_cpu", "/debug/pprof/profile?seconds=9", 10, 8.0, 13, PARCA_UA),
    ("alloy", "memory", "/debug/pprof/allocs", 15, 1.5, 10, ALLOY_UA),
    ("alloy", "godeltaprof_memory", "/debug/pprof/delta_heap", 15, 3.7, 10, ALLOY_UA),
    ("alloy", "block", "/debug/pprof/block", 15, 5.9, 10, ALLOY_UA),
    ("alloy", "mutex", "/debug/pprof/mutex", 15, 8.3, 10, ALLOY_UA),
    ("alloy", "goroutine", "/debug/pprof/goroutine", 15, 10.6, 10, ALLOY_UA),
    ("alloy", "process_cpu", "/debug/pprof/profile?seconds=14", 15, 12.9, 10, ALLOY_UA),
]
HUMAN_AT, HUMAN_SECONDS, HUMAN_TIMEOUT = 22.0, 10, 30
PPROF_AT, PPROF_TIMEOUT = 38.0, 60
IDLE_SILENT, IDLE_USED, SLOWLORIS = 3, 3, 2
SLOWLORIS_MAX_LIFE_S = 30  # a head deadline that never fires: far above 5 s


def endpoint(path):
    """'/debug/pprof/heap?seconds=10' -> 'heap'."""
    return path.split("?", 1)[0].rsplit("/", 1)[-1]


def now_ns():
    return time.time_ns()


# ---------------------------------------------------------------------------
# clients
# ---------------------------------------------------------------------------

def peer_closed(sock):
    """Whether an idle connection was closed (or written to) by the server:
    what Go's transport notices in its read loop before reusing one."""
    try:
        r, _, _ = select.select([sock], [], [], 0)
        return bool(r)
    except (OSError, ValueError):
        return True


class Client:
    """One keep-alive connection, as a scrape target's Go client has."""

    def __init__(self, port, timeout, headers, name):
        self.port, self.timeout, self.headers, self.name = port, timeout, headers, name
        self.conn = None
        self.opened = 0
        self.reused = 0
        self.retried = 0

    def _send(self, path, reused_box):
        reused = self.conn is not None and self.conn.sock is not None
        if reused and peer_closed(self.conn.sock):
            self.conn.close()
            reused = False
        reused_box[0] = reused
        if self.conn is None:
            self.conn = http.client.HTTPConnection(HOST, self.port, timeout=self.timeout)
        if self.conn.sock is None:
            self.conn.connect()
            self.opened += 1
        local = self.conn.sock.getsockname()[1]
        self.conn.putrequest("GET", path, skip_accept_encoding=True)
        for k, v in self.headers:
            self.conn.putheader(k, v)
        self.conn.endheaders()
        resp = self.conn.getresponse()
        return resp, resp.read(), reused, local

    def get(self, path):
        shot = {"client": self.name, "path": path, "endpoint": endpoint(path),
                "timeout": self.timeout, "send_mono": time.monotonic(),
                "send_wall": now_ns(), "status": None, "headers": {},
                "body": b"", "error": None, "reused": False, "retried": False}
        for attempt in (0, 1):
            reused_box = [False]
            try:
                resp, body, reused, local = self._send(path, reused_box)
                self.reused += reused
                shot.update(status=resp.status, body=body, local_port=local,
                            reused=reused,
                            headers={k.lower(): v for k, v in resp.getheaders()})
                break
            except (http.client.RemoteDisconnected, ConnectionResetError,
                    BrokenPipeError) as e:
                self.close()
                # Go retries a request that failed on a reused connection
                # before any answer came: the server closed it while idle.
                if attempt == 0 and reused_box[0]:
                    shot["retried"] = True
                    self.retried += 1
                    continue
                shot["error"] = f"{type(e).__name__}: {e}"
                break
            except Exception as e:  # noqa: BLE001 — every failure is a finding
                self.close()
                shot["error"] = f"{type(e).__name__}: {e}"
                break
        shot["done_mono"] = time.monotonic()
        shot["done_wall"] = now_ns()
        return shot

    def close(self):
        if self.conn is not None:
            self.conn.close()


# ---------------------------------------------------------------------------
# idle and slow clients: they must delay no one
# ---------------------------------------------------------------------------

def idle_holder(port, until, stats):
    """Keeps IDLE_SILENT connected sockets that never send and IDLE_USED
    keep-alive connections idle after one request; each one the server
    closes is reopened a second later, so the server has them all run."""
    slots = [{"kind": "silent"} for _ in range(IDLE_SILENT)] + \
            [{"kind": "used"} for _ in range(IDLE_USED)]
    for s in slots:
        s.update(sock=None, conn=None, opened=0.0, next_open=0.0)
    while time.monotonic() < until:
        for s in slots:
            now = time.monotonic()
            if s["sock"] is None and now >= s["next_open"]:
                open_idle(s, port, stats)
            elif s["sock"] is not None and peer_closed(s["sock"]):
                close_idle(s, stats, by_server=True)
        time.sleep(0.25)
    for s in slots:
        if s["sock"] is not None:
            close_idle(s, stats, by_server=False)


def open_idle(s, port, stats):
    s["next_open"] = time.monotonic() + 1.0
    s["answer"] = ""
    try:
        if s["kind"] == "silent":
            s["sock"] = socket.create_connection((HOST, port), timeout=5)
        else:
            c = http.client.HTTPConnection(HOST, port, timeout=10)
            c.request("GET", "/debug/pprof/", headers={"User-Agent": ALLOY_UA})
            c.getresponse().read()
            if c.sock is None:  # the server closed it after its answer
                stats[s["kind"]]["closed_at_once"] += 1
                return
            s["conn"], s["sock"] = c, c.sock
    except OSError as e:
        stats[s["kind"]]["errors"].append(f"{type(e).__name__}: {e}")
        return
    s["opened"] = time.monotonic()
    stats[s["kind"]]["opened"] += 1


def close_idle(s, stats, by_server):
    st = stats[s["kind"]]
    if by_server:
        try:
            data = s["sock"].recv(200)
        except OSError:
            data = b""
        line = data.split(b"\r\n", 1)[0].decode("latin-1")
        st["lifetimes"].append(round(time.monotonic() - s["opened"], 2))
        if line:
            st["answers"][line] = st["answers"].get(line, 0) + 1
    else:
        st["open_at_end"] += 1
    (s["conn"] or s["sock"]).close()
    s["sock"] = s["conn"] = None


def slowloris(port, until, stats):
    """Sends a request head one byte a second, reconnecting each time the
    server cuts it off."""
    while time.monotonic() < until:
        try:
            s = socket.create_connection((HOST, port), timeout=5)
            s.sendall(f"GET /debug/pprof/allocs HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
                      f"User-Agent: slowloris\r\nX-Slow: ".encode())
        except OSError as e:
            stats["errors"].append(f"{type(e).__name__}: {e}")
            time.sleep(1)
            continue
        opened, answer, by_server = time.monotonic(), "", False
        while time.monotonic() < until:
            try:
                r, _, _ = select.select([s], [], [], 1.0)
                if r:
                    data = s.recv(200)
                    answer = data.split(b"\r\n", 1)[0].decode("latin-1")
                    by_server = True
                    break
                s.send(b"a")
            except OSError as e:
                answer, by_server = f"{type(e).__name__}", True
                break
        s.close()
        stats["connections"].append({"life_s": round(time.monotonic() - opened, 2),
                                     "closed_by_server": by_server,
                                     "answer": answer})


# ---------------------------------------------------------------------------
# the run
# ---------------------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def clean_env():
    return {k: v for k, v in os.environ.items()
            if not k.startswith("HEAPPROF_") and k != "LD_PRELOAD"}


class Service:
    """leaky_service under heapprof, its stderr read by a thread."""

    def __init__(self, args, work):
        self.lines, self.port, self.http_port = [], None, None
        self.ready = threading.Event()
        self.heapprof_up = threading.Event()
        for _ in range(3):
            self.port = free_port()
            env = clean_env()
            env.update(LD_PRELOAD=args.lib, HEAPPROF_HTTP=f"{HOST}:0",
                       HEAPPROF_RATE=str(args.rate))
            self.start_wall = now_ns()
            self.proc = subprocess.Popen([args.service, f"{HOST}:{self.port}"],
                                         env=env, cwd=work, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL,
                                         stderr=subprocess.PIPE)
            self.reader = threading.Thread(target=self._read, daemon=True)
            self.reader.start()
            if self.ready.wait(10) and self.heapprof_up.wait(1):
                return
            self.stop()
            if not any("bind" in line for line in self.lines):
                break
        raise SystemExit("scrape_replay: FAIL: leaky_service did not start "
                         "serving under heapprof:\n  " + "\n  ".join(self.lines))

    def _read(self):
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.lines.append(line)
            m = re.match(r"heapprof: serving http://127\.0\.0\.1:(\d+)/debug/pprof/$", line)
            if m:
                self.http_port = int(m.group(1))
                self.heapprof_up.set()
            if line.startswith("leaky_service: serving on"):
                self.ready.set()

    def stop(self):
        """SIGTERM (leaky_service keeps the default action: that is how it
        stops), then the exit status; SIGKILL if it will not go."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc, killed = self.proc.wait(10), False
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc, killed = self.proc.wait(), True
        self.reader.join(2)
        return rc, killed


def at_time(t):
    delay = t - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def scrape_loop(entry, port, t0, until, shots, lock):
    engine, target, path, interval, offset, timeout, ua = entry
    client = Client(port, timeout, [("User-Agent", ua)], f"{engine}/{target}")
    k = 0
    while t0 + offset + k * interval < until:
        at_time(t0 + offset + k * interval)
        shot = client.get(path)
        shot.update(engine=engine, target=target, tick=k)
        post = None
        if target == "godeltaprof_memory":
            # The checker's own request, at once on the same connection:
            # cumulative counts at the instant the delta window closed.
            post = client.get("/debug/pprof/allocs")
            post.update(engine="check", target="after_delta", tick=k)
        with lock:
            shots.append(shot)
            if post is not None:
                post["after"] = len(shots) - 1
                shots.append(post)
        # A scrape that overran its interval skips the ticks it missed.
        k = max(k + 1, math.ceil((time.monotonic() - t0 - offset) / interval))
    client.close()
    with lock:
        shots.append({"client_stats": client.name, "opened": client.opened,
                      "reused": client.reused, "retried": client.retried})


def human(port, t0, shots, lock):
    at_time(t0 + HUMAN_AT)
    client = Client(port, HUMAN_TIMEOUT, [("User-Agent", HUMAN_UA), ("Accept", "*/*")],
                    "human")
    shot = client.get(f"/debug/pprof/heap?seconds={HUMAN_SECONDS}")
    shot.update(engine="human", target="heap_seconds", tick=0)
    client.close()
    with lock:
        shots.append(shot)


def go_pprof(go, port, t0, work, out):
    at_time(t0 + PPROF_AT)
    env = dict(clean_env(), PPROF_TMPDIR=work)
    url = f"http://{HOST}:{port}/debug/pprof/heap"
    start = time.monotonic()
    try:
        p = subprocess.run([go, "tool", "pprof", "-raw", "-timeout", "30", url],
                           env=env, cwd=work, capture_output=True, text=True,
                           timeout=PPROF_TIMEOUT)
        out.update(rc=p.returncode, stdout=p.stdout, stderr=p.stderr)
    except subprocess.TimeoutExpired:
        out.update(rc=None, stdout="", stderr=f"timed out after {PPROF_TIMEOUT} s")
    out["seconds"] = round(time.monotonic() - start, 3)


def replay(args, work):
    run = {"rate": args.rate, "seconds": args.seconds, "shots": [], "pprof": {},
           "idle": {k: {"opened": 0, "closed_at_once": 0, "lifetimes": [],
                        "answers": {}, "errors": [], "open_at_end": 0}
                    for k in ("silent", "used")},
           "slowloris": [{"connections": [], "errors": []} for _ in range(SLOWLORIS)],
           "failures_live": []}
    fail = run["failures_live"].append
    svc = Service(args, work)
    port = svc.http_port
    run["service_start_wall"] = svc.start_wall
    load = subprocess.Popen([args.service, "--load", f"{HOST}:{svc.port}",
                             str(args.seconds + 60)], env=clean_env(), cwd=work,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        lock = threading.Lock()
        t0 = time.monotonic() + 0.5
        until = t0 + args.seconds
        run["t0"] = t0
        threads = [threading.Thread(target=scrape_loop, name=f"{e[0]}/{e[1]}",
                                    args=(e, port, t0, until, run["shots"], lock))
                   for e in SCHEDULE]
        threads += [threading.Thread(target=human, name="human",
                                     args=(port, t0, run["shots"], lock)),
                    threading.Thread(target=go_pprof, name="go tool pprof",
                                     args=(args.go, port, t0, work, run["pprof"])),
                    threading.Thread(target=idle_holder, name="idle",
                                     args=(port, until, run["idle"]))]
        threads += [threading.Thread(target=slowloris, name=f"slowloris{i}",
                                     args=(port, until, run["slowloris"][i]))
                    for i in range(SLOWLORIS)]
        print(f"scrape_replay: heapprof serves port {port}; replaying "
              f"{args.seconds} s from now", flush=True)
        for t in threads:
            t.daemon = True
            t.start()
        for t in threads:  # every request is bounded by its timeout
            t.join(max(0.0, until + 45 - time.monotonic()))
            if t.is_alive():
                fail(f"client thread {t.name} still running 45 s after the replay "
                     f"ended: a request hangs past every timeout")
        run["replay_s"] = round(time.monotonic() - t0, 1)
        # Alive at the end: the service, its load, and heapprof's server.
        if svc.proc.poll() is not None:
            fail(f"leaky_service died during the run (status {svc.proc.returncode})")
        if load.poll() is not None:
            fail(f"the load ended before the replay did (status {load.returncode}): "
                 f"{load.stdout.read()} {load.stderr.read()}")
        final = Client(port, 10, [("User-Agent", ALLOY_UA)], "final")
        last = final.get("/debug/pprof/allocs")
        final.close()
        last.update(engine="final", target="memory", tick=0)
        run["shots"].append(last)
    finally:
        rc, killed = svc.stop()
        try:
            load_out, load_err = load.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            load.kill()
            load_out, load_err = load.communicate()
    run["service"] = {"status": rc, "killed": killed, "stderr": svc.lines,
                      "load_status": load.returncode,
                      "load_output": (load_out + load_err).strip()}
    return run


# ---------------------------------------------------------------------------
# the checks
# ---------------------------------------------------------------------------

def noise_bytes(lam, rate):
    """A bound on the un-sampled bytes of the samples that land in a short
    gap where lam are expected: Poisson, lam + 6 sigma + 6 (a false
    failure well under 1e-9), each sample standing for at most rate + S
    bytes (S / (1 - e^(-S/rate)) <= rate + S; leaky_service's largest
    object is 2048 bytes, 4096 leaves room)."""
    return (lam + 6 * math.sqrt(lam) + 6) * (rate + 4096)


def totals(p):
    idx = value_index(p)
    out = {name: 0 for name in idx}
    for s in p["sample"]:
        for name, i in idx.items():
            if i < len(s["value"]):
                out[name] += s["value"][i]
    return out


SAMPLE_TYPES = ["alloc_objects/count", "alloc_space/bytes", "inuse_objects/count",
                "inuse_space/bytes"]


def rules(p):
    """Parca's normalizer and Pyroscope's validation: the list of what is
    wrong with profile p."""
    bad = []
    st = strings(p)
    if not st or st[0] != b"":
        bad.append(f"string_table[0] is {st[0]!r}, not \"\"" if st else "no string table")
    for i, s in enumerate(st):
        try:
            s.decode("utf-8")
        except UnicodeDecodeError:
            bad.append(f"string_table[{i}] = {s!r} is not valid UTF-8")
    for kind in ("mapping", "function", "location"):
        ids = [x["id"] for x in p[kind]]
        if ids != list(range(1, len(ids) + 1)):
            bad.append(f"{kind} ids are not 1..{len(ids)} in order: {ids[:12]}")
    names = []
    for t, u in p["sample_type"]:
        name = string_at(p, t)
        names.append(f"{name}/{string_at(p, u)}")
        if name is None or name == "":
            bad.append(f"sample type name index {t} names no string")
        elif "-" in name:
            bad.append(f"sample type name {name!r} contains '-'")
    if sorted(names) != sorted(SAMPLE_TYPES):
        bad.append(f"sample types {names}, expected {SAMPLE_TYPES}")
    nloc, nfun, nmap = len(p["location"]), len(p["function"]), len(p["mapping"])
    for n, s in enumerate(p["sample"]):
        if len(s["value"]) != len(p["sample_type"]):
            bad.append(f"sample {n} has {len(s['value'])} values for "
                       f"{len(p['sample_type'])} sample types")
        if not s["location_id"]:
            bad.append(f"sample {n} has no location")
        for lid in s["location_id"]:
            if lid == 0 or lid > nloc:
                bad.append(f"sample {n} names location id {lid} (there are {nloc})")
        for lab in s["label"]:
            key = string_at(p, lab["key"])
            if not key:
                bad.append(f"sample {n} has a label whose key is {key!r}")
    for loc in p["location"]:
        if loc["mapping_id"] > nmap:
            bad.append(f"location {loc['id']} names mapping {loc['mapping_id']} "
                       f"(there are {nmap})")
        for line in loc["line"]:
            if line["function_id"] == 0 or line["function_id"] > nfun:
                bad.append(f"location {loc['id']} has a line naming function id "
                           f"{line['function_id']} (there are {nfun})")
    for f in p["function"]:
        if string_at(p, f["name"]) is None:
            bad.append(f"function {f['id']} name index {f['name']} is out of range")
    return bad[:10] + ([f"... and {len(bad) - 10} more"] if len(bad) > 10 else [])


def keyed(p):
    """Sample key -> [alloc_objects, alloc_space], the key being the
    location addresses and labels, as Alloy identifies a sample."""
    addr = {loc["id"]: loc["address"] for loc in p["location"]}
    idx = value_index(p)
    io, ib = idx.get("alloc_objects/count"), idx.get("alloc_space/bytes")
    out = {}
    for s in p["sample"]:
        key = (tuple(addr.get(i, -1) for i in s["location_id"]),
               tuple(sorted((string_at(p, lab["key"]), string_at(p, lab["str"]),
                             lab["num"], string_at(p, lab["num_unit"]))
                            for lab in s["label"])))
        v = out.setdefault(key, [0, 0])
        v[0] += s["value"][io]
        v[1] += s["value"][ib]
    return out


def describe_key(key):
    frames = " ".join(hex(a) for a in key[0][:4])
    return f"[{frames}{' ...' if len(key[0]) > 4 else ''}] {list(key[1])}"


class Checker:
    def __init__(self, run, go, work):
        self.run, self.go, self.work = run, go, work
        self.failures = list(run.get("failures_live", []))
        self.notes = []
        self.t0 = run["t0"]
        self.shots = [s for s in run["shots"] if "path" in s]
        for i, s in enumerate(run["shots"]):
            s["idx"] = i
        for s in self.shots:
            s["latency"] = s["done_mono"] - s["send_mono"]  # again in answer()
            s["label"] = (f"{s['client']} GET {s['path']} at T+"
                          f"{s['send_mono'] - self.t0:.1f}s")
            s["profile"], s["rules_ok"] = None, False

    def fail(self, msg):
        self.failures.append(msg)

    # ---- every answer ----
    def answer(self, s):
        s["latency"] = s["done_mono"] - s["send_mono"]
        if s["error"] is not None:
            self.fail(f"{s['label']}: no answer after {s['latency']:.2f} s: "
                      f"{s['error']}")
        elif s["endpoint"] in NOT_SERVED:
            self.not_served(s)
        elif s["endpoint"] not in MEMORY:
            self.fail(f"{s['label']}: unexpected endpoint")
        elif s["status"] != 200:
            self.fail(f"{s['label']}: status {s['status']}: {s['body'][:120]!r}")
        else:
            self.memory_head(s)
            self.memory_body(s)

    def not_served(self, s):
        h, why = s["headers"], []
        if s["status"] != 404:
            why.append(f"status {s['status']}")
        if not h.get("content-type", "").startswith("text/plain"):
            why.append(f"Content-Type {h.get('content-type')!r}")
        if h.get("x-go-pprof") != "1":
            why.append(f"X-Go-Pprof {h.get('x-go-pprof')!r}")
        if s["latency"] > FAST_404_S:
            why.append(f"took {s['latency']:.2f} s (over {FAST_404_S} s: it "
                       f"waited behind someone)")
        if why:
            self.fail(f"{s['label']}: expected a fast 404 text/plain with "
                      f"X-Go-Pprof: 1, got " + ", ".join(why))

    def memory_head(self, s):
        h, ep = s["headers"], s["endpoint"]
        if s["latency"] > s["timeout"]:
            self.fail(f"{s['label']}: answered after {s['latency']:.2f} s, over the "
                      f"{s['timeout']} s timeout of its scraper")
        ct = h.get("content-type", "")
        if not ct.startswith("application/octet-stream"):
            self.fail(f"{s['label']}: Content-Type {ct!r} does not start with "
                      f"application/octet-stream")
        cd = h.get("content-disposition", "")
        m = re.fullmatch(r'attachment; filename="([^"]+)"', cd)
        if m is None:
            self.fail(f"{s['label']}: Content-Disposition {cd!r} is not "
                      f"attachment; filename=\"...\"")
        elif "?" not in s["path"] and ep != "delta_heap" and m.group(1) != ep:
            self.fail(f"{s['label']}: Content-Disposition filename "
                      f"{m.group(1)!r}, expected {ep!r}")
        s["filename"] = m.group(1) if m else None
        if h.get("x-content-type-options") != "nosniff":
            self.fail(f"{s['label']}: X-Content-Type-Options "
                      f"{h.get('x-content-type-options')!r}, expected 'nosniff'")

    def memory_body(self, s):
        body = s["body"]
        if not body:
            return self.fail(f"{s['label']}: empty body")
        if body[:2] != b"\x1f\x8b":
            return self.fail(f"{s['label']}: body does not start with the gzip "
                             f"magic 1f 8b: {body[:8].hex()}")
        try:
            s["profile"] = decode_profile(gzip.decompress(body))
        except (OSError, EOFError, DecodeError) as e:
            self.fail(f"{s['label']}: the body is no readable profile: "
                      f"{type(e).__name__}: {e}")

    # ---- each profile ----
    def profile(self, s):
        p = s["profile"]
        bad = rules(p)
        for b in bad:
            self.fail(f"{s['label']}: {b}")
        s["rules_ok"] = not bad
        ep, dur, t = s["endpoint"], p["duration_nanos"], p["time_nanos"]
        seconds = re.search(r"[?&]seconds=(\d+)", s["path"])
        if seconds:
            want = int(seconds.group(1)) * 10**9
            if abs(dur - want) > 10**9:
                self.fail(f"{s['label']}: duration_nanos {dur / 1e9:.3f} s, expected "
                          f"{want / 1e9:.0f} s +-1 s (the window)")
        elif ep == "delta_heap":
            if dur <= 0:
                self.fail(f"{s['label']}: duration_nanos {dur}, a delta needs > 0")
        elif dur != 0:
            self.fail(f"{s['label']}: duration_nanos {dur} on a cumulative profile "
                      f"(Parca then takes it for a delta)")
        if abs(t - s["done_wall"]) > 2 * 10**9:
            self.fail(f"{s['label']}: time_nanos is {(t - s['done_wall']) / 1e9:+.3f} s "
                      f"from the test's clock at the answer (over 2 s; a delta is "
                      f"dated by the end of its window)")

    # ---- allocs: addresses stable, counts never decrease ----
    def allocs_chain(self):
        allocs = sorted((s for s in self.shots if s["endpoint"] == "allocs"
                         and s["rules_ok"]), key=lambda s: s["send_mono"])
        pairs = 0
        for b in allocs:
            before = [a for a in allocs if a["done_mono"] < b["send_mono"]]
            if not before:
                continue
            a = max(before, key=lambda a: a["done_mono"])
            ka, kb = keyed(a["profile"]), keyed(b["profile"])
            pairs += 1
            gone = [k for k in ka if k not in kb]
            if gone:
                self.fail(f"{b['label']}: {len(gone)} of the {len(ka)} samples of "
                          f"{a['label']} are missing (keyed by location addresses + "
                          f"labels), e.g. {describe_key(gone[0])}")
            down = [k for k in ka if k in kb and (kb[k][0] < ka[k][0] or kb[k][1] < ka[k][1])]
            if down:
                k = down[0]
                self.fail(f"{b['label']}: alloc values of {len(down)} samples went "
                          f"down since {a['label']}, e.g. {describe_key(k)}: "
                          f"{ka[k]} -> {kb[k]}")
        self.notes.append(f"allocs chain: {len(allocs)} profiles, {pairs} consecutive "
                          f"pairs compared")
        if pairs == 0:
            self.fail("no two allocs profiles in a row to compare")
        if allocs:
            first, last = totals(allocs[0]["profile"]), totals(allocs[-1]["profile"])
            grew = last.get("inuse_space/bytes", 0) - first.get("inuse_space/bytes", 0)
            self.notes.append(f"in-use grew {grew / 2**20:.1f} MiB from the first allocs "
                              f"scrape to the last")
            if grew <= 0:
                self.fail("inuse_space did not grow over the run: is the load running?")

    # ---- delta_heap: windows, and sums against the cumulative counts ----
    def delta_heap(self):
        deltas = sorted((s for s in self.shots if s["endpoint"] == "delta_heap"),
                        key=lambda s: s["send_mono"])
        self.delta_windows(deltas)
        self.delta_sums(deltas)

    def delta_windows(self, deltas):
        """Each duration_nanos is the time since the previous delta_heap
        request (the first: since heapprof started), +-1 s."""
        for i, d in enumerate(deltas):
            p, prev = d["profile"], deltas[i - 1] if i > 0 else None
            if p is None or p["duration_nanos"] <= 0:
                continue  # already a failure of its own
            dur = p["duration_nanos"]
            if prev is None:
                most = d["done_wall"] - self.run["service_start_wall"] + 10**9
                if dur > most:
                    self.fail(f"{d['label']}: the first delta_heap's duration "
                              f"{dur / 1e9:.3f} s is longer than the process has "
                              f"lived ({most / 1e9 - 1:.3f} s)")
            elif prev["status"] == 200:
                # The window runs from the previous request's instant to
                # this one's: each lies inside its request's send..answer.
                lo = d["send_wall"] - prev["done_wall"] - 10**9
                hi = d["done_wall"] - prev["send_wall"] + 10**9
                if not lo <= dur <= hi:
                    self.fail(f"{d['label']}: duration_nanos {dur / 1e9:.3f} s, but "
                              f"the previous delta_heap request was "
                              f"{(d['send_wall'] - prev['send_wall']) / 1e9:.3f} s "
                              f"before (+-1 s)")
            else:
                self.notes.append(f"{d['label']}: the previous delta_heap got no "
                                  f"answer; this window is not checked")

    def delta_sums(self, deltas):
        """delta_heap's alloc_space, summed over windows 2..k, against the
        growth of the cumulative alloc_space between the allocs profiles
        fetched right after delta_heap 1 and k (same connection, at once).

        Both come from the same bucket counters, un-sampled bucket by
        bucket linearly in the counts, so the sum telescopes: it differs
        from the growth only by what was sampled in the two gaps between a
        delta_heap's snapshot and the allocs snapshot after it (plus a byte
        of rounding per sample). A gap is at most the time from sending the
        delta_heap request to the allocs answer; at twice the run's mean
        allocation rate (bursts) it expects lam samples, and noise_bytes()
        bounds what they can weigh. inuse_* of each delta_heap is absolute:
        it must equal the allocs profile's after it, within one gap (allocs
        and frees in it, plus the one render buffer alive at a time)."""
        after = {s["after"]: s for s in self.shots if "after" in s}
        rate = self.run["rate"]
        pairs = [(d, after.get(d["idx"])) for d in deltas]
        good = [(d, a) for d, a in pairs
                if d["rules_ok"] and a is not None and a["rules_ok"]]
        if len(good) < 2:
            return self.fail(f"only {len(good)} delta_heap answers with their allocs "
                             f"fetch: the window sums cannot be checked")
        (d1, a1), (dk, ak) = good[0], good[-1]
        between = [d for d in deltas if d1["send_mono"] < d["send_mono"] <= dk["send_mono"]]
        if any(not d["rules_ok"] for d in between):
            return self.fail("a delta_heap answer between the first and last was lost: "
                             "the window sums cannot be checked")
        grown = totals(ak["profile"])["alloc_space/bytes"] - \
            totals(a1["profile"])["alloc_space/bytes"]
        summed = sum(totals(d["profile"])["alloc_space/bytes"] for d in between)
        span_s = (ak["done_wall"] - a1["done_wall"]) / 1e9
        per_s = max(grown, 0) / span_s if span_s > 0 else 0.0
        gap = {id(d): a["done_mono"] - d["send_mono"] for d, a in good}
        lam = 2 * per_s * (gap[id(d1)] + gap[id(dk)]) / rate
        nsamples = sum(len(d["profile"]["sample"]) for d in between) + \
            len(a1["profile"]["sample"]) + len(ak["profile"]["sample"])
        tol = noise_bytes(lam, rate) + 2 * nsamples
        self.notes.append(
            f"delta_heap: {len(between)} windows after the first sum alloc_space "
            f"{summed / 2**20:.3f} MiB; cumulative alloc_space grew "
            f"{grown / 2**20:.3f} MiB over {span_s:.1f} s ({per_s / 2**20:.2f} MiB/s); "
            f"difference {(summed - grown) / 2**20:+.3f} MiB "
            f"({100 * (summed - grown) / grown if grown else 0:+.3f} %), tolerance "
            f"{tol / 2**20:.3f} MiB (gaps {gap[id(d1)] * 1000:.0f} + "
            f"{gap[id(dk)] * 1000:.0f} ms, lambda {lam:.1f} samples)")
        if abs(summed - grown) > tol:
            self.fail(f"delta_heap: the alloc_space of its {len(between)} windows sums "
                      f"to {summed} bytes, but the cumulative alloc_space grew "
                      f"{grown} bytes between the allocs fetched right after the first "
                      f"and the last delta_heap: off by {summed - grown:+d}, tolerance "
                      f"{tol:.0f}")
        for d, a in good:
            inuse_d = totals(d["profile"])["inuse_space/bytes"]
            inuse_a = totals(a["profile"])["inuse_space/bytes"]
            lam = 2 * (2 * per_s * gap[id(d)] / rate) + 1
            tol = noise_bytes(lam, rate) + 2 * (len(d["profile"]["sample"]) +
                                                len(a["profile"]["sample"]))
            if abs(inuse_d - inuse_a) > tol:
                self.fail(f"{d['label']}: inuse_space {inuse_d} bytes, but the allocs "
                          f"profile fetched {gap[id(d)] * 1000:.0f} ms later says "
                          f"{inuse_a}: off by {inuse_d - inuse_a:+d}, tolerance {tol:.0f}")

    # ---- the human's ?seconds= and go tool pprof ----
    def human(self):
        hs = [s for s in self.shots if s.get("target") == "heap_seconds"]
        if not hs:
            return self.fail("the human's heap?seconds= request was never made")
        for h in hs:
            if h["status"] == 200 and h["latency"] < HUMAN_SECONDS - 0.01:
                self.fail(f"{h['label']}: answered after {h['latency']:.2f} s, before "
                          f"its {HUMAN_SECONDS} s window could close")
            self.notes.append(f"heap?seconds={HUMAN_SECONDS}: {h['status']} after "
                              f"{h['latency']:.2f} s, Content-Disposition filename "
                              f"{h.get('filename')!r}")

    def pprof(self):
        r = self.run["pprof"]
        if not r:
            return self.fail("go tool pprof was never run")
        self.notes.append(f"go tool pprof -raw .../heap: exit {r['rc']} after "
                          f"{r['seconds']} s")
        if r["rc"] != 0:
            return self.fail(f"go tool pprof -raw http://.../debug/pprof/heap failed "
                             f"(exit {r['rc']}):\n{r['stderr'][-2000:]}")
        for fn in ("cache_remember", "handle_request"):
            if fn not in r["stdout"]:
                self.fail(f"go tool pprof -raw of /debug/pprof/heap does not name "
                          f"{fn}:\n{r['stdout'][-2000:]}")

    def tenants(self):
        """leaky_service labels each request (tenant, endpoint); the
        tenant whose cache has no limit must stand out in the live heap
        (/allocs holds in-use too)."""
        last = last_heap(self.shots)
        if last is None or not last["rules_ok"]:
            return self.fail("no last allocs profile that passed the rules: no "
                             "tenant to look at")
        p = last["profile"]
        inuse = sample_type_index(p, "inuse_space/bytes")
        by_tenant, unlabelled = {}, 0
        for smp in p["sample"]:
            names = {string_at(p, fn["name"]) for loc_id in smp["location_id"]
                     for line in p["location"][loc_id - 1]["line"]
                     for fn in [p["function"][line["function_id"] - 1]]}
            labels = dict(label_set(p, smp))
            if "cache_remember" not in names:
                continue
            if "tenant" not in labels or "endpoint" not in labels:
                unlabelled += 1
                continue
            t = labels["tenant"]
            by_tenant[t] = by_tenant.get(t, 0) + smp["value"][inuse]
        self.notes.append("last allocs, inuse_space under cache_remember by tenant: " +
                          ", ".join(f"{t} {b / 2**20:.1f} MiB"
                                    for t, b in sorted(by_tenant.items())))
        if unlabelled:
            self.fail(f"{unlabelled} samples under cache_remember lack a tenant or "
                      f"endpoint label")
        want = {"acme", "globex", "initech", "umbrella"}
        if set(by_tenant) != want:
            self.fail(f"tenants in the last allocs profile: {sorted(by_tenant)}, "
                      f"want {sorted(want)}")
        others = sum(b for t, b in by_tenant.items() if t != "globex")
        if by_tenant.get("globex", 0) <= others:
            self.fail(f"globex holds {by_tenant.get('globex', 0)} B in use, not more "
                      f"than the other tenants' {others} B")

    def decoder(self):
        """Our decoder must read a profile as go tool pprof reads it: the
        sums of every value column, for the last allocs profile."""
        allocs = [s for s in self.shots if s["endpoint"] == "allocs" and s["rules_ok"]]
        if not allocs:
            return self.fail("no allocs profile passed the rules: nothing to "
                             "cross-check the decoder with")
        s = max(allocs, key=lambda s: s["send_mono"])
        path = os.path.join(self.work, "crosscheck.pb.gz")
        with open(path, "wb") as f:
            f.write(s["body"])
        p = subprocess.run([self.go, "tool", "pprof", "-raw", path], capture_output=True,
                           text=True, timeout=60)
        if p.returncode != 0:
            return self.fail(f"go tool pprof -raw cannot read {s['label']}:\n{p.stderr}")
        lines = p.stdout.split("Samples:\n", 1)[-1].split("\nLocations", 1)[0].splitlines()
        names = [n.replace("[dflt]", "") for n in lines[0].split()]
        sums = [0] * len(names)
        for line in lines[1:]:
            m = re.match(r"\s*(-?\d+(?:\s+-?\d+)*):", line)
            if m:
                for i, v in enumerate(m.group(1).split()):
                    sums[i] += int(v)
        ours = totals(s["profile"])
        theirs = dict(zip(names, sums))
        if ours != theirs:
            self.fail(f"the checker's decoder reads {s['label']} as {ours}, go tool "
                      f"pprof as {theirs}")

    # ---- idle clients, the service at the end ----
    def idle(self):
        for i, st in enumerate(self.run["slowloris"]):
            for c in st["connections"]:
                if not c["closed_by_server"] and c["life_s"] > SLOWLORIS_MAX_LIFE_S:
                    self.fail(f"slowloris {i}: a request head sent a byte a second "
                              f"stayed open {c['life_s']} s: no head deadline")

    def service(self):
        svc = self.run["service"]
        for line in svc["stderr"]:
            if line.startswith("heapprof") and not re.match(
                    r"heapprof: serving http://", line):
                self.fail(f"heapprof said on stderr: {line}")
        if svc["killed"]:
            self.fail("leaky_service did not exit within 10 s of SIGTERM (SIGKILLed)")
        elif svc["status"] not in (0, -signal.SIGTERM):
            self.fail(f"leaky_service ended with status {svc['status']} when stopped "
                      f"with SIGTERM (expected death by SIGTERM, its default action)")
        if svc["load_status"] != 0:
            self.fail(f"the load ended with status {svc['load_status']}: "
                      f"{svc['load_output']}")
        finals = [s for s in self.shots if s.get("engine") == "final"]
        if not finals or finals[0]["status"] != 200:
            self.fail("heapprof's server did not answer allocs after the run")


# ---------------------------------------------------------------------------
# planted bugs: SCRAPE_REPLAY_CORRUPT=MODE damages one input of the checks
# ---------------------------------------------------------------------------

def first(shots, endpoint, n=0, profile=True):
    c = [s for s in shots if s["endpoint"] == endpoint and s.get("status") == 200
         and (not profile or s.get("profile") is not None)]
    c.sort(key=lambda s: s["send_mono"])
    return c[min(n, len(c) - 1)] if c else None


def last_heap(shots):
    """The last cumulative answer with a profile: the engines scrape
    /allocs (which holds inuse_space too), and the only /heap is the
    human's ?seconds= window, whose values are changes."""
    c = [s for s in shots if s["endpoint"] == "allocs" and s.get("profile") is not None]
    return max(c, key=lambda s: s["send_mono"]) if c else None


def sample_type_index(p, name):
    return value_index(p)[name]


def rename_string(p, old, new):
    st = p["string_table"]
    st[st.index(old)] = new


def first_used_location(p):
    return p["location"][p["sample"][0]["location_id"][0] - 1]


def scale_values(p, name, factor):
    i = sample_type_index(p, name)
    for s in p["sample"]:
        s["value"][i] = int(s["value"][i] * factor)


def zero_biggest_alloc(p):
    i = sample_type_index(p, "alloc_space/bytes")
    max(p["sample"], key=lambda s: s["value"][i])["value"][i] = 0


def drop_label(p, key):
    for smp in p["sample"]:
        smp["label"] = [lab for lab in smp["label"]
                        if string_at(p, lab["key"]) != key]


def truncate_body(s):
    raw = gzip.decompress(s["body"])
    s["body"] = gzip.compress(raw[:len(raw) * 2 // 3])


# mode -> (stage, what it damages, how): stage "answer" runs before the
# answers are read, "profile" after they are decoded.
CORRUPTIONS = {
    "loc_id": ("profile", "allocs", lambda s: s["profile"]["location"].reverse()),
    "func_id": ("profile", "allocs", lambda s: s["profile"]["function"][0].update(id=99)),
    "mapping_id": ("profile", "allocs", lambda s: s["profile"]["mapping"][0].update(id=0)),
    "string0": ("profile", "allocs", lambda s: s["profile"]["string_table"].__setitem__(0, b"x")),
    "label_key": ("profile", "allocs", lambda s: s["profile"]["sample"][0]["label"][0].update(key=0)),
    "values": ("profile", "allocs", lambda s: s["profile"]["sample"][0]["value"].pop()),
    "dash": ("profile", "delta_heap", lambda s: rename_string(s["profile"], b"alloc_space", b"alloc-space")),
    "utf8": ("profile", "allocs", lambda s: s["profile"]["string_table"].append(b"caf\xe9")),
    "zero_loc": ("profile", "allocs", lambda s: s["profile"]["sample"][0]["location_id"].__setitem__(0, 0)),
    "zero_func": ("profile", "allocs", lambda s: first_used_location(s["profile"])["line"][0].update(function_id=0)),
    "duration": ("profile", "allocs", lambda s: s["profile"].update(duration_nanos=10**9)),
    "delta_duration": ("profile", "delta_heap#1", lambda s: s["profile"].update(
        duration_nanos=s["profile"]["duration_nanos"] * 2)),
    "time": ("profile", "allocs", lambda s: s["profile"].update(
        time_nanos=s["profile"]["time_nanos"] - 5 * 10**9)),
    "addr": ("profile", "allocs#2", lambda s: first_used_location(s["profile"]).update(
        address=first_used_location(s["profile"])["address"] + 1)),
    "alloc_down": ("profile", "allocs#-1", lambda s: zero_biggest_alloc(s["profile"])),
    "delta_sum": ("profile", "delta_heap#2", lambda s: scale_values(s["profile"], "alloc_space/bytes", 1.25)),
    "inuse": ("profile", "delta_heap#-1", lambda s: scale_values(s["profile"], "inuse_space/bytes", 1.2)),
    "nosniff": ("answer", "allocs", lambda s: s["headers"].pop("x-content-type-options")),
    "ctype": ("answer", "delta_heap", lambda s: s["headers"].update({"content-type": "text/html"})),
    "disposition": ("answer", "heap", lambda s: s["headers"].pop("content-disposition")),
    "gzip": ("answer", "allocs", lambda s: s.update(body=b"\x1f\x8c" + s["body"][2:])),
    "truncate": ("answer", "delta_heap", truncate_body),
    "slow404": ("answer", "mutex", lambda s: s.update(done_mono=s["done_mono"] + 1.5)),
    "status404": ("answer", "goroutine", lambda s: s.update(status=200)),
    "seconds_early": ("answer", "human", lambda s: s.update(done_mono=s["send_mono"] + 9)),
    "late": ("answer", "allocs", lambda s: s.update(done_mono=s["send_mono"] + 14)),
    "pprof_names": ("run", None, lambda r: r["pprof"].update(
        stdout=r["pprof"]["stdout"].replace("cache_remember", "x"))),
    "tenant": ("profile", "lastheap", lambda s: drop_label(s["profile"], "tenant")),
    "crash": ("run", None, lambda r: r["service"].update(status=-signal.SIGSEGV)),
    "stderr": ("run", None, lambda r: r["service"]["stderr"].append(
        "heapprof: cannot write profile")),
    "slowloris": ("run", None, lambda r: r["slowloris"][0]["connections"].append(
        {"life_s": 40.0, "closed_by_server": False, "answer": ""})),
}


def corrupt(ck, mode, stage):
    if not mode or CORRUPTIONS[mode][0] != stage:
        return
    _, where, how = CORRUPTIONS[mode]
    if stage == "run":
        how(ck.run)
        return print(f"scrape_replay: planted bug {mode!r}: damaged the run's record")
    ep, _, n = where.partition("#")
    shots = ck.shots
    if ep == "human":
        target = next((s for s in shots if s.get("target") == "heap_seconds"), None)
    elif ep == "lastheap":
        target = last_heap(shots)
    elif ep in NOT_SERVED:
        target = first(shots, ep, profile=False) or next(
            (s for s in shots if s["endpoint"] == ep), None)
    else:
        c = sorted((s for s in shots if s["endpoint"] == ep and s["status"] == 200
                    and (stage == "answer" or s["profile"] is not None)),
                   key=lambda s: s["send_mono"])
        target = c[int(n or 0)] if c and -len(c) <= int(n or 0) < len(c) else None
    if target is None:
        raise SystemExit(f"scrape_replay: corruption {mode}: no {where} answer to damage")
    how(target)
    print(f"scrape_replay: planted bug {mode!r}: damaged {target['label']}")


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------

def check(run, go, work, mode):
    ck = Checker(run, go, work)
    corrupt(ck, mode, "run")
    corrupt(ck, mode, "answer")
    for s in ck.shots:
        ck.answer(s)
    corrupt(ck, mode, "profile")
    for s in ck.shots:
        if s["profile"] is not None:
            ck.profile(s)
    ck.allocs_chain()
    ck.delta_heap()
    ck.human()
    ck.pprof()
    ck.tenants()
    ck.decoder()
    ck.idle()
    ck.service()
    return ck


def summary(ck):
    run = ck.run
    groups = {}
    for s in ck.shots:
        groups.setdefault((s["client"], s["path"]), []).append(s)
    print(f"\n{'client':<26} {'path':<34} {'n':>3} {'ok':>3}  latency ms min/med/max"
          f"      body bytes min/med/max")
    for (client, path), ss in sorted(groups.items()):
        ok = [s for s in ss if s["error"] is None]
        lat = sorted(s["latency"] * 1000 for s in ok) or [float("nan")]
        size = sorted(len(s["body"]) for s in ok) or [0]
        print(f"{client:<26} {path:<34} {len(ss):>3} {len(ok):>3}  "
              f"{lat[0]:7.1f} {statistics.median(lat):7.1f} {lat[-1]:8.1f}  "
              f"{size[0]:8d} {int(statistics.median(size)):8d} {size[-1]:8d}")
    conns = [s for s in run["shots"] if "client_stats" in s]
    print("\nconnections (opened / reused / retried after an idle close): " +
          ", ".join(f"{c['client_stats']} {c['opened']}/{c['reused']}/{c['retried']}"
                    for c in conns))
    for kind, st in run["idle"].items():
        life = st["lifetimes"]
        print(f"idle {kind}: opened {st['opened']}, closed by the server "
              f"{len(life)} (after {min(life, default=0)}-{max(life, default=0)} s, "
              f"answers {st['answers']}), closed at once {st['closed_at_once']}, "
              f"open at the end {st['open_at_end']}, errors {st['errors'][:3]}")
    for i, st in enumerate(run["slowloris"]):
        c = st["connections"]
        print(f"slowloris {i}: {len(c)} connections, lives "
              f"{[x['life_s'] for x in c]} s, answers "
              f"{sorted(set(x['answer'] for x in c))}")
    svc = run["service"]
    print(f"leaky_service: status {svc['status']} on SIGTERM; load: status "
          f"{svc['load_status']}, {svc['load_output']!r}")
    print("service stderr:\n  " + "\n  ".join(svc["stderr"]))
    for n in ck.notes:
        print(n)


def save(run, path):
    os.makedirs(path, exist_ok=True)
    out = dict(run, shots=[dict(s, body=s["body"].hex()) if "body" in s else s
                           for s in run["shots"]])
    with open(os.path.join(path, "run.json"), "w") as f:
        json.dump(out, f)


def load_saved(path):
    with open(os.path.join(path, "run.json")) as f:
        run = json.load(f)
    for s in run["shots"]:
        if "body" in s:
            s["body"] = bytes.fromhex(s["body"])
    return run


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lib")
    ap.add_argument("--service")
    ap.add_argument("--go", default="go")
    ap.add_argument("--seconds", type=int, default=70)
    ap.add_argument("--rate", type=int, default=65536)
    ap.add_argument("--save")
    ap.add_argument("--recheck")
    args = ap.parse_args()
    mode = os.environ.get("SCRAPE_REPLAY_CORRUPT", "")
    if mode and mode not in CORRUPTIONS:
        raise SystemExit(f"scrape_replay: SCRAPE_REPLAY_CORRUPT={mode}: one of "
                         f"{', '.join(CORRUPTIONS)}")
    if shutil.which(args.go) is None:
        raise SystemExit(f"scrape_replay: FAIL: {args.go!r} not found: go tool pprof "
                         f"is needed (scripts/setup.sh installs golang-go)")
    work = tempfile.mkdtemp(prefix="scrape-replay.")
    if args.recheck:
        run = load_saved(args.recheck)
    else:
        for what, path in (("--lib", args.lib), ("--service", args.service)):
            if not path or not os.access(path, os.R_OK):
                raise SystemExit(f"scrape_replay: FAIL: {what} {path!r} not found "
                                 f"(build the heapprof and leaky_service targets)")
        if args.seconds < 60:
            raise SystemExit("scrape_replay: --seconds must be at least 60")
        run = replay(args, work)
        if args.save:
            save(run, args.save)
    try:
        ck = check(run, args.go, work, mode)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary(ck)
    if ck.failures:
        print(f"\nscrape_replay: FAIL: {len(ck.failures)} violations:")
        for f in ck.failures:
            print(f"  - {f}")
        return 1
    print(f"\nscrape_replay: PASS: {len(ck.shots)} requests over {run['replay_s']} s "
          f"broke no rule")
    return 0


if __name__ == "__main__":
    sys.exit(main())
