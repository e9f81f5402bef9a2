/*
 * attach — `heapprof attach PID [options]` and `heapprof detach PID`.
 *
 * attach loads libheapprof.so into a running process and calls its
 * heapprof_attach_start with the options as "HEAPPROF_NAME=value\n" lines;
 * detach calls heapprof_attach_stop (the library stays loaded). The
 * injection is gdb's, driven by attach_gdb.py (embedded in this program,
 * written to a 0600 temporary file for each run), which calls into the
 * process only from a thread at a safe point: see the script's header.
 *
 * The invariant: every refusal comes BEFORE gdb runs, as one line on
 * stderr with exit status 1, and the target is untouched by it (the checks
 * only read /proc and ELF files: target.c). Once gdb runs, its one result
 * line decides the message; gdb's own output is shown only on failure.
 * A bad option value is a usage error (status 2), judged by the library's
 * own parsers as for `run`.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
 * would leave the thread inside it: hence a generous figure. */
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
} request_t;

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

/* ---- the checks before gdb ---- */

static void check_process(pid_t pid, target_status_t *st) {
  if (kill(pid, 0) != 0 && errno == ESRCH)
    die(1, "no process %d", (int)pid);
  if (target_status(pid, st) != 0)
    die(1, errno == ENOENT || errno == ESRCH ? "no process %d" : "cannot read /proc/%d/status",
        (int)pid);
  if (st->state == 'Z' || st->state == 'X')
    die(1, "%d has exited (a zombie)", (int)pid);
  target_status_t self;
  if (target_status(0, &self) != 0)
    die(1, "cannot read /proc/self/status: %s", strerror(errno));
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
    die(1, "not permitted to attach to %d (%s)", (int)pid, why);
  if (st->uid[0] != st->uid[1] || st->uid[1] != st->uid[2] || st->uid[2] != st->uid[3] ||
      st->gid[0] != st->gid[1] || st->gid[1] != st->gid[2] || st->gid[2] != st->gid[3])
    die(1, "%d runs setuid/setgid; refusing", (int)pid);
  if (st->tracer != 0)
    die(1, "%d is being traced by %ld", (int)pid, st->tracer);
}

static int has_ld(const char *base) { return strncmp(base, "ld-", 3) == 0; }

static void check_program(pid_t pid) {
  char exe[64];
  elf_facts_t f;
  target_mapping_t m;
  snprintf(exe, sizeof exe, "/proc/%d/exe", (int)pid);
  if (elf_facts(exe, &f) != 0)
    die(1, "cannot read %s: %s", exe, strerror(errno));
  if (!f.elf64 || f.machine != EM_X86_64)
    die(1, "%d is not an x86-64 program; heapprof attaches only to those", (int)pid);
  int ld = target_mapping(pid, has_ld, &m);
  if (!f.has_interp && ld != 1)
    die(1, "%d is statically linked; heapprof can be loaded only into a dynamically "
        "linked program", (int)pid);
  const char *interp = f.has_interp ? strrchr(f.interp, '/') : NULL;
  if (interp != NULL && !target_is_glibc_ld(interp + 1))
    die(1, "%d is not linked with glibc (its dynamic linker is %s; musl?)", (int)pid,
        f.interp);
  if (target_mapping(pid, target_is_libc, &m) != 1)
    die(1, "%d is not linked with glibc (no libc.so.6 in its memory map)", (int)pid);
}

static int same_file(const target_mapping_t *m, const struct stat *sb) {
  return m->dev_major == major(sb->st_dev) && m->dev_minor == minor(sb->st_dev) &&
         m->inode == sb->st_ino;
}

/* A process with heapprof loaded may be attached again only if the load
 * was an earlier attach, since detached, of this very library file; the
 * library itself refuses (HEAPPROF_EBUSY) if it was linked in. */
static void check_not_attached(pid_t pid, const char *lib) {
  target_mapping_t m;
  int found = target_mapping(pid, target_is_heapprof, &m);
  if (found < 0)
    die(1, "cannot read /proc/%d/maps: %s", (int)pid, strerror(errno));
  if (found == 0)
    return;
  attach_state_t s;
  if (state_read(pid, &s))
    die(1, "%d is already attached (use heapprof dump or detach)", (int)pid);
  static char env[1 << 20];
  const char *preload;
  if (target_env(pid, "LD_PRELOAD", env, sizeof env, &preload) == 1 &&
      strstr(preload, "libheapprof") != NULL)
    die(1, "%d already has heapprof, preloaded (use heapprof dump)", (int)pid);
  struct stat sb;
  if (stat(lib, &sb) != 0 || !same_file(&m, &sb))
    die(1, "%d already has heapprof, from %s (use heapprof dump or detach)", (int)pid,
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
    die(1, "cannot find %s: %s", found, strerror(errno));
  int ok = elf_exports(lib, "heapprof_attach_start");
  if (ok != 1)
    die(1, "%s cannot be attached: %s", lib,
        ok < 0 ? strerror(errno) : "it has no heapprof_attach_start (an older heapprof?)");
  char inside[PATH_MAX + 64];
  struct stat here, there;
  snprintf(inside, sizeof inside, "/proc/%d/root%s", (int)pid, lib);
  if (stat(lib, &here) != 0 || stat(inside, &there) != 0)
    die(1, "%s is not visible inside %d's mount namespace", lib, (int)pid);
  if (here.st_dev != there.st_dev || here.st_ino != there.st_ino)
    die(1, "%s inside %d's mount namespace is another file", lib, (int)pid);
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
  die(1, "gdb not found (apt-get install gdb)");
}

/* ---- gdb ---- */

static void write_hex(FILE *f, const char *s) {
  for (; *s != '\0'; s++)
    fprintf(f, "%02x", (unsigned char)*s);
}

/* The script: P, then attach_gdb.py. 0600 (mkstemps). */
static void write_script(char *path, size_t cap, const request_t *r, unsigned long long start) {
  const char *tmp = getenv("TMPDIR");
  snprintf(path, cap, "%s/heapprof-attach-XXXXXX.py", tmp != NULL && tmp[0] == '/' ? tmp : "/tmp");
  int fd = mkstemps(path, 3);
  FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
  if (f == NULL)
    die(1, "cannot create %s: %s", path, strerror(errno));
  fprintf(f, "P = {\"mode\": \"%s\", \"lib\": bytes.fromhex(\"", r->detach ? "detach" : "attach");
  write_hex(f, r->lib);
  fputs("\"), \"settings\": bytes.fromhex(\"", f);
  write_hex(f, r->settings);
  fprintf(f, "\"), \"start\": %llu, \"idle_after\": %s, \"sample\": %s, \"wait\": %d}\n", start,
          IDLE_AFTER_S, SAMPLE_EVERY_S, SAFE_POINT_WAIT_S);
  fwrite(attach_gdb_py, 1, sizeof attach_gdb_py, f);
  if (fclose(f) != 0) {
    unlink(path);
    die(1, "cannot write %s", path);
  }
}

typedef struct gdb_run {
  int status;        /* waitpid status */
  int killed;        /* the deadline passed */
  char *transcript;  /* gdb's stdout and stderr */
} gdb_run_t;

/* Runs gdb on the script with stdin /dev/null, in its own process group
 * (a ^C at the terminal must not reach it: gdb would pass an interrupt on
 * to the target), collecting its output; kills it at the deadline. This
 * command holds off SIGINT, SIGTERM, SIGHUP and SIGQUIT meanwhile, so that
 * it always cleans up and reports; they act once gdb is done. */
static void run_gdb(const char *gdb, pid_t pid, const char *script, gdb_run_t *g) {
  FILE *out = tmpfile();
  if (out == NULL)
    die(1, "cannot make a temporary file: %s", strerror(errno));
  char pidstr[16];
  snprintf(pidstr, sizeof pidstr, "%d", (int)pid);
  sigset_t hold, old;
  sigemptyset(&hold);
  sigaddset(&hold, SIGINT), sigaddset(&hold, SIGTERM);
  sigaddset(&hold, SIGHUP), sigaddset(&hold, SIGQUIT);
  sigprocmask(SIG_BLOCK, &hold, &old);
  fflush(NULL);
  pid_t child = fork();
  if (child < 0)
    die(1, "cannot start gdb: %s", strerror(errno));
  if (child == 0) {
    sigprocmask(SIG_SETMASK, &old, NULL);
    setpgid(0, 0);
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null < 0 || dup2(null, 0) < 0 || dup2(fileno(out), 1) < 0 || dup2(fileno(out), 2) < 0)
      _exit(126);
    execl(gdb, "gdb", "-nx", "-batch", "-iex", "set debuginfod enabled off", "-iex",
          "set debug-file-directory", "-iex", "set auto-load python-scripts off", "-iex",
          "set auto-load gdb-scripts off", "-p", pidstr, "-x", script, (char *)NULL);
    _exit(127);
  }
  struct timespec begin, now, pause = {0, 20 * 1000 * 1000};
  clock_gettime(CLOCK_MONOTONIC, &begin);
  g->killed = 0;
  while (waitpid(child, &g->status, WNOHANG) == 0) {
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec - begin.tv_sec >= GDB_DEADLINE_S && !g->killed) {
      kill(child, SIGKILL);
      g->killed = 1;
    }
    nanosleep(&pause, NULL);
  }
  long n = ftell(out);
  g->transcript = calloc(1, n > 0 ? (size_t)n + 1 : 1);
  rewind(out);
  if (n > 0 && g->transcript != NULL && fread(g->transcript, 1, (size_t)n, out) != (size_t)n)
    g->transcript[0] = '\0';
  fclose(out);
  sigprocmask(SIG_SETMASK, &old, NULL); /* a held signal acts after our report */
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

/* gdb's output minus its routine lines, at most the last 12, indented. */
static void show_transcript(const char *t, int notes_only) {
  const char *lines[12];
  size_t n = 0, total = 0;
  for (const char *line = t; *line != '\0'; line += strcspn(line, "\n") + (line[strcspn(line, "\n")] != 0)) {
    size_t len = strcspn(line, "\n");
    int note = strncmp(line, "heapprof-attach: ", 17) == 0;
    if (len == 0 || (notes_only && !note) || line[0] == '[' ||
        strncmp(line, "Using host libthread_db", 23) == 0 ||
        strncmp(line, "HEAPPROF-ATTACH ", 16) == 0)
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
 * explains something; exits with status 1. */
static void fail(const request_t *r, const char *res, const gdb_run_t *g, unsigned long long start) {
  int pid = (int)r->pid;
  const char *lib = strrchr(r->lib, '/') + 1;
  if (res != NULL && strcmp(res, "notattached") == 0)
    res = NULL; /* gdb's own lines say why */
  if (r->detach && res != NULL && strcmp(res, "rc -4") == 0) {
    char dir[PATH_MAX], why[PATH_MAX + 128];
    int dirfd = state_dir_open(dir, sizeof dir, 0, why, sizeof why);
    if (dirfd >= 0)
      state_remove(dirfd, r->pid); /* a record of an attach that is over */
  }
  if (g->killed) {
    fprintf(stderr, "heapprof: gdb did not finish within %d s and was killed; check %d: "
            "it may be stopped or inside the injected call\n", GDB_DEADLINE_S, pid);
  } else if (res == NULL && strstr(g->transcript, "Python scripting is not supported")) {
    die(1, "this gdb has no Python; heapprof attach needs Debian's gdb");
  } else if ((res != NULL && strcmp(res, "exited") == 0) ||
             ((res == NULL || strncmp(res, "error", 5) == 0) && process_gone(r->pid, start))) {
    die(1, "%d exited during the %s", pid, r->detach ? "detach" : "attach");
  } else if (res == NULL && strstr(g->transcript, "ptrace: Operation not permitted")) {
    die(1, "not permitted to attach to %d (ptrace: Operation not permitted; run as root "
        "or with CAP_SYS_PTRACE)", pid);
  } else if (res == NULL) {
    fprintf(stderr, "heapprof: gdb failed on %d (status %d) before changing anything:\n", pid,
            WIFEXITED(g->status) ? WEXITSTATUS(g->status) : -1);
  } else if (strcmp(res, "reused") == 0) {
    die(1, "%d exited; a new process now has that number", pid);
  } else if (strcmp(res, "timeout") == 0) {
    die(1, "%d made no allocator call and had no idle thread in %d s; nothing was changed",
        pid, SAFE_POINT_WAIT_S);
  } else if (strcmp(res, "rc -4") == 0 && !r->detach) {
    die(1, "%d is already attached, or has heapprof preloaded or linked (use heapprof dump "
        "or detach)", pid);
  } else if (strcmp(res, "rc -4") == 0) {
    die(1, "%d is not attached (heapprof was preloaded or linked, or is detached already)",
        pid);
  } else if (strncmp(res, "dlerror ", 8) == 0 && strstr(res, "static TLS") != NULL) {
    die(1, "%d has used up glibc's static TLS reserve, so %s cannot be loaded into it; "
        "start it with LD_PRELOAD, or with GLIBC_TUNABLES=glibc.rtld.optional_static_tls=4096",
        pid, lib);
  } else if (strncmp(res, "dlerror ", 8) == 0) {
    die(1, "%d could not load %s: %s", pid, r->lib, res + 8);
  } else if (strcmp(res, "notloaded") == 0) {
    die(1, "%d has no %s that dlopen finds (attached by another heapprof?)", pid, r->lib);
  } else if (strcmp(res, "nosym") == 0) {
    die(1, "%s in %d has no heapprof_attach_%s", r->lib, pid, r->detach ? "stop" : "start");
  } else if (strncmp(res, "nolibc ", 7) == 0) {
    die(1, "%d's libc has no %s (glibc 2.34 or later is needed)", pid, res + 7);
  } else if (strncmp(res, "rc ", 3) == 0) {
    int rc = atoi(res + 3);
    die(1, "heapprof_attach_%s in %d failed: %s", r->detach ? "stop" : "start", pid,
        rc == HEAPPROF_EINVAL   ? "a setting was refused"
        : rc == HEAPPROF_ENOMEM ? "out of memory"
        : rc == HEAPPROF_EIO    ? "its allocator or modules could not be hooked; nothing was changed"
                                : res);
  } else {
    fprintf(stderr, "heapprof: gdb could not finish in %d (%s); check that it still runs:\n",
            pid, res);
  }
  show_transcript(g->transcript, 0);
  exit(1);
}

/* Injects into r->pid; returns only on success. */
static void inject(request_t *r, unsigned long long start) {
  char gdb[PATH_MAX], script[PATH_MAX];
  find_gdb(gdb, sizeof gdb);
  write_script(script, sizeof script, r, start);
  gdb_run_t g;
  run_gdb(gdb, r->pid, script, &g);
  unlink(script);
  if (g.transcript == NULL)
    die(1, "out of memory");
  const char *res = result_of(g.transcript);
  if (res == NULL || strcmp(res, "ok") != 0 || g.killed)
    fail(r, res, &g, start);
  if (r->verbose)
    show_transcript(g.transcript, 1);
  free(g.transcript);
}

int cmd_attach(int argc, char **argv) {
  static request_t r;
  parse_args(&r, argc, argv);
  target_status_t st;
  check_process(r.pid, &st);
  check_program(r.pid);
  attach_library(r.pid, r.lib, sizeof r.lib);
  check_not_attached(r.pid, r.lib);
  if (r.signal != 0 && ((st.sig_cgt >> (r.signal - 1)) & 1))
    die(1, "%d handles SIG%s itself; choose another dump signal with --signal, or "
        "--signal none", (int)r.pid, sigabbrev_np(r.signal));
  char dir[PATH_MAX], why[PATH_MAX + 128], gdb[PATH_MAX];
  find_gdb(gdb, sizeof gdb);
  int dirfd = state_dir_open(dir, sizeof dir, 1, why, sizeof why);
  if (dirfd < 0)
    die(1, "cannot keep the attach state: %s", why);
  attach_state_t s = {.pid = r.pid, .signal = r.signal};
  if (target_start_time(r.pid, &s.start) != 0)
    die(1, "no process %d", (int)r.pid);
  snprintf(s.out, sizeof s.out, "%s", r.out);
  inject(&r, s.start);
  if (state_write(dirfd, &s) != 0)
    fprintf(stderr, "heapprof: attached, but cannot record it in %s (%s): `heapprof dump "
            "%d` will not find the profiles\n", dir, strerror(errno), (int)r.pid);
  char where[CONFIG_PATH_MAX];
  describe_out(r.out, r.pid, where, sizeof where);
  fprintf(stderr, "heapprof: attached to %d; profiles to %s%s%s\n", (int)r.pid, where,
          r.http ? "; http " : "", r.http ? r.http : "");
  return 0;
}

int cmd_detach(int argc, char **argv) {
  static request_t r;
  r.detach = 1;
  parse_args(&r, argc, argv);
  target_status_t st;
  check_process(r.pid, &st);
  target_mapping_t m;
  if (target_mapping(r.pid, target_is_heapprof, &m) != 1)
    die(1, "%d has no heapprof loaded", (int)r.pid);
  snprintf(r.lib, sizeof r.lib, "%s", m.path);
  char dir[PATH_MAX], why[PATH_MAX + 128];
  int dirfd = state_dir_open(dir, sizeof dir, 0, why, sizeof why);
  unsigned long long start;
  if (target_start_time(r.pid, &start) != 0)
    die(1, "no process %d", (int)r.pid);
  inject(&r, start);
  if (dirfd >= 0)
    state_remove(dirfd, r.pid);
  fprintf(stderr, "heapprof: detached from %d (the library stays loaded)\n", (int)r.pid);
  return 0;
}
