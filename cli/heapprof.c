/*
 * heapprof — the command line: run a program under the profiler, or ask a
 * running one for a profile and wait until it is complete.
 *
 *   heapprof run [options] -- CMD [ARGS...]
 *   heapprof dump PID [--timeout SECONDS]
 *   heapprof attach PID [options]      (attach.c)
 *   heapprof detach PID                (attach.c)
 *
 * `run` sets LD_PRELOAD (heapprof first) and the HEAPPROF_* variables, says
 * where the profiles will go, and execs CMD: the program keeps its pid.
 * `dump` takes the target's profile template and dump signal from the
 * state `attach` recorded for it (state.c: only for the same process, by
 * start time), else from HEAPPROF_OUT and HEAPPROF_SIGNAL in
 * /proc/PID/environ; it sends the signal and prints the path of the first
 * new complete profile (profiles appear by rename, so one that exists is
 * whole).
 * Option values are judged by the library's own parser for the variable
 * each one sets (config_check, runtime/base/config.c), so the command refuses
 * (status 2) exactly what the library would refuse at start-up.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "heapprof.h"
#include "state.h"
#include "target.h"

void die(int status, const char *fmt, ...) {
  va_list ap;
  fputs("heapprof: ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  exit(status);
}

static const char usage_main[] =
    "usage: heapprof run [options] -- CMD [ARGS...]   run CMD under the profiler\n"
    "       heapprof dump PID [--timeout SECONDS]      write a profile of PID now\n"
    "       heapprof attach PID [options]              profile a running PID from now on\n"
    "       heapprof detach PID                        stop profiling an attached PID\n"
    "       heapprof --version\n"
    "`heapprof COMMAND --help` lists a command's options.\n";

static const char usage_run[] =
    "usage: heapprof run [options] -- CMD [ARGS...]\n"
    "Runs CMD with libheapprof preloaded; profiles go to --out (default\n"
    "heapprof.%p.%n.pb.gz), one at exit and one per trigger.\n"
    "  --rate BYTES       mean bytes between samples; 1 = every allocation (HEAPPROF_RATE)\n"
    "  --out TEMPLATE     profile paths: %p pid, %n sequence, %t time (HEAPPROF_OUT)\n"
    "  --http ADDR        serve /debug/pprof/ on ADDR, e.g. 127.0.0.1:6060 (HEAPPROF_HTTP)\n"
    "  --interval SECS    a profile every SECS seconds (HEAPPROF_INTERVAL)\n"
    "  --growth BYTES     a profile per BYTES of in-use growth (HEAPPROF_GROWTH)\n"
    "  --peak             keep and write the high-water-mark profile (HEAPPROF_PEAK)\n"
    "  --signal SIG       the dump signal, or none (HEAPPROF_SIGNAL)\n"
    "  --seed N           fix the sampler's seed (HEAPPROF_SEED)\n"
    "  --depth N          stack frames kept, 1-256 (HEAPPROF_DEPTH)\n"
    "  --demangle STYLE   C++/Rust names: simple, templates, full or none\n"
    "                     (HEAPPROF_DEMANGLE)\n";

static const char usage_dump[] =
    "usage: heapprof dump PID [--timeout SECONDS]\n"
    "Sends PID its dump signal and waits (30 s by default) for the new\n"
    "profile; prints its path. Exit status 0 if it appeared, 1 if not.\n";

/* ---- run ---- */

/* `tmpl` (valid) with %p filled in and the other % sequences kept, for
 * telling the user where profiles will go. */
void describe_out(const char *tmpl, pid_t pid, char *out, size_t cap) {
  size_t at = 0;
  for (const char *c = tmpl; *c && at + 16 < cap; c++) {
    if (c[0] == '%' && c[1] == 'p')
      at += (size_t)snprintf(out + at, cap - at, "%d", (int)pid), c++;
    else if (c[0] == '%' && c[1] == '%')
      out[at++] = *c++, out[at++] = *c;
    else
      out[at++] = *c;
  }
  out[at] = '\0';
}

/* libheapprof.so where this binary's install puts it (bin/../lib, or
 * bin/../lib/x86_64-linux-gnu under /usr: HEAPPROF_LIBDIR_FROM_BINDIR),
 * or in the build tree beside it (bin/../lib), else where it was to be
 * installed. Relative first, so an install moved to another prefix
 * (cmake --install --prefix, DESTDIR) finds its own library. */
void find_library(char *out, size_t cap) {
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n > 0) {
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (slash != NULL) {
      *slash = '\0';
      const char *rel[] = {HEAPPROF_LIBDIR_FROM_BINDIR, "../lib"};
      for (size_t i = 0; i < sizeof rel / sizeof *rel; i++) {
        snprintf(out, cap, "%s/%s/libheapprof.so", self, rel[i]);
        if (access(out, R_OK) == 0)
          return;
      }
    }
  }
  snprintf(out, cap, "%s/libheapprof.so", HEAPPROF_INSTALL_LIBDIR);
  if (access(out, R_OK) != 0)
    die(1, "cannot find libheapprof.so next to this program or in %s",
        HEAPPROF_INSTALL_LIBDIR);
}

/* At most 64 bytes of `v` with control bytes shown as '?', so that an
 * error quoting it stays one line. */
const char *shown(const char *v, char out[65]) {
  size_t i = 0;
  for (; v[i] != '\0' && i < 64; i++)
    out[i] = (unsigned char)v[i] < 0x20 || v[i] == 0x7f ? '?' : v[i];
  out[i] = '\0';
  return out;
}

/* The options that take a value, and the variable each one sets. */
static const struct {
  const char *opt, *var;
} run_options[] = {
    {"--rate", "HEAPPROF_RATE"},         {"--out", "HEAPPROF_OUT"},
    {"--http", "HEAPPROF_HTTP"},         {"--interval", "HEAPPROF_INTERVAL"},
    {"--growth", "HEAPPROF_GROWTH"},     {"--signal", "HEAPPROF_SIGNAL"},
    {"--seed", "HEAPPROF_SEED"},         {"--depth", "HEAPPROF_DEPTH"},
    {"--demangle", "HEAPPROF_DEMANGLE"},
};

const char *option_variable(const char *opt) {
  for (size_t k = 0; k < sizeof run_options / sizeof *run_options; k++)
    if (strcmp(opt, run_options[k].opt) == 0)
      return run_options[k].var;
  return NULL;
}

void check_value(const char *what, const char *var, const char *value) {
  const char *accepts;
  char buf[65];
  int bad = config_check(var, value, &accepts);
  if (value == NULL)
    die(2, "%s needs a value: %s", what, accepts);
  if (bad)
    die(2, "%s \"%s\" is not valid: expected %s", what, shown(value, buf),
        accepts);
}

/* Sets `var` to `value` once the library's own parser for `var` takes it;
 * `what` names it in the error (the option, or the inherited variable). */
static void set_checked(const char *what, const char *var, const char *value) {
  check_value(what, var, value);
  setenv(var, value, 1);
}

static void parse_run_option(char **argv, int *i) {
  const char *opt = argv[*i];
  if (strcmp(opt, "--peak") == 0) {
    setenv("HEAPPROF_PEAK", "1", 1);
    return;
  }
  const char *var = option_variable(opt);
  if (var == NULL)
    die(2, "unknown option %s for run (see heapprof run --help)", opt);
  set_checked(opt, var, argv[++*i]);
}

static int cmd_run(int argc, char **argv) {
  int i = 0;
  for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      fputs(usage_run, stdout);
      return 0;
    }
    parse_run_option(argv, &i);
  }
  if (i >= argc - 1)
    die(2, "run needs a command after -- (see heapprof run --help)");
  char **cmd = &argv[i + 1];
  char lib[PATH_MAX + 32], preload[2 * PATH_MAX];
  find_library(lib, sizeof lib);
  const char *old = getenv("LD_PRELOAD");
  snprintf(preload, sizeof preload, "%s%s%s", lib, old && *old ? ":" : "",
           old ? old : "");
  setenv("LD_PRELOAD", preload, 1);
  const char *tmpl = getenv("HEAPPROF_OUT");
  /* Without --out: the inherited template, or the default so that the exit
   * profile is written. */
  set_checked("HEAPPROF_OUT", "HEAPPROF_OUT", tmpl != NULL ? tmpl : DEFAULT_OUT);
  char where[CONFIG_PATH_MAX];
  describe_out(getenv("HEAPPROF_OUT"), getpid(), where, sizeof where);
  fprintf(stderr, "heapprof: running %s (pid %d); profiles to %s%s%s\n",
          cmd[0], (int)getpid(), where, getenv("HEAPPROF_HTTP") ? "; http " : "",
          getenv("HEAPPROF_HTTP") ? getenv("HEAPPROF_HTTP") : "");
  execvp(cmd[0], cmd);
  die(127, "cannot run %s: %s", cmd[0], strerror(errno));
}

/* ---- dump ---- */

/* The value of `name` in PID's environment, or NULL. */
static const char *environ_value(pid_t pid, const char *name, char *buf, size_t cap) {
  const char *value;
  if (target_env(pid, name, buf, cap, &value) < 0)
    die(1, "cannot read /proc/%d/environ: %s", (int)pid, strerror(errno));
  return value;
}

pid_t parse_pid(const char *s) {
  char *end;
  errno = 0;
  long pid = strtol(s, &end, 10);
  if (errno != 0 || *end != '\0' || end == s || pid <= 0 || pid > INT_MAX)
    die(2, "%s is not a process id", s);
  return (pid_t)pid;
}

/* A glob pattern for PID's profiles: %p the pid, %n and %t any digits. A
 * relative template is relative to the target's working directory. */
static void pattern_for(pid_t pid, const char *tmpl, char *out, size_t cap) {
  size_t at = 0;
  if (tmpl[0] != '/')
    at = (size_t)snprintf(out, cap, "/proc/%d/cwd/", (int)pid);
  for (const char *c = tmpl; *c && at + 24 < cap; c++) {
    if (*c == '%' && (c[1] == 'n' || c[1] == 't'))
      out[at++] = '*', c++;
    else if (*c == '%' && c[1] == 'p')
      at += (size_t)snprintf(out + at, cap - at, "%d", (int)pid), c++;
    else if (*c == '%' && c[1] == '%')
      out[at++] = '%', c++;
    else if (*c == '*' || *c == '?' || *c == '[' || *c == '\\')
      out[at++] = '\\', out[at++] = *c;
    else
      out[at++] = *c;
  }
  out[at] = '\0';
}

static int ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), k = strlen(suffix);
  return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Whether a file matching the pattern is a finished profile: not a
 * temporary file (".heapprof-<pid>-<n>.tmp", or "<name>.tmp.<pid>.<n>" from
 * older libraries) and not a peak profile ("….peak.pb.gz", "….peak"). */
static int is_profile(const char *path) {
  const char *slash = strrchr(path, '/'), *base = slash ? slash + 1 : path;
  int tmp = (strncmp(base, ".heapprof-", 10) == 0 && ends_with(base, ".tmp")) ||
            strstr(base, ".tmp.") != NULL;
  int peak = strstr(base, ".peak.") != NULL || ends_with(base, ".peak");
  return !tmp && !peak;
}

static int cmd_dump(int argc, char **argv) {
  if (argc >= 1 && (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0)) {
    fputs(usage_dump, stdout);
    return 0;
  }
  long timeout = 30;
  if (argc == 3 && strcmp(argv[1], "--timeout") == 0) {
    char *end;
    timeout = strtol(argv[2], &end, 10);
    if (*end != '\0' || timeout < 1 || timeout > 86400)
      die(2, "--timeout %s: expected seconds from 1 to 86400", argv[2]);
  } else if (argc != 1) {
    die(2, "dump needs PID [--timeout SECONDS] (see heapprof dump --help)");
  }
  long pid = parse_pid(argv[0]);
  if (kill((pid_t)pid, 0) != 0)
    die(1, "no process %ld: %s", pid, strerror(errno));
  target_mapping_t lib;
  if (target_mapping((pid_t)pid, target_is_heapprof, &lib) != 1)
    die(1, "process %ld has no libheapprof.so loaded", pid);
  /* Attached: what the attach recorded, for this very process. Else what
   * it was started with. */
  static char envbuf[1 << 20];
  static attach_state_t state;
  char out[CONFIG_PATH_MAX];
  int sig = SIGUSR2;
  const char *signame = NULL;
  if (state_read((pid_t)pid, &state)) {
    snprintf(out, sizeof out, "%s", state.out);
    sig = state.signal;
  } else {
    const char *tmpl = environ_value((pid_t)pid, "HEAPPROF_OUT", envbuf, sizeof envbuf);
    snprintf(out, sizeof out, "%s", tmpl ? tmpl : DEFAULT_OUT);
    signame = environ_value((pid_t)pid, "HEAPPROF_SIGNAL", envbuf, sizeof envbuf);
    if (signame != NULL && config_parse_signal(signame, &sig) != 0)
      sig = SIGUSR2;
  }
  if (sig == 0 && signame != NULL)
    die(1, "process %ld has HEAPPROF_SIGNAL=%s: it does not dump on a signal",
        pid, signame);
  if (sig == 0)
    die(1, "process %ld was attached with --signal none: it does not dump on a signal",
        pid);
  /* heapprof's handler is hidden from the program, not from the kernel:
   * no handler means no profiling there (detached, or never started), and
   * the signal's default action would end the process. */
  target_status_t st;
  if (target_status((pid_t)pid, &st) != 0)
    die(1, "cannot read /proc/%ld/status: %s", pid, strerror(errno));
  if (!(st.sig_cgt >> (sig - 1) & 1))
    die(1, "process %ld does not catch signal %d: heapprof is not profiling "
        "there (detached?); nothing was sent", pid, sig);
  char pattern[CONFIG_PATH_MAX + 64];
  pattern_for((pid_t)pid, out, pattern, sizeof pattern);
  glob_t before;
  if (glob(pattern, 0, NULL, &before) != 0)
    before.gl_pathc = 0;
  if (kill((pid_t)pid, sig) != 0)
    die(1, "cannot signal %ld: %s", pid, strerror(errno));
  struct timespec start, now, pause = {0, 20000000};
  clock_gettime(CLOCK_MONOTONIC, &start);
  do {
    glob_t g;
    if (glob(pattern, 0, NULL, &g) == 0) {
      for (size_t i = 0; i < g.gl_pathc; i++) {
        int old = 0;
        for (size_t j = 0; j < before.gl_pathc && !old; j++)
          old = strcmp(g.gl_pathv[i], before.gl_pathv[j]) == 0;
        if (!old && is_profile(g.gl_pathv[i])) {
          char real[PATH_MAX];
          puts(realpath(g.gl_pathv[i], real) ? real : g.gl_pathv[i]);
          return 0;
        }
      }
      globfree(&g);
    }
    nanosleep(&pause, NULL);
    clock_gettime(CLOCK_MONOTONIC, &now);
  } while (now.tv_sec - start.tv_sec < timeout);
  die(1, "no new profile matching %s from %ld within %ld s", out, pid, timeout);
}

int main(int argc, char **argv) {
  if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
    fputs(usage_main, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (strcmp(argv[1], "--version") == 0) {
    printf("heapprof %s\n", HEAPPROF_VERSION_STRING);
    return 0;
  }
  if (strcmp(argv[1], "run") == 0)
    return cmd_run(argc - 2, argv + 2);
  if (strcmp(argv[1], "dump") == 0)
    return cmd_dump(argc - 2, argv + 2);
  if (strcmp(argv[1], "attach") == 0)
    return cmd_attach(argc - 2, argv + 2);
  if (strcmp(argv[1], "detach") == 0)
    return cmd_detach(argc - 2, argv + 2);
  die(2, "unknown command %s (heapprof run | dump | attach | detach | --help)", argv[1]);
}
