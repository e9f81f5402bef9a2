/*
 * attach — `heapprof attach PID [options]` and `heapprof detach PID`.
 *
 * attach loads libheapprof.so into a running process and calls its
 * heapprof_attach_start with the options as "HEAPPROF_NAME=value\n" lines;
 * detach calls heapprof_attach_stop (the library stays loaded). The
 * injection is gdb's, driven by attach_gdb.py (embedded in this program and
 * handed to gdb in an anonymous memory file, so that no script is left on
 * disk whatever happens to the command), which calls into the process only
 * from a thread at a safe point: see the script's header.
 *
 * The invariants:
 * - Every refusal comes BEFORE gdb runs, as one line on stderr with exit
 *   status 1, and the target is untouched by it (the checks only read /proc
 *   and ELF files: target.c); the line says so. Once gdb runs, its one
 *   result line decides the message; gdb's own output is shown only on
 *   failure. A bad option value is a usage error (status 2), judged by the
 *   library's own parsers as for `run`.
 * - One command at a time per process: attach and detach hold PID's lock
 *   (state.h) from before their checks of the attach state until the record
 *   is settled; a second one is refused at once, untouched.
 * - The record is written, pending, before gdb runs, and settled after gdb
 *   has finished by "the keeper": a child of this command in a session of
 *   its own, which runs gdb, waits for it (with a deadline), settles the
 *   record and lets go of the lock. Killing this command (even with
 *   SIGKILL, or ^C, SIGTERM or SIGHUP) therefore never kills gdb — which
 *   would crash the process if it happened during a call or while gdb's
 *   breakpoints are in its code — and never leaves an attach without a
 *   record: the process ends up attached with its record, or untouched.
 *   This command waits for the keeper and reports; it holds off SIGINT,
 *   SIGTERM, SIGHUP and SIGQUIT meanwhile, which act once it has reported.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "attach_gdb_py.h" /* attach_gdb_py[], generated from attach_gdb.py */
#include "cli.h"
#include "config.h"
#include "heapprof.h"
#include "state.h"
#include "target.h"

/* gdb is killed after this long. The script gives up looking for a safe
 * point well before (SAFE_POINT_WAIT_S); what is left is for gdb reading
 * symbols and the calls themselves. Killing gdb in the middle of a call
 * crashes the process when the call returns (measured: the return address
 * is gdb's breakpoint, which nobody removes), and killing it while its
 * breakpoints are in the allocator's entries crashes it at the next
 * allocation (SIGTRAP): hence a generous figure, for a hung gdb only. */
#define GDB_DEADLINE_S 60
#define SAFE_POINT_WAIT_S 10
#define IDLE_AFTER_S "2.0"
#define SAMPLE_EVERY_S "0.25"

static const char usage_attach[] =
    "usage: heapprof attach PID [options]\n"
    "Loads libheapprof into the running process PID (with gdb) and profiles\n"
    "it from now on; `heapprof dump PID` then works as for `heapprof run`.\n"
    "Needs gdb, and the right to ptrace PID: the same user and\n"
    "kernel.yama.ptrace_scope 0, or root / CAP_SYS_PTRACE.\n"
    "  --rate BYTES       mean bytes between samples; 1 = every allocation\n"
    "  --out TEMPLATE     profile paths: %p pid, %n sequence, %t time; a relative\n"
    "                     one is taken from this directory (default\n"
    "                     heapprof.%p.%n.pb.gz here)\n"
    "  --http ADDR        serve /debug/pprof/ on ADDR, e.g. 127.0.0.1:6060\n"
    "  --interval SECS    a profile every SECS seconds\n"
    "  --growth BYTES     a profile per BYTES of in-use growth\n"
    "  --peak             keep and write the high-water-mark profile\n"
    "  --signal SIG       the dump signal (default USR2), or none\n"
    "  --seed N, --depth N, --demangle STYLE   as for heapprof run\n"
    "  -v, --verbose      say how the process was entered\n"
    "HEAPPROF_* variables of this shell are not passed on: use the options.\n";

static const char usage_detach[] =
    "usage: heapprof detach PID [-v]\n"
    "Stops profiling a process `heapprof attach` started: sampling ends and\n"
    "the process's own allocator entry points are restored. The library\n"
    "stays loaded; attach again at will.\n";

typedef struct request {
  int detach;
  pid_t pid;
  int verbose;
  char settings[2 * CONFIG_PATH_MAX];  /* "HEAPPROF_X=v\n" lines */
  size_t len;
  char out[CONFIG_PATH_MAX];           /* absolute profile template */
  int signal;                          /* the dump signal, 0 = none */
  const char *http;
  char lib[PATH_MAX];                  /* the path the target will dlopen */
  unsigned long long start;            /* the process's start time */
  char dir[PATH_MAX];                  /* the state directory */
  int dirfd;
  int lockfd;                          /* PID's lock while held here, else -1 */
  attach_state_t old;                  /* the record found under the lock */
  int have_old;
  int wrote_pending;                   /* this command's pending record is on disk */
} request_t;

/* The request: static, so that refuse() can let go of its lock. */
static request_t req = {.dirfd = -1, .lockfd = -1};

/* ---- options ---- */

static void add_setting(request_t *r, const char *var, const char *value) {
  int n = snprintf(r->settings + r->len, sizeof r->settings - r->len, "%s=%s\n", var, value);
  if (n < 0 || (size_t)n >= sizeof r->settings - r->len)
    die(2, "too many settings");
  r->len += (size_t)n;
}

/* Checks and records one option's value: one line (the settings are
 * lines), then the library's own parser. */
static void take_option(request_t *r, const char *opt, const char *var, const char *value) {
  char buf[65];
  if (value != NULL && strchr(value, '\n') != NULL)
    die(2, "%s \"%s\" is not valid: expected one line", opt, shown(value, buf));
  if (value != NULL && strcmp(var, "HEAPPROF_OUT") == 0 && value[0] != '/' && value[0]) {
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof cwd) == NULL)
      die(1, "cannot tell the current directory for --out: %s", strerror(errno));
    int n = snprintf(r->out, sizeof r->out, "%s/%s", strcmp(cwd, "/") ? cwd : "", value);
    if (n < 0 || (size_t)n >= sizeof r->out)
      die(2, "%s \"%s\" is not valid: too long once made absolute", opt, shown(value, buf));
    value = r->out;
  }
  check_value(opt, var, value);
  if (strcmp(var, "HEAPPROF_OUT") == 0 && value != r->out)
    snprintf(r->out, sizeof r->out, "%s", value);
  else if (strcmp(var, "HEAPPROF_SIGNAL") == 0)
    config_parse_signal(value, &r->signal);
  else if (strcmp(var, "HEAPPROF_HTTP") == 0)
    r->http = value;
  if (strcmp(var, "HEAPPROF_OUT") != 0 && strcmp(var, "HEAPPROF_SIGNAL") != 0)
    add_setting(r, var, value);
}

static void parse_args(request_t *r, int argc, char **argv) {
  const char *pid = NULL, *usage = r->detach ? usage_detach : usage_attach;
  const char *cmd = r->detach ? "detach" : "attach";
  r->signal = SIGUSR2;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i], *var;
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      fputs(usage, stdout);
      exit(0);
    } else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
      r->verbose = 1;
    } else if (a[0] != '-' && pid == NULL) {
      pid = a;
    } else if (r->detach) {
      die(2, "unknown argument %s for detach (see heapprof detach --help)", a);
    } else if (strcmp(a, "--peak") == 0) {
      add_setting(r, "HEAPPROF_PEAK", "1");
    } else if ((var = option_variable(a)) != NULL) {
      take_option(r, a, var, argv[++i]);
    } else {
      die(2, "unknown argument %s for attach (see heapprof attach --help)", a);
    }
  }
  if (pid == NULL)
    die(2, "%s needs a PID (see heapprof %s --help)", cmd, cmd);
  r->pid = parse_pid(pid);
  if (r->detach)
    return;
  if (r->out[0] == '\0')
    take_option(r, "--out", "HEAPPROF_OUT", DEFAULT_OUT);
  char sig[16];
  snprintf(sig, sizeof sig, "%d", r->signal);
  add_setting(r, "HEAPPROF_OUT", r->out);
  add_setting(r, "HEAPPROF_SIGNAL", sig);
  const char *remote = getenv("HEAPPROF_HTTP_REMOTE");
  if (remote != NULL && r->http != NULL) /* --http was judged with it */
    add_setting(r, "HEAPPROF_HTTP_REMOTE", remote);
}

/* ---- refusing ---- */

/* A refusal before gdb ran: one line that says the process is unchanged,
 * exit status 1. PID's record goes back to what it was and its lock, if
 * this command holds it, is let go first. */
static void refuse(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void refuse(const char *fmt, ...) {
  char line[2 * PATH_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (req.lockfd >= 0 && req.wrote_pending && req.have_old)
    state_write(req.dirfd, &req.old);
  else if (req.lockfd >= 0 && req.wrote_pending)
    state_remove(req.dirfd, req.pid);
  if (req.lockfd >= 0)
    state_unlock(req.dirfd, req.pid, req.lockfd);
  req.lockfd = -1;
  die(1, "%s; %d is unchanged", line, (int)req.pid);
}

/* ---- the checks before gdb ---- */

static void check_process(pid_t pid, target_status_t *st) {
  if (kill(pid, 0) != 0 && errno == ESRCH)
    die(1, "no process %d", (int)pid);
  if (target_status(pid, st) != 0) {
    if (errno == ENOENT || errno == ESRCH)
      die(1, "no process %d", (int)pid);
    refuse("cannot read /proc/%d/status: %s", (int)pid, strerror(errno));
  }
  if (st->state == 'Z' || st->state == 'X')
    die(1, "%d has exited (a zombie)", (int)pid);
  if (pid == getpid())
    refuse("%d is this heapprof command itself", (int)pid);
  target_status_t self;
  if (target_status(0, &self) != 0)
    refuse("cannot read /proc/self/status: %s", strerror(errno));
  char why[256];
  ptrace_facts_t f = {
      .uid = getuid(),
      .gid = getgid(),
      .cap_sys_ptrace = (int)((self.cap_eff >> CAP_SYS_PTRACE_BIT) & 1),
      .cap_prm = self.cap_prm,
      .target = st,
      .not_dumpable = target_not_dumpable(pid, st) == 1,
      .yama_scope = target_yama_scope(),
  };
  if (target_ptrace_refusal(&f, why, sizeof why) != NULL)
    refuse("not permitted to attach to %d (%s)", (int)pid, why);
  if (st->uid[0] != st->uid[1] || st->uid[1] != st->uid[2] || st->uid[2] != st->uid[3] ||
      st->gid[0] != st->gid[1] || st->gid[1] != st->gid[2] || st->gid[2] != st->gid[3])
    refuse("%d runs setuid/setgid; refusing", (int)pid);
  if (st->tracer != 0)
    refuse("%d is being traced by %ld", (int)pid, st->tracer);
}

static int has_ld(const char *base) { return strncmp(base, "ld-", 3) == 0; }

static void check_program(pid_t pid) {
  char exe[64];
  elf_facts_t f;
  target_mapping_t m;
  snprintf(exe, sizeof exe, "/proc/%d/exe", (int)pid);
  if (elf_facts(exe, &f) != 0)
    refuse("cannot read %s: %s", exe, strerror(errno));
  if (!f.elf64 || f.machine != EM_X86_64)
    refuse("%d is not an x86-64 program; heapprof attaches only to those", (int)pid);
  int ld = target_mapping(pid, has_ld, &m);
  if (!f.has_interp && ld != 1)
    refuse("%d is statically linked; heapprof can be loaded only into a dynamically "
           "linked program", (int)pid);
  const char *interp = f.has_interp ? strrchr(f.interp, '/') : NULL;
  if (interp != NULL && !target_is_glibc_ld(interp + 1))
    refuse("%d is not linked with glibc (its dynamic linker is %s; musl?)", (int)pid,
           f.interp);
  if (target_mapping(pid, target_is_libc, &m) != 1)
    refuse("%d is not linked with glibc (no libc.so.6 in its memory map)", (int)pid);
}

static int same_file(const target_mapping_t *m, const struct stat *sb) {
  return m->dev_major == major(sb->st_dev) && m->dev_minor == minor(sb->st_dev) &&
         m->inode == sb->st_ino;
}

/* Whether PID has libheapprof mapped: 1, 0 (-1 if /proc/PID/maps cannot
 * be read). */
static int library_loaded(pid_t pid, target_mapping_t *m) {
  return target_mapping(pid, target_is_heapprof, m);
}

/* A process with heapprof loaded may be attached again only if the load
 * was an earlier attach, since detached, of this very library file (the
 * library itself refuses, HEAPPROF_EBUSY, if it was linked in), or an
 * attach whose command was killed before it settled its record (then gdb
 * asks the library). Called with the lock held, the record in r->old. */
static void check_not_attached(request_t *r) {
  target_mapping_t m;
  int found = library_loaded(r->pid, &m);
  if (found < 0)
    refuse("cannot read /proc/%d/maps: %s", (int)r->pid, strerror(errno));
  if (found == 0) {
    /* A record without the library (which is never unloaded): of an
     * attach killed before gdb loaded it, or of the image before an exec. */
    if (r->have_old)
      state_remove(r->dirfd, r->pid);
    r->have_old = 0;
    return;
  }
  if (r->have_old && !r->old.pending)
    refuse("%d is already attached (use heapprof dump or detach)", (int)r->pid);
  if (r->have_old)
    return;
  static char env[1 << 20];
  const char *preload;
  if (target_env(r->pid, "LD_PRELOAD", env, sizeof env, &preload) == 1 &&
      strstr(preload, "libheapprof") != NULL)
    refuse("%d already has heapprof, preloaded (use heapprof dump)", (int)r->pid);
  struct stat sb;
  if (stat(r->lib, &sb) != 0 || !same_file(&m, &sb))
    refuse("%d already has heapprof, from %s (use heapprof dump or detach)", (int)r->pid,
           m.path);
}

/* The library to load: the one beside this program, as `run` finds it.
 * HEAPPROF_ATTACH_LIB replaces it FOR THE TESTS ONLY (a stub with the
 * attach entry points, tests/programs/attach_stub.c). */
static void attach_library(pid_t pid, char *lib, size_t cap) {
  char found[PATH_MAX + 32];
  const char *test_lib = getenv("HEAPPROF_ATTACH_LIB");
  if (test_lib != NULL)
    snprintf(found, sizeof found, "%s", test_lib);
  else
    find_library(found, sizeof found);
  if (realpath(found, lib) == NULL || strlen(lib) >= cap)
    refuse("cannot find %s: %s", found, strerror(errno));
  int ok = elf_exports(lib, "heapprof_attach_start");
  if (ok != 1)
    refuse("%s cannot be attached: %s", lib,
           ok < 0 ? strerror(errno) : "it has no heapprof_attach_start (an older heapprof?)");
  char inside[PATH_MAX + 64];
  struct stat here, there;
  snprintf(inside, sizeof inside, "/proc/%d/root%s", (int)pid, lib);
  if (stat(lib, &here) != 0 || stat(inside, &there) != 0)
    refuse("%s is not visible inside %d's mount namespace", lib, (int)pid);
  if (here.st_dev != there.st_dev || here.st_ino != there.st_ino)
    refuse("%s inside %d's mount namespace is another file", lib, (int)pid);
}

static void find_gdb(char *out, size_t cap) {
  const char *path = getenv("PATH");
  if (path == NULL)
    path = "/usr/bin:/bin";
  for (const char *p = path; *p != '\0';) {
    size_t n = strcspn(p, ":");
    snprintf(out, cap, "%.*s/gdb", (int)(n ? n : 1), n ? p : ".");
    if (access(out, X_OK) == 0)
      return;
    p += n + (p[n] == ':');
  }
  refuse("gdb not found (apt-get install gdb)");
}

/* Opens the state directory and takes PID's lock (state.h); removes stale
 * records, this pid's among them, and loads this pid's record, if any,
 * into r->old. Refuses if the directory is unusable or another attach or
 * detach of PID holds the lock. */
static void take_lock(request_t *r) {
  char why[PATH_MAX + 128];
  r->dirfd = state_dir_open(r->dir, sizeof r->dir, 1, why, sizeof why);
  if (r->dirfd < 0)
    refuse("cannot keep the attach state (XDG_RUNTIME_DIR, or /tmp/heapprof-UID without "
           "it): %s", why);
  r->lockfd = state_lock(r->dirfd, r->pid);
  if (r->lockfd < 0 && errno == EWOULDBLOCK)
    die(1, "another heapprof attach or detach of %d is in progress; this one changed "
        "nothing", (int)r->pid);
  if (r->lockfd < 0)
    refuse("cannot lock %s/%d.lock: %s", r->dir, (int)r->pid, strerror(errno));
  state_sweep(r->dirfd);
  r->have_old = state_load(r->dirfd, r->pid, &r->old);
  if (r->have_old && !state_current(&r->old)) {
    state_remove(r->dirfd, r->pid); /* another process's, under the same pid */
    r->have_old = 0;
  }
}

/* ---- gdb ---- */

static void write_hex(FILE *f, const char *s) {
  for (; *s != '\0'; s++)
    fprintf(f, "%02x", (unsigned char)*s);
}

/* A descriptor numbered 3 or more (gdb's 0, 1 and 2 are set over it). */
static int above_stdio(int fd) {
  if (fd < 0 || fd > 2)
    return fd;
  int moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  close(fd);
  return moved;
}

/* The script, P then attach_gdb.py, in an anonymous memory file: nothing
 * on disk to leave behind. gdb runs it with `python exec(...)` of
 * /proc/self/fd/N (its `source` and -x take a file for Python only by a
 * name ending in .py). */
static int script_file(const request_t *r) {
  int fd = above_stdio(memfd_create("heapprof-attach-gdb.py", MFD_CLOEXEC));
  int copy = fd >= 0 ? dup(fd) : -1;
  FILE *f = copy >= 0 ? fdopen(copy, "w") : NULL;
  if (f == NULL)
    refuse("cannot make a memory file for gdb's script: %s", strerror(errno));
  fprintf(f, "P = {\"mode\": \"%s\", \"lib\": bytes.fromhex(\"", r->detach ? "detach" : "attach");
  write_hex(f, r->lib);
  fputs("\"), \"settings\": bytes.fromhex(\"", f);
  write_hex(f, r->settings);
  fprintf(f, "\"), \"start\": %llu, \"idle_after\": %s, \"sample\": %s, \"wait\": %d}\n",
          r->start, IDLE_AFTER_S, SAMPLE_EVERY_S, SAFE_POINT_WAIT_S);
  fwrite(attach_gdb_py, 1, sizeof attach_gdb_py, f);
  if (fclose(f) != 0)
    refuse("cannot write gdb's script: %s", strerror(errno));
  return fd;
}

/* What the keeper found, in memory it shares with this command. */
typedef struct outcome {
  int started;       /* gdb was started */
  int status;        /* its wait status */
  int killed;        /* the deadline passed and it was killed */
  int record_errno;  /* settling the record failed with this errno, else 0 */
} outcome_t;

static const int held_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
#define NHELD (sizeof held_signals / sizeof *held_signals)
static sigset_t mask_before;

/* In the gdb child: stdin /dev/null, stdout and stderr the output file,
 * default signal handling, the script's descriptor inherited. The lock's
 * descriptor is inherited too (state_lock's is not close-on-exec), so
 * that PID stays locked while gdb runs even if the keeper is killed. */
static void exec_gdb(const char *gdb, pid_t pid, int script, int out) {
  for (size_t i = 0; i < NHELD; i++)
    signal(held_signals[i], SIG_DFL);
  signal(SIGPIPE, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null < 0 || dup2(null, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0 ||
      fcntl(script, F_SETFD, 0) != 0)
    _exit(126);
  char pidstr[16], source[256];
  snprintf(pidstr, sizeof pidstr, "%d", (int)pid);
  snprintf(source, sizeof source,
           "python exec(compile(open('/proc/self/fd/%d', encoding='utf-8').read(), "
           "'attach_gdb.py', 'exec'), {'__name__': 'heapprof_attach'})", script);
  /* What gdb needs is the ELF symbols (.dynsym, .symtab) and the unwind
   * tables of the process's modules: no separate debug files, debuginfod
   * or auto-loaded script. Not -readnever, which would skip a program's
   * DWARF: gdb 13 then ignores .eh_frame too, and cannot unwind a stack
   * through libc or libstdc++ to its end, which the safe-point rule asks
   * (measured: no safe point in a C++ program blocked in std::getline). */
  execl(gdb, "gdb", "-nx", "-batch", "-iex", "set auto-load off", "-iex",
        "set debuginfod enabled off", "-iex", "set debug-file-directory", "-p", pidstr,
        "-ex", source, (char *)NULL);
  _exit(127);
}

/* Waits for gdb, killing it at the deadline: SIGCHLD taken with a
 * timeout, so no polling. */
static void wait_gdb(pid_t child, outcome_t *o) {
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  struct timespec begin, now;
  clock_gettime(CLOCK_MONOTONIC, &begin);
  while (waitpid(child, &o->status, WNOHANG) == 0) {
    clock_gettime(CLOCK_MONOTONIC, &now);
    time_t left = GDB_DEADLINE_S - (now.tv_sec - begin.tv_sec);
    if (left <= 0 && !o->killed) {
      kill(child, SIGKILL);
      o->killed = 1;
    }
    struct timespec wait = {left > 0 ? left : 1, 0};
    sigtimedwait(&chld, NULL, &wait);
  }
}

static char *read_all(int fd) {
  struct stat sb;
  size_t n = fstat(fd, &sb) == 0 && sb.st_size > 0 ? (size_t)sb.st_size : 0;
  char *s = calloc(1, n + 1);
  if (s != NULL && n > 0 && pread(fd, s, n, 0) != (ssize_t)n)
    s[0] = '\0';
  return s;
}

/* The script's (last) result line, after "HEAPPROF-ATTACH ", or NULL. */
static const char *result_of(const char *transcript) {
  static char last[1024];
  const char *found = NULL;
  for (const char *at = transcript; (at = strstr(at, "HEAPPROF-ATTACH ")) != NULL; at++)
    if (at == transcript || at[-1] == '\n')
      found = at + 16;
  if (found == NULL)
    return NULL;
  snprintf(last, sizeof last, "%.*s", (int)strcspn(found, "\n"), found);
  return last;
}

static int is(const char *res, const char *word) { return res != NULL && strcmp(res, word) == 0; }

/* Whether the result says for sure that this run attached (or detached)
 * nothing: gdb never called the entry point, or it said no. */
static int definitely_nothing(const char *res) {
  static const char *const words[] = {"dlerror ", "notloaded", "nosym", "nolibc ",
                                      "timeout", "notattached", "exited", "reused", "rc "};
  for (size_t i = 0; res != NULL && i < sizeof words / sizeof *words; i++)
    if (strncmp(res, words[i], strlen(words[i])) == 0)
      return !is(res, "rc 0");
  return 0;
}

/* The record after gdb, attach: the new settings if attached; the earlier
 * pending record made plain if the library says it was attached already
 * (by an attach whose command was killed: it had finished); the record as
 * it was if this run certainly attached nothing (or the process is gone:
 * none); else — gdb killed, or an error with the library loaded — left
 * pending, to be resolved by the next attach or detach. */
static int settle_attach(request_t *r, const char *res, const outcome_t *o) {
  target_mapping_t m;
  attach_state_t now = {.pid = r->pid, .start = r->start, .signal = r->signal};
  snprintf(now.out, sizeof now.out, "%.*s", (int)sizeof now.out - 1, r->out);
  if (is(res, "ok"))
    return state_write(r->dirfd, &now);
  if (is(res, "rc -4") && r->have_old) {
    r->old.pending = 0;
    return state_write(r->dirfd, &r->old);
  }
  if (is(res, "exited") || is(res, "reused")) {
    state_remove(r->dirfd, r->pid);
    return 0;
  }
  if (!o->killed && (definitely_nothing(res) || library_loaded(r->pid, &m) == 0)) {
    if (r->have_old)
      return state_write(r->dirfd, &r->old);
    state_remove(r->dirfd, r->pid);
  }
  return 0;
}

/* Detach: the record goes once the library says it is not attached (any
 * more), or the process is gone; else it stays. */
static void settle_detach(request_t *r, const char *res) {
  if (is(res, "ok") || is(res, "rc -4") || is(res, "exited") || is(res, "reused"))
    state_remove(r->dirfd, r->pid);
}

/* The keeper (see the top of this file): runs gdb, waits for it, settles
 * the record, lets go of the lock. Nothing this command receives reaches
 * it: a session of its own, SIGINT, SIGTERM, SIGHUP and SIGQUIT ignored. */
static void keep(request_t *r, const char *gdb, int script, int out, outcome_t *o) {
  setsid();
  for (size_t i = 0; i < NHELD; i++)
    signal(held_signals[i], SIG_IGN);
  signal(SIGPIPE, SIG_IGN);
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_SETMASK, &chld, NULL);
  pid_t child = fork();
  if (child == 0)
    exec_gdb(gdb, r->pid, script, out);
  if (child > 0) {
    o->started = 1;
    wait_gdb(child, o);
  }
  char *transcript = read_all(out);
  const char *res = transcript != NULL ? result_of(transcript) : NULL;
  if (r->detach)
    settle_detach(r, res);
  else if (settle_attach(r, res, o) != 0)
    o->record_errno = errno ? errno : EIO;
  state_unlock(r->dirfd, r->pid, r->lockfd);
  _exit(0);
}

/* What the library said inside the call (the script's HEAPPROF-MESSAGE
 * lines: the port it serves, a failed bind), on our stderr: the
 * program's gets none of it. */
static void relay_messages(const char *t) {
  for (const char *at = t; (at = strstr(at, "HEAPPROF-MESSAGE ")) != NULL; at++)
    if (at == t || at[-1] == '\n')
      fprintf(stderr, "%.*s\n", (int)strcspn(at + 17, "\n"), at + 17);
}

/* gdb's output minus its routine lines, at most the last 12, indented. */
static void show_transcript(const char *t, int notes_only) {
  const char *lines[12];
  size_t n = 0, total = 0;
  for (const char *line = t; *line != '\0'; line += strcspn(line, "\n") + (line[strcspn(line, "\n")] != 0)) {
    size_t len = strcspn(line, "\n");
    int note = strncmp(line, "heapprof-attach: ", 17) == 0;
    if (len == 0 || (notes_only && !note) || line[0] == '[' ||
        strncmp(line, "Using host libthread_db", 23) == 0 ||
        strncmp(line, "HEAPPROF-ATTACH ", 16) == 0 ||
        strncmp(line, "HEAPPROF-MESSAGE ", 17) == 0)
      continue;
    lines[total++ % 12] = line;
  }
  n = total < 12 ? total : 12;
  for (size_t i = total - n; i < total; i++) {
    const char *line = lines[i % 12];
    fprintf(stderr, "  %.*s\n", (int)strcspn(line, "\n"), line);
  }
}

/* Whether the process the command checked is gone: no such pid, another
 * process under it, or a zombie (its parent has not reaped it yet). */
static int process_gone(pid_t pid, unsigned long long start) {
  unsigned long long now;
  target_status_t st;
  return target_start_time(pid, &now) != 0 || now != start || target_status(pid, &st) != 0 ||
         st.state == 'Z' || st.state == 'X';
}

/* One line for a result other than success, plus gdb's output where it
 * explains something; exits with status 1. The record is settled already
 * (the keeper). */
static void fail(const request_t *r, const char *res, const outcome_t *o, const char *transcript) {
  int pid = (int)r->pid;
  const char *lib = strrchr(r->lib, '/') + 1;
  if (is(res, "notattached"))
    res = NULL; /* gdb's own lines say why */
  if (!o->started) {
    die(1, "cannot start gdb; %d is unchanged", pid);
  } else if (o->killed && process_gone(r->pid, r->start)) {
    fprintf(stderr, "heapprof: gdb did not finish within %d s and was killed; %d has ended\n",
            GDB_DEADLINE_S, pid);
  } else if (o->killed) {
    fprintf(stderr, "heapprof: gdb did not finish within %d s and was killed; check %d: it "
            "may be inside the injected call (`heapprof %s %d` tells whether it is attached)\n",
            GDB_DEADLINE_S, pid, r->detach ? "detach" : "attach", pid);
  } else if (res == NULL && strstr(transcript, "Python scripting is not supported")) {
    die(1, "this gdb has no Python; heapprof attach needs Debian's gdb; %d is unchanged", pid);
  } else if (is(res, "exited") ||
             ((res == NULL || strncmp(res, "error", 5) == 0) && process_gone(r->pid, r->start))) {
    die(1, "%d exited during the %s", pid, r->detach ? "detach" : "attach");
  } else if (res == NULL && strstr(transcript, "ptrace: Operation not permitted")) {
    die(1, "not permitted to attach to %d (ptrace: Operation not permitted; run as root "
        "or with CAP_SYS_PTRACE); %d is unchanged", pid, pid);
  } else if (res == NULL) {
    fprintf(stderr, "heapprof: gdb failed on %d (status %d) before changing anything:\n", pid,
            WIFEXITED(o->status) ? WEXITSTATUS(o->status) : -1);
  } else if (is(res, "reused")) {
    die(1, "%d exited; a new process now has that number (it was not touched)", pid);
  } else if (is(res, "timeout")) {
    die(1, "%d made no allocator call and had no idle thread in %d s; nothing was changed",
        pid, SAFE_POINT_WAIT_S);
  } else if (is(res, "timeout loader")) {
    die(1, "%d had no safe point in %d s: another thread stayed in the dynamic loader "
        "(a dlopen or a library's constructor), where the call would wait for it; "
        "nothing was changed", pid, SAFE_POINT_WAIT_S);
  } else if (is(res, "rc -4") && !r->detach && r->have_old) {
    die(1, "%d is already attached, by an earlier heapprof attach whose command was "
        "interrupted (use heapprof dump or detach); nothing was changed", pid);
  } else if (is(res, "rc -4") && !r->detach) {
    die(1, "%d is already attached, or has heapprof preloaded or linked (use heapprof dump "
        "or detach); nothing was changed", pid);
  } else if (is(res, "rc -4")) {
    die(1, "%d is not attached (heapprof was preloaded or linked, or is detached already)",
        pid);
  } else if (strncmp(res, "dlerror ", 8) == 0 && strstr(res, "static TLS") != NULL) {
    die(1, "%d has used up glibc's static TLS reserve, so %s cannot be loaded into it; "
        "start it with LD_PRELOAD, or with GLIBC_TUNABLES=glibc.rtld.optional_static_tls=4096; "
        "%d is unchanged", pid, lib, pid);
  } else if (strncmp(res, "dlerror ", 8) == 0) {
    die(1, "%d could not load %s: %s; %d is unchanged", pid, r->lib, res + 8, pid);
  } else if (is(res, "notloaded")) {
    die(1, "%d has no %s that dlopen finds (attached by another heapprof?); %d is unchanged",
        pid, r->lib, pid);
  } else if (is(res, "nosym") && !r->detach) {
    die(1, "%s in %d has no heapprof_attach_start; it stays loaded there, inactive", r->lib,
        pid);
  } else if (is(res, "nosym")) {
    die(1, "%s in %d has no heapprof_attach_stop; %d is unchanged", r->lib, pid, pid);
  } else if (strncmp(res, "nolibc ", 7) == 0) {
    die(1, "%d's libc has no %s (glibc 2.34 or later is needed); %d is unchanged", pid,
        res + 7, pid);
  } else if (strncmp(res, "rc ", 3) == 0) {
    int rc = atoi(res + 3);
    die(1, "heapprof_attach_%s in %d failed: %s%s", r->detach ? "stop" : "start", pid,
        rc == HEAPPROF_EINVAL   ? "a setting was refused"
        : rc == HEAPPROF_ENOMEM ? "out of memory"
        : rc == HEAPPROF_EIO    ? "its allocator or modules could not be hooked; nothing was changed"
                                : res,
        r->detach || rc == HEAPPROF_EIO ? "" : " (the library stays loaded, inactive)");
  } else {
    fprintf(stderr, "heapprof: gdb could not finish in %d (%s); check that it still runs:\n",
            pid, res);
  }
  show_transcript(transcript, 0);
  exit(1);
}

/* Injects into r->pid through the keeper, which settles the record and
 * lets go of the lock; returns only on success. SIGINT, SIGTERM, SIGHUP
 * and SIGQUIT stay held until release_signals(). */
static void inject(request_t *r, const char *gdb) {
  int script = script_file(r);
  int out = above_stdio(memfd_create("heapprof-gdb-output", MFD_CLOEXEC));
  outcome_t *o = mmap(NULL, sizeof *o, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                      -1, 0);
  if (out < 0 || o == MAP_FAILED)
    refuse("cannot set up gdb's output: %s", strerror(errno));
  sigset_t hold;
  sigemptyset(&hold);
  for (size_t i = 0; i < NHELD; i++)
    sigaddset(&hold, held_signals[i]);
  sigprocmask(SIG_BLOCK, &hold, &mask_before);
  fflush(NULL);
  pid_t keeper = fork();
  if (keeper < 0)
    refuse("cannot start gdb: %s", strerror(errno));
  if (keeper == 0)
    keep(r, gdb, script, out, o);
  close(r->lockfd); /* the keeper holds it now */
  r->lockfd = -1;
  int status;
  while (waitpid(keeper, &status, 0) < 0 && errno == EINTR)
    ;
  char *transcript = read_all(out);
  if (transcript == NULL)
    die(1, "out of memory");
  const char *res = result_of(transcript);
  relay_messages(transcript);
  if (!is(res, "ok") || o->killed)
    fail(r, res, o, transcript);
  if (o->record_errno != 0)
    fprintf(stderr, "heapprof: attached, but cannot record it in %s (%s): `heapprof dump "
            "%d` will not find the profiles\n", r->dir, strerror(o->record_errno), (int)r->pid);
  if (r->verbose)
    show_transcript(transcript, 1);
  free(transcript);
}

/* A signal held during the injection acts now, after the report. */
static void release_signals(void) {
  fflush(NULL);
  sigprocmask(SIG_SETMASK, &mask_before, NULL);
}

int cmd_attach(int argc, char **argv) {
  request_t *r = &req;
  parse_args(r, argc, argv);
  target_status_t st;
  check_process(r->pid, &st);
  check_program(r->pid);
  attach_library(r->pid, r->lib, sizeof r->lib);
  char gdb[PATH_MAX];
  find_gdb(gdb, sizeof gdb);
  if (target_start_time(r->pid, &r->start) != 0)
    die(1, "no process %d", (int)r->pid);
  take_lock(r);
  check_not_attached(r);
  /* (An earlier attach that may have finished installed a handler of
   * heapprof's: the library judges that case.) */
  if (!r->have_old && r->signal != 0 && ((st.sig_cgt >> (r->signal - 1)) & 1))
    refuse("%d handles SIG%s itself; choose another dump signal with --signal, or "
           "--signal none", (int)r->pid, sigabbrev_np(r->signal));
  attach_state_t s = {.pid = r->pid, .start = r->start, .signal = r->signal, .pending = 1};
  snprintf(s.out, sizeof s.out, "%.*s", (int)sizeof s.out - 1, r->out);
  if (state_write(r->dirfd, &s) != 0)
    refuse("cannot record the attach in %s: %s", r->dir, strerror(errno));
  r->wrote_pending = 1;
  inject(r, gdb);
  char where[CONFIG_PATH_MAX];
  describe_out(r->out, r->pid, where, sizeof where);
  fprintf(stderr, "heapprof: attached to %d; profiles to %s%s%s\n", (int)r->pid, where,
          r->http ? "; http " : "", r->http ? r->http : "");
  release_signals();
  return 0;
}

int cmd_detach(int argc, char **argv) {
  request_t *r = &req;
  r->detach = 1;
  parse_args(r, argc, argv);
  target_status_t st;
  check_process(r->pid, &st);
  if (target_start_time(r->pid, &r->start) != 0)
    die(1, "no process %d", (int)r->pid);
  take_lock(r);
  target_mapping_t m;
  int loaded = library_loaded(r->pid, &m);
  if (loaded != 1) {
    if (loaded == 0 && r->have_old)
      state_remove(r->dirfd, r->pid); /* no library, so no attach: stale */
    refuse("%d has no heapprof loaded", (int)r->pid);
  }
  snprintf(r->lib, sizeof r->lib, "%s", m.path);
  char gdb[PATH_MAX];
  find_gdb(gdb, sizeof gdb);
  inject(r, gdb);
  fprintf(stderr, "heapprof: detached from %d (the library stays loaded)\n", (int)r->pid);
  release_signals();
  return 0;
}
