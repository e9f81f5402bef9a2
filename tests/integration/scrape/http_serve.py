#!/usr/bin/python3
"""Focused tests of heapprof's /debug/pprof/ server as a server: one clause
of its serving behaviour per case, each case its own CTest test.

  http_serve.py --lib LIBHEAPPROF --target SCRAPE_TARGET --case NAME

The target is tests/programs/scrape_target, preloaded with heapprof serving
on a port of its own (HEAPPROF_HTTP=127.0.0.1:0, learnt from heapprof's
stderr line) at HEAPPROF_RATE=1, so every count is exact. It changes its
heap only when told on stdin ("a N SIZE" keeps N blocks of SIZE bytes at
kept_site, "f" frees them, "b K" makes K buckets at many_site) and says
"ok" when done. The clients here speak HTTP on raw sockets, so that
keep-alive, pipelining, half-sent heads and unread answers are exactly
what the case says.

Cases (runtime/http.c's header comment states the limits they rely on):
  keepalive        two GETs on one HTTP/1.1 connection, which stays open
                   between them; Connection: close is honoured (the answer
                   says it, then EOF); HTTP/1.0 without keep-alive is closed
  pipelined        three requests in one send(): three answers, in order,
                   on that connection
  no_head_of_line  20 silent sockets, 3 slowloris clients and an open
                   heap?seconds=5 window: a GET allocs and a GET block both
                   answer before the window does (and within 2 s)
  slow_reader      a client with a tiny receive buffer that does not read
                   its big heap?debug=1: another GET allocs answers (within
                   2 s); the slow one then completes when it reads
  cap_503          64 connections with half-sent heads fill the slots: the
                   65th gets 503 + Retry-After + X-Go-Pprof: 1 without
                   sending anything, before any of the 64 is answered; once
                   they are closed, a GET is served again
  closed_slots_reused  64 half-sent heads fill the slots; while the server
                   is stopped (SIGSTOP) all 64 clients close and a newcomer
                   sends GET allocs: on SIGCONT the server sees both in one
                   poll round, and the newcomer must get 200, not 503
  idle_reclaim     64 idle keep-alive connections fill the slots: a new one
                   is served, and the oldest idle one is the one closed
                   (twice: the first-answered, then the second)
  reclaim_spares_requests  64 idle keep-alive connections; while the
                   server is stopped the oldest sends GET allocs and a
                   newcomer connects with its own: both get 200, and idle 1
                   (the oldest one really idle) is the one closed
  windows_cap      8 heap?seconds=30 windows open: the 9th gets 503 +
                   Retry-After at once; when one window's client resets its
                   connection, a new heap?seconds=1 is served (200,
                   heap-delta)
  windows_freed_on_close  the same, the client leaving with an ordinary
                   close() (a FIN, as a client that gives up sends): its
                   window must be freed too (Go's server cancels the
                   request on the FIN and answers 500 at once)
  delta_heap       godeltaprof's semantics, exactly (rate 1): alloc_* since
                   the previous answer (the first: since start), inuse_*
                   absolute, all-zero samples left out, duration the time
                   between answers, filename delta_heap, Parca's and
                   Pyroscope's rules; debug=1 and seconds=5 get 400
  window_dates     heap?seconds=2 is dated by the end of its window, lasts
                   [2, 2.5) s, and is named heap-delta
  head_timeouts_still  a silent new connection gets 408 after the 5 s head
                   deadline (not before); a keep-alive connection idle for
                   6 s is not closed and serves its next request

Every case also checks that heapprof said nothing on stderr but its serving
line and that the target is alive at the end and exits 0 at the end of its
input. Time is asserted only where the clause is about time: durations
and dates of deltas (delta_heap's within 0.5 s of the client's measure, a
window's as above), a 408 not before the 5 s head deadline, and a 2 s bound
on the requests of no_head_of_line and slow_reader, each of which is also
checked by order (answered before the window; answered while the slow
reader has read nothing) — they take milliseconds, the one-connection
server made them wait 5 s and more. Otherwise only hang detectors: WAIT_S
for an answer due at once, HANG_S for a case. Exit status 0 and a PASS
line, or 1 with every violation listed.
"""

import argparse
import gzip
import os
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from pprofpb import decode_profile, string_at, value_index  # noqa: E402
from scrape_replay import rules  # noqa: E402

HOST = "127.0.0.1"
HANG_S = 55          # the whole case; CTest's timeout is above it
WAIT_S = 8.0         # a single answer that should come at once (hang detector)
LATENCY_MAX_S = 2.0  # no_head_of_line's and slow_reader's requests (ms, measured)
HEAD_DEADLINE_S = 5.0
CONNS_MAX = 64
WINDOWS_MAX = 8


class Fatal(Exception):
    """A violation after which the case cannot go on."""


FAILURES = []


def fail(msg):
    FAILURES.append(msg)


def note(msg):
    print(f"  {msg}", flush=True)


def expect(cond, msg):
    if not cond:
        fail(msg)
    return cond


# ---------------------------------------------------------------------------
# the target
# ---------------------------------------------------------------------------

class Target:
    """scrape_target under heapprof; its stderr read by a thread."""

    def __init__(self, lib, exe, work):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("HEAPPROF_") and k != "LD_PRELOAD"}
        env.update(LD_PRELOAD=lib, HEAPPROF_HTTP=f"{HOST}:0", HEAPPROF_RATE="1",
                   HEAPPROF_SIGNAL="none")
        self.lines, self.port = [], None
        self.up = threading.Event()
        self.start_mono = time.monotonic()
        self.proc = subprocess.Popen([exe], env=env, cwd=work, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        threading.Thread(target=self._read, daemon=True).start()
        if not self.up.wait(10):
            self.proc.kill()
            raise Fatal("scrape_target did not say heapprof's serving line; its "
                        "stderr: " + " | ".join(self.lines))

    def _read(self):
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.lines.append(line)
            m = re.fullmatch(r"heapprof: serving http://127\.0\.0\.1:(\d+)/debug/pprof/",
                             line)
            if m and self.port is None:
                self.port = int(m.group(1))
                self.up.set()

    def cmd(self, line):
        """Sends one command and waits for its "ok"."""
        self.proc.stdin.write((line + "\n").encode())
        self.proc.stdin.flush()
        r, _, _ = select.select([self.proc.stdout], [], [], 30)
        answer = self.proc.stdout.readline() if r else b""
        if answer != b"ok\n":
            raise Fatal(f"scrape_target answered {answer!r} to {line!r}")

    def stop(self):
        """SIGSTOP, returning once every thread is stopped: what clients do
        meanwhile, the server sees all in one poll round when it goes on."""
        os.kill(self.proc.pid, signal.SIGSTOP)
        deadline = time.monotonic() + 5
        task = f"/proc/{self.proc.pid}/task"
        while time.monotonic() < deadline:
            states = []
            for tid in os.listdir(task):
                try:
                    with open(f"{task}/{tid}/stat") as f:
                        states.append(f.read().rsplit(")", 1)[1].split()[0])
                except OSError:
                    pass
            if states and all(x in "tT" for x in states):
                return
            time.sleep(0.01)
        raise Fatal("scrape_target did not stop within 5 s of SIGSTOP")

    def resume(self):
        os.kill(self.proc.pid, signal.SIGCONT)

    def finish(self):
        """The target alive at the end, exiting 0 at the end of its input,
        and heapprof quiet on stderr but for its serving line."""
        if self.proc.poll() is not None:
            fail(f"scrape_target died during the case: status {self.proc.returncode}")
        else:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                rc = self.proc.wait(10)
                expect(rc == 0, f"scrape_target exited {rc} at the end of its input")
            except subprocess.TimeoutExpired:
                self.proc.kill()
                fail("scrape_target did not exit within 10 s of the end of its input")
        time.sleep(0.1)
        others = [x for x in self.lines if not x.startswith("heapprof: serving http")]
        expect(not others, f"heapprof said on stderr: {others[:5]}")

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


# ---------------------------------------------------------------------------
# raw HTTP
# ---------------------------------------------------------------------------

class Response:
    def __init__(self, status_line, headers, body, done_mono, done_wall):
        self.status_line = status_line
        parts = status_line.split(" ", 2)
        self.version = parts[0]
        self.status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
        self.headers = headers  # lower-case name -> value (the last one)
        self.body = body
        self.done_mono, self.done_wall = done_mono, done_wall

    def h(self, name):
        return self.headers.get(name.lower())

    def __repr__(self):
        return f"<{self.status_line!r} {len(self.body)} bytes>"


class Conn:
    """One client connection on a raw socket, with what it has read and
    not yet taken."""

    def __init__(self, port, rcvbuf=None, name="client"):
        self.name, self.port, self.buf, self.eof = name, port, b"", False
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:  # before connect: the window is offered then
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(WAIT_S)
        # Times are taken before the call: the server may act on it before
        # this thread runs again, and a lower bound (a deadline, a window)
        # must not be measured from later than the server's start.
        self.opened_mono = time.monotonic()
        self.sock.connect((HOST, port))
        self.sock.setblocking(False)
        self.sent_mono = None

    def send(self, data):
        self.sock.setblocking(True)
        self.sock.settimeout(WAIT_S)
        self.sent_mono = time.monotonic()
        self.sock.sendall(data)
        self.sock.setblocking(False)

    def request(self, path, version="HTTP/1.1", headers=(), method="GET"):
        self.send(req(self.port, path, version, headers, method))

    def _fill(self, deadline):
        """Reads what comes before `deadline` (what is there already, when
        that has passed): False when nothing came."""
        left = max(0.0, deadline - time.monotonic())
        r, _, _ = select.select([self.sock], [], [], left)
        if not r:
            return False
        try:
            data = self.sock.recv(1 << 20)
        except (ConnectionResetError, BrokenPipeError):
            data = b""
        except BlockingIOError:
            return True
        if data:
            self.buf += data
        else:
            self.eof = True
        return True

    def response(self, timeout=WAIT_S):
        """The next whole response, or Fatal at the deadline or an early EOF."""
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.buf:
            if self.eof:
                raise Fatal(f"{self.name}: the server closed the connection before "
                            f"an answer (had {self.buf[:80]!r})")
            if not self._fill(deadline):
                raise Fatal(f"{self.name}: no answer within {timeout:.1f} s "
                            f"(had {len(self.buf)} bytes)")
        head, rest = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        if "content-length" not in headers:
            raise Fatal(f"{self.name}: an answer with no Content-Length: {lines}")
        n = int(headers["content-length"])
        self.buf = rest
        while len(self.buf) < n:
            if self.eof:
                raise Fatal(f"{self.name}: the server closed the connection "
                            f"{len(self.buf)} bytes into a {n}-byte body")
            if not self._fill(deadline):
                raise Fatal(f"{self.name}: body not whole within {timeout:.1f} s "
                            f"({len(self.buf)} of {n} bytes)")
        body, self.buf = self.buf[:n], self.buf[n:]
        return Response(lines[0], headers, body, time.monotonic(), time.time_ns())

    def closed_within(self, timeout):
        """Whether the server closed the connection (EOF or reset) within
        `timeout` with nothing more sent: True, False (still open, silent),
        or the bytes it sent instead."""
        deadline = time.monotonic() + timeout
        while not self.eof:
            if self.buf:
                return self.buf
            if not self._fill(deadline):
                return False
        return self.buf if self.buf else True

    def quiet(self):
        """Nothing sent and not closed by the server, right now."""
        return self.closed_within(0.0) is False

    def close(self):
        self.sock.close()


def shown(state):
    """What closed_within saw, said."""
    return {True: "closed (EOF)", False: "still open"}.get(state) \
        if isinstance(state, bool) else f"sent {state[:80]!r}"


def req(port, path, version="HTTP/1.1", headers=(), method="GET"):
    lines = [f"{method} {path} {version}", f"Host: {HOST}:{port}",
             "User-Agent: http_serve"] + [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def get(port, path, timeout=WAIT_S, headers=()):
    """One GET on a fresh connection, closed afterwards."""
    c = Conn(port, name=f"GET {path}")
    try:
        c.request(path, headers=headers)
        return c.response(timeout)
    finally:
        c.close()


def profile_of(r, what):
    """The decoded profile of a 200 gzip answer, or Fatal."""
    if r.status != 200:
        raise Fatal(f"{what}: status {r.status_line!r}: {r.body[:160]!r}")
    if r.body[:2] != b"\x1f\x8b":
        raise Fatal(f"{what}: body is not gzip: {r.body[:16]!r}")
    return decode_profile(gzip.decompress(r.body))


def filename_of(r):
    m = re.fullmatch(r'attachment; filename="([^"]*)"', r.h("content-disposition") or "")
    return m.group(1) if m else None


def leaf_function(p, s):
    """The function of a sample's leaf frame (the innermost line of its
    first location)."""
    if not s["location_id"]:
        return None
    loc = p["location"][s["location_id"][0] - 1]
    if not loc["line"]:
        return None
    fn = p["function"][loc["line"][0]["function_id"] - 1]
    return string_at(p, fn["name"])


def site(p, fname):
    """{object size: [alloc_objects, alloc_space, inuse_objects, inuse_space]}
    of the samples whose leaf is `fname` (a size is the `bytes` label)."""
    idx = value_index(p)
    order = [idx[n] for n in ("alloc_objects/count", "alloc_space/bytes",
                              "inuse_objects/count", "inuse_space/bytes")]
    out = {}
    for s in p["sample"]:
        if leaf_function(p, s) != fname:
            continue
        size = next((lab["num"] for lab in s["label"]
                     if string_at(p, lab["key"]) == "bytes"), None)
        v = out.setdefault(size, [0, 0, 0, 0])
        for k, i in enumerate(order):
            v[k] += s["value"][i]
    return out


def is_go_error(r, status):
    why = []
    if r.status != status:
        why.append(f"status {r.status_line!r}")
    if not (r.h("content-type") or "").startswith("text/plain"):
        why.append(f"Content-Type {r.h('content-type')!r}")
    if r.h("x-go-pprof") != "1":
        why.append(f"X-Go-Pprof {r.h('x-go-pprof')!r}")
    return why


# ---------------------------------------------------------------------------
# the cases
# ---------------------------------------------------------------------------

def case_keepalive(t):
    port = t.port
    c = Conn(port, name="keep-alive client")
    c.request("/debug/pprof/allocs")
    r1 = c.response()
    expect(r1.status == 200, f"first GET allocs: {r1.status_line!r}")
    expect((r1.h("connection") or "").lower() != "close",
           "first GET allocs on HTTP/1.1 (no Connection header) was answered "
           "with 'Connection: close'")
    after = c.closed_within(0.5)
    if after is not False:
        fail(f"the connection did not stay open after the first answer: "
             f"{shown(after)} (the second GET is not sent)")
    else:
        c.request("/debug/pprof/heap?debug=1")
        r2 = c.response()
        expect(r2.status == 200 and r2.body.startswith(b"heap profile:"),
               f"second GET (heap?debug=1) on the same connection: {r2!r} "
               f"{r2.body[:40]!r}")
        expect(c.quiet(), "the connection did not stay open after the second answer")
    c.close()

    c = Conn(port, name="Connection: close client")
    c.request("/debug/pprof/", headers=[("Connection", "close")])
    r = c.response()
    expect(r.status == 200, f"GET with Connection: close: {r.status_line!r}")
    expect((r.h("connection") or "").lower() == "close",
           f"the answer to 'Connection: close' says Connection: {r.h('connection')!r}")
    end = c.closed_within(WAIT_S)
    expect(end is True, f"after answering 'Connection: close' the server did not "
           f"close: {shown(end)}")
    c.close()

    c = Conn(port, name="HTTP/1.0 client")
    c.request("/debug/pprof/", version="HTTP/1.0")
    r = c.response()
    expect(r.status == 200, f"HTTP/1.0 GET: {r.status_line!r}")
    expect((r.h("connection") or "").lower() == "close",
           f"the answer to HTTP/1.0 without keep-alive says Connection: "
           f"{r.h('connection')!r}")
    end = c.closed_within(WAIT_S)
    expect(end is True, f"HTTP/1.0 without keep-alive: the server did not close "
           f"after the answer: {shown(end)}")
    c.close()


def case_pipelined(t):
    port = t.port
    c = Conn(port, name="pipelining client")
    c.send(req(port, "/debug/pprof/allocs") + req(port, "/debug/pprof/block") +
           req(port, "/debug/pprof/heap?debug=1"))
    got = []
    for i in range(3):
        try:
            got.append(c.response())
        except Fatal as e:
            fail(f"answer {i + 1} of 3 pipelined requests: {e}")
            break
    if len(got) >= 1:
        r = got[0]
        expect(r.status == 200 and filename_of(r) == "allocs" and r.body[:2] == b"\x1f\x8b",
               f"answer 1 should be allocs (200, filename allocs, gzip): {r!r} "
               f"filename {filename_of(r)!r}")
    if len(got) >= 2:
        why = is_go_error(got[1], 404)
        expect(not why, f"answer 2 should be block's 404: {', '.join(why)}")
    if len(got) >= 3:
        r = got[2]
        expect(r.status == 200 and r.body.startswith(b"heap profile:"),
               f"answer 3 should be heap?debug=1 text: {r!r} {r.body[:40]!r}")
        expect(c.quiet(), "the connection was not left open after three pipelined "
               "HTTP/1.1 answers")
    c.close()


def slowloris(port, stop, out):
    """Sends a request head one byte every 300 ms until the server answers
    or closes, or `stop`."""
    head = req(port, "/debug/pprof/allocs")[:-2]  # never the blank line
    try:
        s = socket.create_connection((HOST, port), timeout=WAIT_S)
    except OSError as e:
        out.append(f"connect: {e}")
        return
    s.setblocking(False)
    i = 0
    while not stop.is_set():
        r, _, _ = select.select([s], [], [], 0.3)
        if r:
            try:
                data = s.recv(200)
            except OSError as e:
                data = repr(e).encode()
            out.append(data.split(b"\r\n", 1)[0].decode("latin-1") or "EOF")
            break
        try:
            s.send(head[i % len(head):i % len(head) + 1])
        except OSError as e:
            out.append(f"send: {e}")
            break
        i += 1
    s.close()


def case_no_head_of_line(t):
    port = t.port
    get(port, "/debug/pprof/allocs")  # the symbolizer's first start, paid here
    silent = [Conn(port, name=f"silent {i}") for i in range(20)]
    stop, loris_out, threads = threading.Event(), [], []
    for _ in range(3):
        th = threading.Thread(target=slowloris, args=(port, stop, loris_out))
        th.start()
        threads.append(th)
    try:
        w = Conn(port, name="heap?seconds=5")
        w.request("/debug/pprof/heap?seconds=5")
        time.sleep(0.3)
        a = Conn(port, name="GET allocs")
        b = Conn(port, name="GET block")
        a.request("/debug/pprof/allocs")
        b.request("/debug/pprof/block")
        answers, until = {}, time.monotonic() + WAIT_S
        for c in (a, b):
            try:
                answers[c.name] = c.response(max(0.0, until - time.monotonic()))
            except Fatal as e:
                fail(f"{e} (20 silent sockets, 3 slowloris clients and a "
                     f"heap?seconds=5 window open)")
        try:
            rw = w.response(max(0.0, w.sent_mono + 5 + WAIT_S - time.monotonic()))
        except Fatal as e:
            rw = None
            fail(f"the window: {e}")
        for c in (a, b):
            r = answers.get(c.name)
            if r is None:
                continue
            lat = r.done_mono - c.sent_mono
            note(f"{c.name}: {r.status_line} after {lat:.3f} s")
            if c is a:
                expect(r.status == 200 and filename_of(r) == "allocs",
                       f"GET allocs: {r!r}")
            else:
                why = is_go_error(r, 404)
                expect(not why, f"GET block: {', '.join(why)}")
            if rw is not None:
                expect(r.done_mono < rw.done_mono,
                       f"{c.name} was answered {r.done_mono - rw.done_mono:.3f} s "
                       f"after the heap?seconds=5 window: it waited behind it")
            expect(lat <= LATENCY_MAX_S, f"{c.name} took {lat:.3f} s (over "
                   f"{LATENCY_MAX_S} s)")
        if rw is not None:
            wl = rw.done_mono - w.sent_mono
            note(f"heap?seconds=5: {rw.status_line} after {wl:.3f} s, "
                 f"filename {filename_of(rw)!r}")
            expect(rw.status == 200 and filename_of(rw) == "heap-delta",
                   f"the window's answer: {rw!r}, filename {filename_of(rw)!r}")
            expect(wl >= 5.0, f"the 5 s window answered after {wl:.3f} s")
    finally:
        stop.set()
        for th in threads:
            th.join()
        for c in silent:
            c.close()
    note(f"slowloris clients ended with: {loris_out}")


def case_slow_reader(t):
    port = t.port
    t.cmd("b 20000")
    get(port, "/debug/pprof/allocs")  # the symbolizer's first start, paid here
    s = Conn(port, rcvbuf=2048, name="slow reader")
    note(f"slow reader's SO_RCVBUF: "
         f"{s.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)} bytes")
    s.request("/debug/pprof/heap?debug=1")
    r, _, _ = select.select([s.sock], [], [], 20)
    if not r:
        raise Fatal("the slow reader's heap?debug=1 never began to arrive (20 s)")
    time.sleep(0.2)  # the server fills what it can, then must wait
    g = Conn(port, name="GET allocs beside the slow reader")
    g.request("/debug/pprof/allocs")
    try:
        rg = g.response(WAIT_S)
        lat = rg.done_mono - g.sent_mono
        note(f"GET allocs beside the slow reader: {rg.status_line} after {lat:.3f} s")
        expect(rg.status == 200 and filename_of(rg) == "allocs", f"GET allocs: {rg!r}")
        expect(lat <= LATENCY_MAX_S, f"GET allocs beside a slow reader took "
               f"{lat:.3f} s (over {LATENCY_MAX_S} s)")
    except Fatal as e:
        fail(f"{e} (while a slow reader has not taken its heap?debug=1)")
    g.close()
    # Now it reads, with room to (a window of 64 KiB: the scale was agreed
    # at connect): it gets the whole answer (or is cut off), never hangs.
    s.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    t0 = time.monotonic()
    try:
        rs = s.response(20)
        note(f"slow reader: {rs.status_line}, {len(rs.body)} bytes read in "
             f"{time.monotonic() - t0:.2f} s once it read")
        expect(rs.status == 200 and rs.body.startswith(b"heap profile:"),
               f"the slow reader's answer: {rs!r} {rs.body[:40]!r}")
        # The server's send buffer grows to tcp_wmem's maximum at most: an
        # answer larger than that and the reader's buffer left the server
        # with bytes it could not hand to the kernel, so it had to wait.
        with open("/proc/sys/net/ipv4/tcp_wmem") as f:
            wmem_max = int(f.read().split()[2])
        expect(len(rs.body) > wmem_max + (64 << 10),
               f"the slow reader's heap?debug=1 is {len(rs.body)} bytes, not "
               f"more than tcp_wmem's maximum {wmem_max} + 64 KiB: the kernel "
               f"could take it all, so the server never had to wait (make more "
               f"buckets)")
    except Fatal as e:
        if s.eof:
            note(f"slow reader cut off by the server: {e}")
        else:
            fail(f"the slow reader, reading at last: {e}")
    s.close()


def case_cap_503(t):
    port = t.port
    get(port, "/debug/pprof/allocs")
    partial = req(port, "/debug/pprof/allocs")[:-2]
    held = []
    for i in range(CONNS_MAX):
        c = Conn(port, name=f"half-sent head {i}")
        c.send(partial)
        held.append(c)
    started = held[0].sent_mono
    time.sleep(0.5)  # all 64 taken in
    extra = Conn(port, name="65th connection")
    r = None
    try:
        r = extra.response(WAIT_S)
    except Fatal as e:
        fail(f"{e} (it sent nothing; every slot holds a half-sent head)")
    if r is not None:
        lat = r.done_mono - extra.opened_mono
        note(f"65th connection: {r.status_line} after {lat:.3f} s")
        why = is_go_error(r, 503)
        expect(not why, f"the 65th connection: {', '.join(why)}")
        expect(r.h("retry-after") == "1", f"the 503 has Retry-After "
               f"{r.h('retry-after')!r}, expected '1'")
        expect((r.h("connection") or "").lower() == "close",
               f"the 503 says Connection: {r.h('connection')!r}")
        end = extra.closed_within(WAIT_S)
        expect(end is True, f"after the 503 the connection was not closed: {shown(end)}")
        answered = [c.name for c in held if not c.quiet()]
        expect(not answered, f"the 503 came only after {len(answered)} of the 64 "
               f"half-sent heads were answered or closed (e.g. {answered[:3]}), "
               f"{time.monotonic() - started:.2f} s after they connected: it "
               f"waited for a slot instead of being refused at once")
    extra.close()
    for c in held:
        c.close()
    # As a client told Retry-After: 1 does; the same closes seen in the
    # same poll round as the newcomer are closed_slots_reused's clause.
    r = get(port, "/debug/pprof/allocs")
    note(f"GET allocs right after closing the 64: {r.status_line}")
    if r.status == 503 and r.h("retry-after") == "1":
        time.sleep(1.0)
        r = get(port, "/debug/pprof/allocs")
        note(f"GET allocs after its Retry-After: {r.status_line}")
    expect(r.status == 200, f"GET allocs after the 64 were closed: {r!r}")


def case_closed_slots_reused(t):
    port = t.port
    get(port, "/debug/pprof/allocs")
    held = []
    for i in range(CONNS_MAX):
        c = Conn(port, name=f"half-sent head {i}")
        c.send(req(port, "/debug/pprof/allocs")[:-2])
        held.append(c)
    time.sleep(0.5)  # all 64 taken in
    t.stop()
    try:
        for c in held:  # every slot's client leaves ...
            c.close()
        n = Conn(port, name="newcomer")  # ... and a newcomer asks, at once
        n.request("/debug/pprof/allocs")
        time.sleep(0.2)  # every packet in the server's sockets
    finally:
        t.resume()
    r = n.response()
    note(f"newcomer after the 64 clients left: {r.status_line}")
    expect(r.status == 200 and filename_of(r) == "allocs",
           f"the 64 clients holding the slots closed their connections, then a "
           f"newcomer sent GET allocs (the server seeing both in one poll round): "
           f"{r.status_line!r} {r.body[:80]!r}, not 200: the slots of clients "
           f"that left must be free for it")
    n.close()


def fill_idle(port):
    """CONNS_MAX keep-alive connections, each answered once and then idle,
    each since a later millisecond than the one before."""
    idle = []
    for i in range(CONNS_MAX):
        c = Conn(port, name=f"idle {i}")
        c.request("/debug/pprof/")
        r = c.response()
        if r.status != 200 or (r.h("connection") or "").lower() == "close":
            raise Fatal(f"idle {i}: {r.status_line!r}, Connection: "
                        f"{r.h('connection')!r} (an HTTP/1.1 keep-alive answer "
                        f"expected): cannot fill the slots with idle connections")
        idle.append(c)
        time.sleep(0.005)
    time.sleep(0.2)
    return idle


def case_reclaim_spares_requests(t):
    port = t.port
    idle = fill_idle(port)
    t.stop()
    try:
        idle[0].request("/debug/pprof/allocs")  # the oldest one is used again ...
        n = Conn(port, name="newcomer")  # ... as a newcomer asks
        n.request("/debug/pprof/allocs")
        time.sleep(0.2)  # every packet in the server's sockets
    finally:
        t.resume()
    for c in (idle[0], n):
        try:
            r = c.response()
            note(f"{c.name}: {r.status_line}")
            expect(r.status == 200 and filename_of(r) == "allocs",
                   f"{c.name}: {r.status_line!r}")
        except Fatal as e:
            fail(f"{e}: the oldest idle connection had just sent GET allocs when "
                 f"a newcomer came; the server closed it for the newcomer instead "
                 f"of idle 1, the oldest one that was really idle")
    end = idle[1].closed_within(WAIT_S)
    expect(end is True, f"idle 1 (the oldest one really idle) was not the one "
           f"closed: {shown(end)}")
    for c in idle + [n]:
        c.close()


def case_idle_reclaim(t):
    port = t.port
    idle = fill_idle(port)
    shut = [c.name for c in idle if not c.quiet()]
    if shut:
        raise Fatal(f"{len(shut)} idle connections were closed before any "
                    f"newcomer: {shut[:4]}")
    newcomers = []
    for k in range(2):
        n = Conn(port, name=f"newcomer {k}")
        n.request("/debug/pprof/allocs")
        try:
            r = n.response()
            note(f"newcomer {k} with 64 idle connections open: {r.status_line}")
            expect(r.status == 200 and filename_of(r) == "allocs",
                   f"newcomer {k}: {r!r}")
        except Fatal as e:
            fail(f"{e} (64 idle keep-alive connections hold the slots)")
        newcomers.append(n)
        end = idle[k].closed_within(WAIT_S)
        expect(end is True, f"after newcomer {k}, idle {k} (the oldest idle one "
               f"left) was not closed: {shown(end)}")
        time.sleep(0.2)
        shut = [c.name for c in idle[k + 1:] + newcomers if not c.quiet()]
        expect(not shut, f"after newcomer {k}, others were closed too, not only "
               f"the oldest idle one: {shut[:4]}")
    for c in idle + newcomers:
        c.close()


def fill_windows(port):
    """WINDOWS_MAX heap?seconds=30 windows, open and unanswered, once a 9th
    got its 503 at once: their connections."""
    get(port, "/debug/pprof/allocs")
    windows = []
    for i in range(WINDOWS_MAX):
        c = Conn(port, name=f"window {i}")
        c.request("/debug/pprof/heap?seconds=30")
        windows.append(c)
    time.sleep(0.5)
    early = [c.name for c in windows if not c.quiet()]
    expect(not early, f"of 8 heap?seconds=30 windows, these answered or closed "
           f"early: {early}")
    ninth = Conn(port, name="9th window")
    ninth.request("/debug/pprof/heap?seconds=30")
    try:
        r = ninth.response(WAIT_S)
        lat = r.done_mono - ninth.sent_mono
        note(f"9th heap?seconds=30: {r.status_line} after {lat:.3f} s")
        why = is_go_error(r, 503)
        expect(not why, f"the 9th window: {', '.join(why)}")
        expect(r.h("retry-after") == "1", f"the 9th window's 503 has Retry-After "
               f"{r.h('retry-after')!r}, expected '1'")
    except Fatal as e:
        fail(f"{e} (8 windows open: a 503 expected at once)")
    ninth.close()
    return windows


def window_served_after(port, how):
    """A heap?seconds=1 once one window's client left `how`: 200 and
    heap-delta. A 503 is retried after its Retry-After (twice at most), as
    a client does: the server may read this request before it sees the
    other connection end."""
    r = None
    for attempt in range(3):
        c = Conn(port, name=f"window after one client left ({how})")
        c.request("/debug/pprof/heap?seconds=1")
        try:
            r = c.response(1 + WAIT_S)
        except Fatal as e:
            fail(f"{e} (one of the 8 windows' clients had left: {how})")
            r = None
        c.close()
        if r is None:
            return
        note(f"heap?seconds=1 after a window's client left ({how}), try "
             f"{attempt + 1}: {r.status_line} after {r.done_mono - c.sent_mono:.3f} s, "
             f"filename {filename_of(r)!r}")
        if r.status != 503 or r.h("retry-after") != "1":
            break
        time.sleep(1.0)
    expect(r.status == 200 and filename_of(r) == "heap-delta",
           f"heap?seconds=1 once one of the 8 windows' clients left ({how}), "
           f"three tries a second apart: {r!r} {r.body[:100]!r}")
    if r.status == 200:
        bad = rules(profile_of(r, "heap?seconds=1"))
        expect(not bad, f"heap?seconds=1: {bad}")


def case_windows_cap(t):
    windows = fill_windows(t.port)
    # A client that is gone for sure: its connection reset (SO_LINGER 0).
    windows[0].sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                               struct.pack("ii", 1, 0))
    windows[0].close()
    window_served_after(t.port, "reset")
    still = [c.name for c in windows[1:] if not c.quiet()]
    expect(not still, f"the other 7 windows answered or closed early: {still}")
    for c in windows[1:]:
        c.close()


def case_windows_freed_on_close(t):
    windows = fill_windows(t.port)
    windows[0].close()  # an ordinary close: what a client that gives up does
    window_served_after(t.port, "close()")
    for c in windows[1:]:
        c.close()


def case_delta_heap(t):
    port = t.port
    c = Conn(port, name="delta_heap client")

    def delta(k):
        c.request("/debug/pprof/delta_heap")
        sent = time.monotonic()
        r = c.response()
        what = f"delta_heap {k}"
        expect(r.status == 200, f"{what}: {r.status_line!r} {r.body[:120]!r}")
        expect((r.h("content-type") or "").startswith("application/octet-stream"),
               f"{what}: Content-Type {r.h('content-type')!r}")
        expect(r.h("content-disposition") == 'attachment; filename="delta_heap"',
               f"{what}: Content-Disposition {r.h('content-disposition')!r}")
        p = profile_of(r, what)
        for b in rules(p):
            fail(f"{what}: {b}")
        zero = sum(1 for x in p["sample"] if not any(x["value"]))
        expect(zero == 0, f"{what} has {zero} all-zero samples (godeltaprof "
               f"leaves them out)")
        return p, sent, r.done_mono

    t.cmd("a 100 1000")
    time.sleep(1.5)  # the first delta's duration, the process's age, far from 0
    p1, s1, d1 = delta(1)
    k1 = site(p1, "kept_site")
    age_lo, age_hi = s1 - t.start_mono, d1 - t.start_mono
    note(f"delta_heap 1: kept_site {k1}, duration {p1['duration_nanos'] / 1e9:.3f} s "
         f"(process age {age_lo:.3f}-{age_hi:.3f} s)")
    expect(k1 == {1000: [100, 100000, 100, 100000]},
           f"delta_heap 1 at kept_site {{size: [alloc_objects, alloc_space, "
           f"inuse_objects, inuse_space]}}: {k1}, expected {{1000: [100, 100000, "
           f"100, 100000]}} (alloc since start, inuse now)")
    expect(age_lo - 0.5 <= p1["duration_nanos"] / 1e9 <= age_hi + 0.5,
           f"delta_heap 1: duration {p1['duration_nanos'] / 1e9:.3f} s, expected "
           f"the process's age {age_lo:.3f}-{age_hi:.3f} s +-0.5 s")
    expect(p1["time_nanos"] > 0, "delta_heap 1: no time_nanos")

    time.sleep(1.0)
    t.cmd("a 50 3000")
    p2, s2, d2 = delta(2)
    k2 = site(p2, "kept_site")
    note(f"delta_heap 2: kept_site {k2}, duration {p2['duration_nanos'] / 1e9:.3f} s "
         f"({s2 - s1:.3f} s between requests)")
    expect(k2 == {1000: [0, 0, 100, 100000], 3000: [50, 150000, 50, 150000]},
           f"delta_heap 2 at kept_site: {k2}, expected {{1000: [0, 0, 100, 100000], "
           f"3000: [50, 150000, 50, 150000]}} (alloc only since delta_heap 1, "
           f"inuse absolute)")
    expect(abs(p2["duration_nanos"] / 1e9 - (s2 - s1)) <= 0.5,
           f"delta_heap 2: duration {p2['duration_nanos'] / 1e9:.3f} s, the requests "
           f"were {s2 - s1:.3f} s apart")

    time.sleep(0.5)
    t.cmd("f")
    p3, s3, d3 = delta(3)
    k3 = site(p3, "kept_site")
    note(f"delta_heap 3: kept_site {k3}, duration {p3['duration_nanos'] / 1e9:.3f} s "
         f"({s3 - s2:.3f} s between requests)")
    expect(k3 == {}, f"delta_heap 3 after every kept block was freed: kept_site "
           f"{k3}, expected no sample (alloc 0 and inuse 0: godeltaprof leaves "
           f"all-zero samples out)")
    expect(abs(p3["duration_nanos"] / 1e9 - (s3 - s2)) <= 0.5,
           f"delta_heap 3: duration {p3['duration_nanos'] / 1e9:.3f} s, the requests "
           f"were {s3 - s2:.3f} s apart")
    expect(p1["time_nanos"] < p2["time_nanos"] < p3["time_nanos"],
           "delta_heap's time_nanos do not increase")

    for q in ("debug=1", "seconds=5"):
        c.request(f"/debug/pprof/delta_heap?{q}")
        try:
            r = c.response(WAIT_S)
            why = is_go_error(r, 400)
            expect(not why, f"delta_heap?{q}: {', '.join(why)} {r.body[:100]!r}")
        except Fatal as e:
            fail(f"delta_heap?{q}: {e}")
            break
    c.close()


def case_window_dates(t):
    port = t.port
    c = Conn(port, name="heap?seconds=2")
    c.request("/debug/pprof/heap?seconds=2")
    r = c.response(2 + WAIT_S)
    p = profile_of(r, "heap?seconds=2")
    dur, end = p["duration_nanos"], p["time_nanos"]
    note(f"heap?seconds=2: time_nanos {(end - r.done_wall) / 1e9:+.3f} s from our "
         f"clock at the answer, duration {dur / 1e9:.3f} s, filename {filename_of(r)!r}")
    expect(abs(end - r.done_wall) <= 10**9,
           f"heap?seconds=2: time_nanos is {(end - r.done_wall) / 1e9:+.3f} s from "
           f"the client's clock at the answer (a window is dated by its end)")
    expect(2 * 10**9 <= dur < 2.5e9, f"heap?seconds=2: duration_nanos {dur}")
    expect(filename_of(r) == "heap-delta",
           f"heap?seconds=2: Content-Disposition {r.h('content-disposition')!r}")
    for b in rules(p):
        fail(f"heap?seconds=2: {b}")
    c.close()


def case_head_timeouts_still(t):
    port = t.port
    k = Conn(port, name="keep-alive client")
    k.request("/debug/pprof/")
    r = k.response()
    expect(r.status == 200 and (r.h("connection") or "").lower() != "close",
           f"keep-alive GET: {r.status_line!r}, Connection: {r.h('connection')!r}")
    idle_since = time.monotonic()
    s = Conn(port, name="silent connection")
    try:
        rs = s.response(HEAD_DEADLINE_S + WAIT_S)
        after = rs.done_mono - s.opened_mono
        note(f"silent connection: {rs.status_line} after {after:.3f} s")
        expect(rs.status == 408, f"silent connection: {rs.status_line!r}")
        # now_ms() is whole milliseconds: the deadline may fall 1 ms early.
        expect(after >= HEAD_DEADLINE_S - 0.002, f"silent connection answered after "
               f"{after:.3f} s, before the {HEAD_DEADLINE_S} s head deadline")
        end = s.closed_within(WAIT_S)
        expect(end is True, f"after its 408 the silent connection was not closed: "
               f"{shown(end)}")
    except Fatal as e:
        fail(str(e))
    s.close()
    time.sleep(max(0.0, idle_since + 6.0 - time.monotonic()))
    state = k.closed_within(0.0)
    expect(state is False, f"a keep-alive connection idle for 6 s (longer than "
           f"the head deadline, shorter than the idle timeout) is not open and "
           f"silent: {shown(state)}")
    if state is False:
        k.request("/debug/pprof/allocs")
        r = k.response()
        note(f"keep-alive connection after 6 s idle: {r.status_line}")
        expect(r.status == 200 and filename_of(r) == "allocs",
               f"GET allocs after 6 s idle: {r!r}")
    k.close()


CASES = {name[5:]: fn for name, fn in globals().items() if name.startswith("case_")}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--lib", required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--case", required=True, choices=sorted(CASES))
    args = ap.parse_args()
    args.lib, args.target = os.path.abspath(args.lib), os.path.abspath(args.target)
    for what, path in (("--lib", args.lib), ("--target", args.target)):
        if not os.access(path, os.R_OK):
            raise SystemExit(f"http_serve: FAIL: {what} {path!r} not found")
    work = tempfile.mkdtemp(prefix="http-serve.")
    target = None

    def hang(signum, frame):
        fail(f"the case did not end within {HANG_S} s")
        raise Fatal("hang detector")

    signal.signal(signal.SIGALRM, hang)
    signal.alarm(HANG_S)
    started = time.monotonic()
    print(f"http_serve: case {args.case}", flush=True)
    try:
        target = Target(args.lib, args.target, work)
        CASES[args.case](target)
    except Fatal as e:
        fail(str(e))
    except OSError as e:
        fail(f"{type(e).__name__}: {e}")
    finally:
        signal.alarm(0)
        if target is not None:
            try:
                target.finish()
            finally:
                target.kill()
        for f in os.listdir(work):
            os.unlink(os.path.join(work, f))
        os.rmdir(work)
    took = time.monotonic() - started
    if FAILURES:
        print(f"http_serve: FAIL: {args.case}: {len(FAILURES)} violations "
              f"({took:.1f} s):")
        for f in FAILURES:
            print(f"  - {f}")
        return 1
    print(f"http_serve: PASS: {args.case} ({took:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
