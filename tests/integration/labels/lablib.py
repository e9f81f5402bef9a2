"""lablib — what the label tests (tests/integration/labels/*.py, issue 14)
share: driving tests/programs/lab_tenants, fetching from its HTTP server,
and reading a profile's labels both as stored (tests/integration/pprofpb.py)
and as `go tool pprof` shows them.

The runner, the verdict and the failure list are symbols/symlib.py's:
every check records its violation with fail() and goes on; a missing
prerequisite or a program that misbehaves raises Fatal.

A label set is written as a tuple of (key, value) sorted by key, () for
none; a profile's values per set are [alloc_objects, alloc_space,
inuse_objects, inuse_space], summed over the set's samples.
"""

import http.client
import os
import re
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "symbols"))
sys.path.insert(0, os.path.dirname(HERE))
import pprofpb  # noqa: E402
import symlib  # noqa: E402
from symlib import Fatal, expect, fail, note  # noqa: E402,F401

VALUES = ("alloc_objects/count", "alloc_space/bytes",
          "inuse_objects/count", "inuse_space/bytes")
ANSWER_S = 60  # one answer of the program or of its server (hang detector)


def cli(doc, body, name):
    """The command line every label test takes (--lib, --go, --binary:
    lab_tenants) and its run."""
    return symlib.cli(doc, ("lib", "go", "binary"), body, name)


def ls(*pairs):
    """A label set from key, value pairs: ls("tenant", "a")."""
    return tuple(sorted(zip(pairs[0::2], pairs[1::2])))


def show(labels):
    return "{" + ", ".join(f"{k}={v}" for k, v in labels) + "}" if labels else "{}"


# ---------------------------------------------------------------------------
# the program
# ---------------------------------------------------------------------------

class Program:
    """lab_tenants under heapprof at rate 1 (its commands are in its
    source), with `env` added. With http=True heapprof serves on a port of
    its own (HEAPPROF_HTTP=127.0.0.1:0), found from its stderr line."""

    def __init__(self, args, work, env=None, http=False):
        extra = {"LD_PRELOAD": args.lib, "HEAPPROF_RATE": "1",
                 "HEAPPROF_SIGNAL": "none",
                 "HEAPPROF_OUT": os.path.join(work, "unused.%p.%n.pb.gz")}
        if http:
            extra["HEAPPROF_HTTP"] = "127.0.0.1:0"
        extra.update(env or {})
        self.proc = subprocess.Popen([args.binary], env=symlib.clean_env(extra), cwd=work,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, bufsize=1)
        self.stderr, self.port = [], None
        self.up = threading.Event()
        threading.Thread(target=self._read_stderr, daemon=True).start()
        self._answers = []
        self._answered = threading.Condition()
        threading.Thread(target=self._read_stdout, daemon=True).start()
        ready = self._next_answer("start-up")
        if ready != "ready":
            self.kill()
            raise Fatal(f"lab_tenants said {ready!r}, not ready; stderr: {self.stderr}")
        if http and not self.up.wait(ANSWER_S):
            self.kill()
            raise Fatal(f"heapprof did not say its serving line; stderr: {self.stderr}")

    def _read_stderr(self):
        for line in self.proc.stderr:
            line = line.rstrip("\n")
            self.stderr.append(line)
            m = re.fullmatch(r"heapprof: serving http://127\.0\.0\.1:(\d+)/debug/pprof/", line)
            if m and self.port is None:
                self.port = int(m.group(1))
                self.up.set()

    def _read_stdout(self):
        for line in self.proc.stdout:
            with self._answered:
                self._answers.append(line.rstrip("\n"))
                self._answered.notify_all()
        with self._answered:
            self._answers.append(None)
            self._answered.notify_all()

    def _next_answer(self, what):
        with self._answered:
            if not self._answered.wait_for(lambda: self._answers, ANSWER_S):
                self.kill()
                raise Fatal(f"lab_tenants did not answer {what!r} within {ANSWER_S} s")
            line = self._answers.pop(0)
        if line is None:
            raise Fatal(f"lab_tenants ended before answering {what!r} "
                        f"(status {self.proc.poll()}); stderr: {self.stderr[-10:]}")
        return line

    def cmd(self, line):
        """Sends one command; its answer's words after "ok"."""
        try:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise Fatal(f"lab_tenants is gone before {line!r}; stderr: {self.stderr[-10:]}")
        answer = self._next_answer(line)
        if not answer.startswith("ok"):
            raise Fatal(f"lab_tenants: {line!r} -> {answer!r}")
        return answer.split()[1:]

    def push(self, key, value):
        rc = int(self.cmd(f"push {key} {value}")[0])
        if rc != 0:
            raise Fatal(f"heapprof_label_push({key!r}, {value!r}) returned {rc}")

    def pop(self):
        rc = int(self.cmd("pop")[0])
        if rc != 0:
            raise Fatal(f"heapprof_label_pop() returned {rc}")

    def alloc(self, group, n, size, labels=()):
        """n blocks of size bytes into group, under `labels` (pushed before,
        popped after); the realtime ns before and after."""
        for k, v in labels:
            self.push(k, v)
        t0, t1 = (int(x) for x in self.cmd(f"alloc {group} {n} {size}"))
        for _ in labels:
            self.pop()
        return t0, t1

    def free(self, group):
        return int(self.cmd(f"free {group}")[0])

    def write(self, path, kind):
        rc = int(self.cmd(f"write {path} {kind}")[0])
        if rc != 0 or not os.path.exists(path):
            raise Fatal(f"heapprof_write_profile({path}, {kind}) returned {rc}")
        return path

    def dump(self):
        out = self.cmd("dump")
        if int(out[0]) != 0 or len(out) < 2 or not os.path.exists(out[1]):
            raise Fatal(f"heapprof_dump answered {out}")
        return out[1]

    def signal(self, sig):
        self.proc.send_signal(sig)

    def get(self, path):
        """GET path from heapprof's server: the body (200 only)."""
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=ANSWER_S)
        try:
            c.request("GET", path)
            r = c.getresponse()
            body = r.read()
        except OSError as e:
            raise Fatal(f"GET {path}: {type(e).__name__}: {e}")
        finally:
            c.close()
        if r.status != 200:
            raise Fatal(f"GET {path}: {r.status} {body[:200]!r}")
        return body

    def finish(self):
        """Ends the input: the program returns from main (the exit
        profile). heapprof must have said nothing but its serving line."""
        self.proc.stdin.close()
        try:
            rc = self.proc.wait(ANSWER_S)
        except subprocess.TimeoutExpired:
            self.kill()
            raise Fatal(f"lab_tenants did not exit within {ANSWER_S} s of the end of its input")
        expect(rc == 0, f"lab_tenants exited {rc}; stderr: {self.stderr[-10:]}")
        said = [x for x in self.stderr if x.startswith("heapprof")
                and not x.startswith("heapprof: serving ")]
        expect(not said, f"heapprof said on stderr: {said[:5]}")

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def wait_for_file(path, what):
    """Waits (hang detector only) for a profile heapprof writes on its own:
    the file appears whole (written aside, then renamed)."""
    deadline = time.monotonic() + ANSWER_S
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise Fatal(f"{what}: no {path} within {ANSWER_S} s; "
                        f"there are {sorted(os.listdir(os.path.dirname(path)))}")
        time.sleep(0.05)
    return path


def save(work, name, body):
    path = os.path.join(work, name)
    with open(path, "wb") as f:
        f.write(body)
    return path


# ---------------------------------------------------------------------------
# a profile as stored
# ---------------------------------------------------------------------------

def load(path):
    try:
        return pprofpb.load(path)
    except (OSError, EOFError, pprofpb.DecodeError) as e:
        raise Fatal(f"cannot decode {path}: {type(e).__name__}: {e}")


def by_set(p):
    """{label set: [alloc_objects, alloc_space, inuse_objects, inuse_space]}
    summed over the samples of each set, sets whose four sums are all 0
    left out."""
    idx = pprofpb.value_index(p)
    missing = [v for v in VALUES if v not in idx]
    if missing:
        raise Fatal(f"the profile has no sample types {missing}: {sorted(idx)}")
    out = {}
    for s in p["sample"]:
        v = out.setdefault(pprofpb.label_set(p, s), [0, 0, 0, 0])
        for k, name in enumerate(VALUES):
            v[k] += s["value"][idx[name]]
    return {k: v for k, v in out.items() if any(v)}


def check_shape(p, what):
    """Every sample's labels as heapprof writes them: first the numeric
    `bytes` (the block size, no str, no unit), then its string labels,
    each with a str and no num or unit, keys in increasing order (the
    set's order, Go's)."""
    for n, s in enumerate(p["sample"]):
        labs = pprofpb.labels(p, s)
        if not labs or labs[0][0] != "bytes" or labs[0][1] is not None \
                or labs[0][2] <= 0 or labs[0][3] is not None:
            fail(f"{what}: sample {n}'s first label is {labs[:1]}, expected "
                 "the numeric bytes label (key bytes, num = block size)")
            continue
        rest = labs[1:]
        for k, v, num, unit in rest:
            if v is None or num != 0 or unit is not None or k == "bytes":
                fail(f"{what}: sample {n} has label {(k, v, num, unit)} after bytes: "
                     "only string labels (key, str) may follow it")
        keys = [k for k, *_ in rest]
        if keys != sorted(set(keys)):
            fail(f"{what}: sample {n}'s string labels are in the order {keys}, "
                 "expected increasing keys, each once")


def check_sets(p, want, what, exact=True):
    """The profile's values per label set against want ({set: [four]}).
    exact: no other set has any nonzero value."""
    got = by_set(p)
    for labels, values in want.items():
        have = got.get(labels, [0, 0, 0, 0])
        expect(have == list(values),
               f"{what}: {show(labels)} has [alloc_objects, alloc_space, inuse_objects, "
               f"inuse_space] = {have}, expected {list(values)}")
    if exact:
        extra = {show(k): v for k, v in got.items() if k not in want}
        expect(not extra, f"{what}: label sets nobody asked for, or values where none "
                          f"were expected: {extra}")
    return got


# ---------------------------------------------------------------------------
# go tool pprof
# ---------------------------------------------------------------------------

def pprof(go, args, what):
    return symlib.pprof(go, args, what)


RAW_SAMPLE = re.compile(r"^\s*((?:-?\d+\s+)*-?\d+): ((?:\d+ )*\d+)\s*$")
RAW_TAG = re.compile(r"(\w+):\[([^\]]*)\]")


def raw_by_set(text):
    """`go tool pprof -raw`: {label set: [the sample's values, summed]} as
    pprof read the profile; a sample's string labels are the line of
    key:[value] tags after it that is not its bytes:[…] line."""
    out, part, cur = {}, None, None

    def close():
        if cur is not None:
            v = out.setdefault(tuple(sorted(cur["tags"])), [0] * len(cur["values"]))
            for k, x in enumerate(cur["values"]):
                v[k] += x

    for line in text.splitlines():
        if line.startswith("Samples:"):
            part = "samples"
            continue
        if line.startswith(("Locations", "Mappings")):
            part = None
            continue
        if part != "samples":
            continue
        m = RAW_SAMPLE.match(line)
        if m:
            close()
            cur = {"values": [int(x) for x in m.group(1).split()], "tags": []}
        elif cur is not None and line.startswith(" " * 16):
            tags = RAW_TAG.findall(line)
            if tags and not (len(tags) == 1 and tags[0][0] == "bytes"):
                cur["tags"] += tags
    close()
    return {k: v for k, v in out.items() if any(v)}


def check_pprof_raw(go, path, p, what):
    """`go tool pprof -raw` reads the same values per label set as the
    decoder."""
    text = pprof(go, ["-raw", "-symbolize=none", path], what)
    got = raw_by_set(text)
    ours = by_set(p)
    expect(got == ours, f"{what}: go tool pprof -raw reads the label sets as "
                        f"{ {show(k): v for k, v in got.items()} }, the decoder as "
                        f"{ {show(k): v for k, v in ours.items()} }")
    return got


# ---------------------------------------------------------------------------
# Go's text form (?debug=1)
# ---------------------------------------------------------------------------

RECORD = re.compile(r"^(\d+): (\d+) \[(\d+): (\d+)\] @((?: 0x[0-9a-f]+)*)$")
LABELS_LINE = re.compile(r'^# labels: \{(.*)\}$')
PAIR = re.compile(r'"((?:[^"\\]|\\.)*)":"((?:[^"\\]|\\.)*)"')


def go_quote(s):
    """Go's %q of a label's string (no control characters in labels)."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def go_labels_line(labels):
    """The line Go's goroutine profile writes for a label set."""
    return "# labels: {" + ", ".join(f"{go_quote(k)}:{go_quote(v)}" for k, v in labels) + "}"


def unquote(s):
    return re.sub(r"\\(.)", r"\1", s)


def text_records(text, what):
    """The records of a debug=1 heap text: [{counts: [inuse objects,
    inuse bytes, alloc objects, alloc bytes], labels: set, line: the
    labels line or None, next: the line after the record's own lines
    (record and labels): its first frame row, or the blank line}]."""
    lines = text.splitlines()
    out = []
    for i, line in enumerate(lines):
        m = RECORD.match(line)
        if not m:
            if line.startswith("# labels:") and (i == 0 or not RECORD.match(lines[i - 1])):
                fail(f"{what}: a '# labels:' line that does not follow a record's "
                     f"'@' line: line {i + 1} {line!r} after {lines[i - 1] if i else ''!r}")
            continue
        rec = {"counts": [int(m.group(k)) for k in (1, 2, 3, 4)], "labels": (),
               "line": None, "next": lines[i + 1] if i + 1 < len(lines) else ""}
        lm = LABELS_LINE.match(rec["next"])
        if lm:
            rec["line"] = rec["next"]
            rec["next"] = lines[i + 2] if i + 2 < len(lines) else ""
            pairs = PAIR.findall(lm.group(1))
            rec["labels"] = tuple((unquote(k), unquote(v)) for k, v in pairs)
            if go_labels_line(rec["labels"]) != rec["line"]:
                fail(f"{what}: labels line {rec['line']!r} is not Go's form of the "
                     f"pairs it holds ({go_labels_line(rec['labels'])!r})")
        out.append(rec)
    return out


def text_by_set(recs):
    """{label set: [alloc_objects, alloc_space, inuse_objects,
    inuse_space]} of debug=1 records (rate 1: counts as they are)."""
    out = {}
    for r in recs:
        v = out.setdefault(tuple(sorted(r["labels"])), [0, 0, 0, 0])
        io, ib, ao, ab = r["counts"]
        for k, x in enumerate((ao, ab, io, ib)):
            v[k] += x
    return {k: v for k, v in out.items() if any(v)}

