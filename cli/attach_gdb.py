# heapprof attach / detach, run inside gdb by the heapprof command
# (cli/attach.c): gdb -nx -batch -p PID -ex "python exec(...)"
# of an anonymous memory file that holds this script with one line before
# it that defines P:
#   P = {"mode": "attach" | "detach", "lib": bytes, "settings": bytes,
#        "start": the process's start time (/proc/PID/stat field 22),
#        "idle_after": s, "sample": s, "wait": s}
# It prints what the library said, "HEAPPROF-MESSAGE <line>" each, and
# exactly one result line, "HEAPPROF-ATTACH <word> [detail]":
#   ok | rc N | dlerror TEXT | notloaded | nosym | nolibc NAME | timeout [loader] |
#   exited | reused | notattached | error TEXT
# and detaches. The command maps that line to its message.
#
# The rule it keeps: a function is called in the target only on a thread at
# a SAFE POINT, one that holds no allocator or loader lock. A thread is at
# one when it stands (a) at the first instruction of malloc, free, calloc
# or realloc as the program binds them, or (b) in a blocking system call
# (read, poll, epoll_wait, nanosleep, futex wait ...), and in both cases no
# frame of its whole backtrace is in ld.so, in libheapprof, in a signal
# handler, or in an allocator or loader function, and the backtrace unwinds
# to its end through code only (every frame's pc in an executable mapping
# of a file, or the vdso: a walk gdb guessed through data is refused). (A call made where a thread was stopped inside malloc holding
# the arena lock deadlocks the target: issue 15's research, section 0.3.)
# While the call runs gdb resumes every other thread, so locks the call
# needs and another thread holds are released.
#
# The order: at the attach stop, any idle thread (b) is taken at once.
# Otherwise breakpoints go on the four allocator entries and the process
# continues; the first acceptable hit is taken. If none comes within
# idle_after seconds, the process is stopped again every `sample` seconds
# (a SIGSTOP gdb swallows: the program never sees it) to look for an idle
# thread, until `wait` seconds: then "timeout", nothing changed.
#
# On the chosen thread: errno is saved (__errno_location), one anonymous
# page is mapped for the strings (no malloc: which allocator gdb would
# call is not ours to choose), then dlopen(lib, RTLD_NOW|RTLD_LOCAL),
# dlerror() if it failed, dlsym(handle, "heapprof_attach_start") and the
# call with the settings; for detach dlopen(lib, RTLD_NOW|RTLD_NOLOAD),
# heapprof_attach_stop(), dlclose of that extra reference. Then the page
# is unmapped and errno put back. Every function called is libc's own
# (looked up in libc.so.6, never by a name another module may export).
import os
import signal
import threading
import time

import gdb

RTLD_NOW, RTLD_LOCAL, RTLD_NOLOAD = 2, 0, 4
PROT_READ_WRITE, MAP_PRIVATE_ANONYMOUS = 3, 0x22
SI_USER = 0

ALLOCATOR_ENTRIES = ("malloc", "free", "calloc", "realloc")
# Attached, the program's slots lead to heapprof's own entries, where a
# thread holds no lock of heapprof's or of the allocator's either: at
# rate 1 the allocator's own entries are only ever reached from inside
# heapprof (refused), so a detach looks for these too (from the library's
# symbol table: hidden functions, found when it is not stripped).
HEAPPROF_ENTRIES = ("attach_malloc", "attach_free", "attach_calloc", "attach_realloc")

# x86-64 system calls a thread may be blocked in and be called from: gdb
# restarts them after the call as the kernel would after a stop.
BLOCKING_SYSCALLS = {
    0: "read", 7: "poll", 19: "readv", 23: "select", 34: "pause",
    35: "nanosleep", 43: "accept", 45: "recvfrom", 47: "recvmsg",
    61: "wait4", 128: "rt_sigtimedwait", 130: "rt_sigsuspend",
    202: "futex", 219: "restart_syscall", 230: "clock_nanosleep",
    232: "epoll_wait", 247: "waitid",
    270: "pselect6", 271: "ppoll", 281: "epoll_pwait", 288: "accept4",
    299: "recvmmsg", 441: "epoll_pwait2",
}
# restart_syscall: a nanosleep, clock_nanosleep, timed futex wait or
# poll/ppoll/select that a stop interrupted (any ptrace attach, our own
# earlier visit) resumes as this call, so it is as blocked as they were; a
# futex it resumes is always a wait (only waits are restarted so).
SYS_FUTEX = 202
# Functions that hold the loader's locks while they run.
LOADER_FRAMES = {"dlopen", "dlmopen", "dlclose", "dl_iterate_phdr", "dlopen_mode",
                 "dlsym", "dlvsym", "dladdr", "dladdr1", "dlinfo"}
FUTEX_WAITS = (0, 9)  # FUTEX_WAIT, FUTEX_WAIT_BITSET (private flag masked)

# A frame in one of these functions means the thread may hold an allocator
# lock, the loader's lock, the fork or exit locks, or stdio's list lock.
# Names are compared as given and without glibc's internal prefixes
# (__GI___libc_malloc → malloc, _IO_flush_all → flush_all).
REFUSED_FRAMES = {
    "malloc", "free", "calloc", "realloc", "reallocarray", "memalign",
    "posix_memalign", "aligned_alloc", "valloc", "pvalloc", "cfree",
    "malloc_usable_size", "malloc_trim", "malloc_stats", "malloc_info",
    "mallinfo", "mallinfo2", "mallopt", "mallocx", "rallocx", "xallocx",
    "sallocx", "dallocx", "sdallocx", "nallocx", "mallctl",
    "mallctlnametomib", "mallctlbymib", "malloc_stats_print",
    "dl_iterate_phdr", "dlopen", "dlmopen", "dlclose", "dlsym", "dlvsym",
    "dladdr", "dladdr1", "dlinfo", "dlerror", "dlopen_mode", "fork", "_Fork",
    "vfork", "exit", "_exit", "quick_exit", "run_exit_handlers", "freeres",
    "thread_freeres", "pthread_exit", "flush_all", "flush_all_lockp",
}
REFUSED_PREFIXES = ("je_", "tc_", "_Unwind_", "malloc_", "_dl_", "dl_")


class Done(Exception):
    """Ends the script with a result line."""


def result(line):
    print("HEAPPROF-ATTACH " + line, flush=True)


def note(text):
    """What `heapprof attach -v` shows: how the safe point was found."""
    print("heapprof-attach: " + text, flush=True)


def normalized(name):
    # Debug names carry glibc's internal prefixes: __GI___libc_malloc.
    for prefix in ("__GI_", "__libc_", "__", "_IO_"):
        while name.startswith(prefix) and len(name) > len(prefix):
            name = name[len(prefix):]
    return name


def refused_name(name):
    if not name:
        return False
    if name in REFUSED_FRAMES or name.startswith(REFUSED_PREFIXES):
        return True
    plain = normalized(name)
    return plain in REFUSED_FRAMES or plain.startswith(REFUSED_PREFIXES)


def module_of(addr):
    return os.path.basename(gdb.solib_name(addr) or "")


def is_libc(module):
    return module.startswith("libc.so") or module.startswith("libc-")


def refused_module(module):
    return module.startswith("ld-linux") or module.startswith("libheapprof")


def as_int(value):
    return int(value.cast(gdb.lookup_type("long")))


def backtrace_ok(thread, skip_first):
    """No frame in ld.so, libheapprof, a signal handler or a refused
    function (but the first, with skip_first: the entry it stands at),
    and the unwinder reached the end of the stack."""
    thread.switch()
    frame = gdb.newest_frame()
    if not skip_first:
        return older_ok(frame)
    if frame.type() == gdb.SIGTRAMP_FRAME or refused_module(module_of(frame.pc())):
        return False
    older = frame.older()
    if older is None:
        return frame.unwind_stop_reason() in (gdb.FRAME_UNWIND_NO_REASON,
                                              gdb.FRAME_UNWIND_OUTERMOST)
    return older_ok(older)


def idle_ok(thread):
    """Blocked in a system call it can be called from."""
    thread.switch()
    try:
        nr = as_int(gdb.parse_and_eval("$orig_rax"))
        op = as_int(gdb.parse_and_eval("$rsi")) & 0x7F
    except gdb.error:
        return False
    if nr not in BLOCKING_SYSCALLS:
        return False
    if nr == SYS_FUTEX and op not in FUTEX_WAITS:
        return False
    return backtrace_ok(thread, skip_first=False)


def live_threads():
    return [t for t in gdb.selected_inferior().threads() if t.is_valid()]


def idle_thread():
    for thread in live_threads():
        if idle_ok(thread):
            nr = as_int(gdb.parse_and_eval("$orig_rax"))
            note("thread %d blocked in %s" % (thread.num, BLOCKING_SYSCALLS[nr]))
            return thread
    return None


def at_entry_ok(thread, entries, own_entries):
    """At one of the entries, and the rest of the stack allowed; at one of
    heapprof's own entries (own_entries), its first frame is heapprof's."""
    thread.switch()
    frame = gdb.newest_frame()
    if frame.pc() in own_entries:
        older = frame.older()
        if older is None:
            return False
        older.select()
        ok = older_ok(older)
        frame.select()
        return ok
    return frame.pc() in entries and backtrace_ok(thread, True)


# Where code runs: the executable mappings of files, and the vdso, as
# /proc/PID/maps lists them at the stop being judged (code_refresh). A frame
# whose pc is anywhere else is an unwinder's guess, not a caller: without
# unwind tables gdb may walk "frames" through data until it meets a zero,
# which would otherwise pass for the end of the stack.
CODE = []


def code_refresh(pid):
    ranges = []
    with open("/proc/%d/maps" % pid) as maps:
        for line in maps:
            fields = line.split(None, 5)
            name = fields[5].strip() if len(fields) > 5 else ""
            if len(fields) < 5 or "x" not in fields[1]:
                continue
            if name.startswith("/") or name == "[vdso]":
                lo, hi = (int(x, 16) for x in fields[0].split("-"))
                ranges.append((lo, hi))
    CODE[:] = ranges


def in_code(pc):
    return any(lo <= pc < hi for lo, hi in CODE)


def older_ok(frame):
    """backtrace_ok from `frame` on."""
    depth = 0
    while True:
        if depth > 1024 or frame.type() == gdb.SIGTRAMP_FRAME or not in_code(frame.pc()):
            return False
        if refused_module(module_of(frame.pc())) or refused_name(frame.name()):
            return False
        older = frame.older()
        if older is None:
            return frame.unwind_stop_reason() in (gdb.FRAME_UNWIND_NO_REASON,
                                                  gdb.FRAME_UNWIND_OUTERMOST)
        frame, depth = older, depth + 1


def libc_function(name):
    """The address of libc's own `name`, never another module's."""
    try:
        addr = as_int(gdb.parse_and_eval("&" + name))
        if is_libc(module_of(addr)):
            return addr
    except gdb.error:
        pass
    listing = gdb.execute("info functions ^%s$" % name, to_string=True)
    for line in listing.splitlines():
        words = line.split()
        if len(words) == 2 and words[1] == name and words[0].startswith("0x"):
            addr = int(words[0], 16)
            if is_libc(module_of(addr)):
                return addr
    raise Done("nolibc " + name)


def bound_function(name):
    """`name` as the program binds it: gdb searches the executable, then
    the libraries in load order, which is the dynamic linker's order."""
    try:
        return as_int(gdb.parse_and_eval("&" + name))
    except gdb.error:
        return None


class Events:
    """The last stop, and whether the process has gone."""

    def __init__(self):
        self.stop = None
        self.exited = False
        gdb.events.stop.connect(self.on_stop)
        gdb.events.exited.connect(self.on_exit)

    def on_stop(self, event):
        self.stop = event

    def on_exit(self, event):
        self.exited = True


class Nudge:
    """Stops the process with a SIGSTOP after a delay, unless disarmed
    first. `sent` and `seen` count our SIGSTOPs so that none is left
    pending at the detach (it would stop the process for real)."""

    def __init__(self, pid):
        self.pid = pid
        self.lock = threading.Lock()
        self.timer = None
        self.sent = 0
        self.seen = 0

    def arm(self, delay):
        with self.lock:
            self.timer = threading.Timer(delay, self.fire)
            self.timer.daemon = True
            self.timer.start()

    def fire(self):
        with self.lock:
            if self.timer is None:
                return
            self.timer = None
            try:
                os.kill(self.pid, signal.SIGSTOP)
                self.sent += 1
            except OSError:
                pass

    def disarm(self):
        with self.lock:
            timer, self.timer = self.timer, None
        if timer is not None:
            timer.cancel()
            timer.join()

    def outstanding(self):
        return self.sent > self.seen


def our_sigstop(event):
    if not isinstance(event, gdb.SignalEvent) or event.stop_signal != "SIGSTOP":
        return False
    try:
        code = as_int(gdb.parse_and_eval("$_siginfo.si_code"))
        sender = as_int(gdb.parse_and_eval("$_siginfo._sifields._kill.si_pid"))
    except gdb.error:
        return True
    return code == SI_USER and sender == os.getpid()


# Fork-like system calls (fork, vfork, clone, clone3): a thread stopped at
# one's exit may have a child whose fork gdb has not handled yet.
FORK_SYSCALLS = (56, 57, 58, 435)


WAITED = {"loader": False}  # a candidate refused for another thread in ld.so


def others_ok(chosen, forks):
    """What the other threads allow: none may hold the loader's lock (a
    frame in ld.so or a loader function: the dlopen we call would wait for
    it, for ever if it waits for the chosen thread), and, with `forks`
    (software breakpoints are in the allocator's text), none may stand at
    the exit of a fork: its child, a copy of our breakpoints, is reported
    to gdb later and, the breakpoints deleted by then, would keep them and
    die of SIGTRAP at its next malloc. Another stop is awaited instead; by
    then gdb has handled the fork and cleaned the child."""
    ok = True
    for thread in live_threads():
        if thread.ptid == chosen.ptid:
            continue
        thread.switch()
        if forks:
            try:
                if as_int(gdb.parse_and_eval("$orig_rax")) in FORK_SYSCALLS:
                    note("thread %d is forking: waiting" % thread.num)
                    ok = False
                    break
            except gdb.error:
                pass
        frame, depth = gdb.newest_frame(), 0
        while frame is not None and depth <= 1024:
            name = frame.name() or ""
            if module_of(frame.pc()).startswith("ld-linux") or \
                    normalized(name).lstrip("_") in LOADER_FRAMES:
                note("thread %d is in the dynamic loader (%s): waiting" %
                     (thread.num, name or "ld.so"))
                ok = False
                WAITED["loader"] = True
                break
            frame, depth = frame.older(), depth + 1
        if not ok:
            break
    chosen.switch()
    return ok


def safe_thread(events, pid):
    code_refresh(pid)
    thread = idle_thread()
    if thread is not None and others_ok(thread, forks=False):
        return thread
    entries, own_entries = set(), set()
    for name in ALLOCATOR_ENTRIES:
        addr = bound_function(name)
        if addr is not None and not refused_module(module_of(addr)):
            entries.add(addr)
    if P["mode"] == "detach":
        for name in HEAPPROF_ENTRIES:
            addr = bound_function(name)
            if addr is not None and module_of(addr).startswith("libheapprof"):
                own_entries.add(addr)
    breakpoints = []
    for addr in sorted(entries | own_entries):
        bp = gdb.Breakpoint("*%d" % addr, internal=True)
        bp.silent = True
        breakpoints.append(bp)
    nudge = Nudge(pid)
    deadline = time.monotonic() + P["wait"]
    delay = P["idle_after"]
    try:
        while True:
            if not nudge.outstanding():
                if time.monotonic() >= deadline:
                    return None
                nudge.arm(delay)
                delay = P["sample"]
            events.stop = None
            try:
                gdb.execute("continue", to_string=True)
            finally:
                nudge.disarm()
            if events.exited:
                raise Done("exited")
            event = events.stop
            if our_sigstop(event):
                if nudge.seen == 0:
                    note("no allocator call in %.1f s: stopping the process every "
                         "%.2f s to look for an idle thread" % (P["idle_after"], P["sample"]))
                nudge.seen += 1
            chosen = None
            code_refresh(pid)  # a library may have come or gone meanwhile
            if isinstance(event, gdb.BreakpointEvent):
                thread = gdb.selected_thread()
                if at_entry_ok(thread, entries, own_entries):
                    note("thread %d at the entry of %s" %
                         (thread.num, gdb.newest_frame().name() or "an allocator"))
                    chosen = thread
            if chosen is None:
                chosen = idle_thread()
            if chosen is not None and not others_ok(chosen, forks=True):
                chosen = None
            if chosen is not None and not nudge.outstanding():
                return chosen
    finally:
        for bp in breakpoints:
            if bp.is_valid():
                bp.delete()


def call(addr, ret, params, args):
    typed = ", ".join("(%s)%d" % (t, a) for t, a in zip(params, args))
    expr = "((%s (*)(%s))%d)(%s)" % (ret, ", ".join(params) or "void", addr, typed)
    return as_int(gdb.parse_and_eval(expr))


def read_string(inferior, addr, limit=1024):
    data = bytes(inferior.read_memory(addr, limit))
    return data.split(b"\0", 1)[0].decode("utf-8", "replace")


def tell(inferior, messages):
    """What the library said during the call (heapprof_attach_messages,
    absent from an older library): one "HEAPPROF-MESSAGE" line each, which
    the command prints, instead of the program's stderr."""
    if messages == 0:
        return
    text = call(messages, "const char *", [], [])
    for line in read_string(inferior, text, 2048).splitlines() if text else []:
        print("HEAPPROF-MESSAGE " + line, flush=True)


def inject(thread, libc):
    """The calls, on `thread`. Returns the result line."""
    thread.switch()
    gdb.execute("frame 0", to_string=True)
    # The libraries the dlopen brings in need no symbols here: reading
    # them (libdw's and the rest) would only cost time with the process
    # stopped.
    gdb.execute("set auto-solib-add off", to_string=True)
    inferior = gdb.selected_inferior()
    lib, settings = P["lib"], P["settings"]
    symbol = b"heapprof_attach_start" if P["mode"] == "attach" else b"heapprof_attach_stop"
    said = b"heapprof_attach_messages"
    strings = lib + b"\0" + symbol + b"\0" + settings + b"\0" + said + b"\0"
    size = (len(strings) + 4095) // 4096 * 4096
    errno_at = call(libc["__errno_location"], "int *", [], [])
    saved_errno = bytes(inferior.read_memory(errno_at, 4))
    page = call(libc["mmap"], "void *",
                ["void *", "unsigned long", "int", "int", "int", "long"],
                [0, size, PROT_READ_WRITE, MAP_PRIVATE_ANONYMOUS, -1, 0])
    if page == -1:
        inferior.write_memory(errno_at, saved_errno)
        return "error mmap of %d bytes failed in the target" % size
    try:
        inferior.write_memory(page, strings)
        at_symbol = page + len(lib) + 1
        at_settings = at_symbol + len(symbol) + 1
        at_said = at_settings + len(settings) + 1
        if P["mode"] == "attach":
            flags = RTLD_NOW | RTLD_LOCAL
        else:
            flags = RTLD_NOW | RTLD_NOLOAD
        handle = call(libc["dlopen"], "void *", ["const char *", "int"], [page, flags])
        if handle == 0:
            text = call(libc["dlerror"], "char *", [], [])
            if P["mode"] == "detach":
                return "notloaded"
            return "dlerror " + (read_string(inferior, text) if text else "")
        entry = call(libc["dlsym"], "void *", ["void *", "const char *"], [handle, at_symbol])
        if entry == 0:
            line = "nosym"
        elif P["mode"] == "attach":
            line = "rc %d" % call(entry, "int", ["const char *"], [at_settings])
        else:
            line = "rc %d" % call(entry, "int", [], [])
        if entry != 0:
            tell(inferior, call(libc["dlsym"], "void *", ["void *", "const char *"],
                                [handle, at_said]))
        if P["mode"] == "detach":
            call(libc["dlclose"], "int", ["void *"], [handle])
        return "ok" if line == "rc 0" else line
    finally:
        call(libc["munmap"], "int", ["void *", "unsigned long"], [page, size])
        inferior.write_memory(errno_at, saved_errno)


def main():
    for command in ("set pagination off", "set confirm off", "set width 0",
                    "set print thread-events off", "set print inferior-events off",
                    "set unwindonsignal on",
                    # The program's signals reach it as without gdb...
                    "handle all nostop noprint pass",
                    "handle SIGINT nostop noprint pass",
                    # ...but for our own SIGSTOPs, which gdb swallows.
                    "handle SIGSTOP stop print nopass"):
        gdb.execute(command, to_string=True)
    inferior = gdb.selected_inferior()
    pid = inferior.pid
    if pid == 0:  # gdb could not attach; its own message says why
        raise Done("notattached")
    # The process stopped under gdb is the one the command checked only if
    # it has the start time the command read: else the pid was reused.
    with open("/proc/%d/stat" % pid) as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    if int(fields[19]) != P["start"]:
        raise Done("reused")
    events = Events()
    libc = {name: libc_function(name) for name in
            ("__errno_location", "mmap", "munmap", "dlopen", "dlerror",
             "dlsym", "dlclose")}
    thread = safe_thread(events, pid)
    if thread is None:
        raise Done("timeout loader" if WAITED["loader"] else "timeout")
    # No signal may interrupt the calls: a SIGSTOP from someone else is
    # swallowed rather than stopping them halfway.
    gdb.execute("handle SIGSTOP nostop noprint nopass", to_string=True)
    raise Done(inject(thread, libc))


def run():
    line = "error the script ended without a result"
    try:
        main()
    except Done as done:
        line = str(done)
    except gdb.error as err:
        text = str(err)
        gone = (gdb.selected_inferior().pid == 0 or "exited" in text or
                "No such process" in text or "without a process" in text)
        line = "exited" if gone else "error " + " ".join(text.split())
    result(line)
    if gdb.selected_inferior().pid != 0:
        gdb.execute("detach", to_string=True)


run()
