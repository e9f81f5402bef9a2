/*
 * att_util — shared helpers of the attach tests (att_util.h says what).
 * The /proc readers are written here on purpose rather than taken from
 * cli/target.c: the facts a test checks must not be read by the code it
 * tests.
 */
#define _GNU_SOURCE
#include "att_util.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <sys/resource.h>
#include <unistd.h>

static const char *cli_path;

void att_require(const char *path, const char *what) {
  CHECK(access(path, X_OK) == 0,
        "%s (%s) is missing: it is a prerequisite of this test (scripts/setup.sh "
        "installs it)", path, what);
}

char **att_cli_env(const char *path) {
  static char pathv[PATH_MAX + 8], tmpv[PATH_MAX + 8], xdgv[PATH_MAX + 32];
  static char *env[4];
  static char xdg[PATH_MAX];
  if (xdg[0] == '\0') {
    snprintf(xdg, sizeof xdg, "%s/xdg", tl_tmpdir());
    CHECK(mkdir(xdg, 0700) == 0 || errno == EEXIST, "mkdir %s", xdg);
  }
  snprintf(pathv, sizeof pathv, "PATH=%s", path != NULL ? path : "/usr/bin:/bin");
  snprintf(tmpv, sizeof tmpv, "TMPDIR=%s", tl_tmpdir());
  snprintf(xdgv, sizeof xdgv, "XDG_RUNTIME_DIR=%s", xdg);
  env[0] = pathv, env[1] = tmpv, env[2] = xdgv, env[3] = NULL;
  return env;
}

static char *slurp_fd(int fd) {
  size_t len = 0, cap = 8192;
  char *buf = malloc(cap);
  CHECK(buf != NULL, "out of memory");
  lseek(fd, 0, SEEK_SET);
  ssize_t n;
  while ((n = read(fd, buf + len, cap - len - 1)) > 0)
    if ((len += (size_t)n) + 1 >= cap)
      CHECK((buf = realloc(buf, cap *= 2)) != NULL, "out of memory");
  buf[len] = '\0';
  return buf;
}

static int tmpfile_fd(const char *tag) {
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/%s.XXXXXX", tl_tmpdir(), tag);
  int fd = mkstemp(path);
  CHECK(fd >= 0, "mkstemp %s: %s", path, strerror(errno));
  unlink(path);
  return fd;
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void pause_ms(long ms) {
  struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&t, NULL);
}

att_result_t att_run(char *const argv[], char *const env[]) {
  return att_run_stdin(argv, env, "/dev/null");
}

att_result_t att_run_stdin(char *const argv[], char *const env[], const char *in) {
  int o = tmpfile_fd("run.out"), e = tmpfile_fd("run.err");
  fflush(NULL);
  pid_t pid = fork();
  CHECK(pid >= 0, "fork: %s", strerror(errno));
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int input = open(in, O_RDONLY);
    if (input < 0)
      _exit(126);
    dup2(input, 0), dup2(o, 1), dup2(e, 2);
    execve(argv[0], argv, env);
    _exit(127);
  }
  double begin = now_s();
  int status;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (now_s() - begin > ATT_DEADLINE_S) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      CHECK(0, "%s %s %s hung (more than %d s)", argv[0], argv[1] ? argv[1] : "",
            argv[1] && argv[2] ? argv[2] : "", ATT_DEADLINE_S);
    }
    pause_ms(10);
  }
  att_result_t r = {WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp_fd(o), slurp_fd(e)};
  close(o), close(e);
  return r;
}

void att_set_cli(const char *cli) {
  att_require(cli, "the heapprof command");
  cli_path = cli;
}

att_result_t att_cli(const char *first, ...) {
  char *argv[32] = {(char *)cli_path, (char *)first};
  va_list ap;
  va_start(ap, first);
  int i = 2;
  while (i < 31 && (argv[i] = va_arg(ap, char *)) != NULL)
    i++;
  va_end(ap);
  argv[i] = NULL;
  return att_run(argv, att_cli_env(NULL));
}

static void free_result(att_result_t *r) { free(r->out), free(r->err); }

void att_attach(pid_t pid, const char *rate, const char *out, ...) {
  char pids[16];
  snprintf(pids, sizeof pids, "%d", (int)pid);
  char *argv[32] = {(char *)cli_path, "attach", pids, "--rate", (char *)rate,
                    "--out", (char *)out};
  int i = 7;
  va_list ap;
  va_start(ap, out);
  while (i < 31 && (argv[i] = va_arg(ap, char *)) != NULL)
    i++;
  va_end(ap);
  argv[i] = NULL;
  att_result_t r = att_run(argv, att_cli_env(NULL));
  CHECK(r.status == 0 && strstr(r.err, "heapprof: attached to") != NULL,
        "attach %d: status %d\n%s%s", (int)pid, r.status, r.err, r.out);
  free_result(&r);
}

char *att_dump(pid_t pid) {
  char pids[16];
  snprintf(pids, sizeof pids, "%d", (int)pid);
  att_result_t r = att_cli("dump", pids, NULL);
  if (r.status != 0 || r.out[0] != '/') {
    char path[64], state[256] = "gone";
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f != NULL && fgets(state, sizeof state, f) == NULL)
      snprintf(state, sizeof state, "unreadable");
    if (f != NULL)
      fclose(f);
    CHECK(0, "dump %d: status %d\n%s%s(the process: %.60s)", (int)pid, r.status, r.err, r.out,
          state);
  }
  r.out[strcspn(r.out, "\n")] = '\0';
  free(r.err);
  return r.out;
}

void att_detach(pid_t pid) {
  char pids[16];
  snprintf(pids, sizeof pids, "%d", (int)pid);
  att_result_t r = att_cli("detach", pids, NULL);
  CHECK(r.status == 0 && strstr(r.err, "heapprof: detached from") != NULL,
        "detach %d: status %d\n%s%s", (int)pid, r.status, r.err, r.out);
  free_result(&r);
}

/* ---- a target with pipes ---- */

void att_start(att_proc_t *p, char *const argv[], char *const env[]) {
  int in[2], out[2];
  CHECK(pipe2(in, O_CLOEXEC) == 0 && pipe2(out, O_CLOEXEC) == 0, "pipe");
  static int seq;
  snprintf(p->errpath, sizeof p->errpath, "%s/target%d.err", tl_tmpdir(), seq++);
  int err = open(p->errpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  CHECK(err >= 0, "open %s", p->errpath);
  fflush(NULL);
  p->pid = fork();
  CHECK(p->pid >= 0, "fork");
  if (p->pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* a failing test leaves no target */
    dup2(in[0], 0), dup2(out[1], 1), dup2(err, 2);
    execve(argv[0], argv, env);
    _exit(127);
  }
  close(in[0]), close(out[1]), close(err);
  p->in = in[1], p->out = out[0], p->len = 0;
}

const char *att_line(att_proc_t *p) {
  static char line[sizeof p->buf];
  double begin = now_s();
  for (;;) {
    char *nl = memchr(p->buf, '\n', p->len);
    if (nl != NULL) {
      size_t n = (size_t)(nl - p->buf);
      memcpy(line, p->buf, n);
      line[n] = '\0';
      memmove(p->buf, nl + 1, p->len - n - 1);
      p->len -= n + 1;
      return line;
    }
    CHECK(p->len < sizeof p->buf - 1, "a line of more than %zu bytes", sizeof p->buf);
    double left = ATT_DEADLINE_S - (now_s() - begin);
    CHECK(left > 0, "no line from %d within %d s (a hang); so far: '%.*s'", (int)p->pid,
          ATT_DEADLINE_S, (int)p->len, p->buf);
    struct pollfd pf = {.fd = p->out, .events = POLLIN};
    int rc = poll(&pf, 1, (int)(left * 1000) + 1);
    if (rc <= 0)
      continue;
    ssize_t n = read(p->out, p->buf + p->len, sizeof p->buf - 1 - p->len);
    if (n == 0) {
      if (p->len == 0)
        return NULL;
      memcpy(line, p->buf, p->len);
      line[p->len] = '\0';
      p->len = 0;
      return line;
    }
    if (n > 0)
      p->len += (size_t)n;
  }
}

void att_say(att_proc_t *p, const char *s) {
  size_t n = strlen(s);
  CHECK(write(p->in, s, n) == (ssize_t)n, "write to %d: %s", (int)p->pid, strerror(errno));
}

int att_wait(att_proc_t *p) {
  double begin = now_s();
  int status;
  while (waitpid(p->pid, &status, WNOHANG) == 0) {
    if (now_s() - begin > ATT_DEADLINE_S) {
      kill(p->pid, SIGKILL);
      waitpid(p->pid, &status, 0);
      CHECK(0, "target %d did not end within %d s (a hang)", (int)p->pid, ATT_DEADLINE_S);
    }
    pause_ms(10);
  }
  if (p->in >= 0)
    close(p->in);
  close(p->out);
  p->in = -1;
  return status;
}

char *att_stderr(const att_proc_t *p) {
  int fd = open(p->errpath, O_RDONLY | O_CLOEXEC);
  CHECK(fd >= 0, "open %s", p->errpath);
  char *s = slurp_fd(fd);
  close(fd);
  return s;
}

/* ---- /proc ---- */

static char *proc_file(pid_t pid, const char *name) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, name);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  CHECK(fd >= 0, "open %s: %s", path, strerror(errno));
  char *s = slurp_fd(fd);
  close(fd);
  return s;
}

static const char *status_field(const char *status, const char *name) {
  size_t n = strlen(name);
  for (const char *l = status; l != NULL && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
    if (strncmp(l, name, n) == 0 && l[n] == ':')
      return l + n + 1;
  CHECK(0, "no %s in /proc/PID/status", name);
  return NULL;
}

/* A number of /proc/PID/status, in `base`. */
static unsigned long long status_num(pid_t pid, const char *name, int base) {
  char *s = proc_file(pid, "status");
  unsigned long long v = strtoull(status_field(s, name), NULL, base);
  free(s);
  return v;
}

long att_threads(pid_t pid) { return (long)status_num(pid, "Threads", 10); }

uint64_t att_sigcgt(pid_t pid) { return status_num(pid, "SigCgt", 16); }

long att_tracer(pid_t pid) { return (long)status_num(pid, "TracerPid", 10); }

char att_state(pid_t pid) {
  char *s = proc_file(pid, "status");
  const char *v = status_field(s, "State");
  while (*v == ' ' || *v == '\t')
    v++;
  char c = *v;
  free(s);
  return c;
}

int att_has_heapprof(pid_t pid) {
  char *s = proc_file(pid, "maps");
  int has = strstr(s, "/libheapprof.so") != NULL;
  free(s);
  return has;
}

static int by_number(const struct dirent **a, const struct dirent **b) {
  return atoi((*a)->d_name) - atoi((*b)->d_name);
}

static int not_dot(const struct dirent *d) { return d->d_name[0] != '.'; }

char *att_fds(pid_t pid) {
  char dir[64];
  snprintf(dir, sizeof dir, "/proc/%d/fd", (int)pid);
  struct dirent **list;
  int n = scandir(dir, &list, not_dot, by_number);
  CHECK(n >= 0, "scandir %s: %s", dir, strerror(errno));
  size_t cap = 256 + (size_t)n * (PATH_MAX + 16), len = 0;
  char *out = malloc(cap);
  out[0] = '\0';
  for (int i = 0; i < n; i++) {
    char path[PATH_MAX], target[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, list[i]->d_name);
    ssize_t k = readlink(path, target, sizeof target - 1);
    target[k > 0 ? k : 0] = '\0';
    len += (size_t)snprintf(out + len, cap - len, "%s -> %s\n", list[i]->d_name, target);
    free(list[i]);
  }
  free(list);
  return out;
}

int att_find_process(int (*match)(const char *cmd, size_t n, void *ctx), void *ctx) {
  DIR *d = opendir("/proc");
  CHECK(d != NULL, "opendir /proc");
  struct dirent *e;
  int found = 0;
  while (found == 0 && (e = readdir(d)) != NULL) {
    if (!isdigit((unsigned char)e->d_name[0]))
      continue;
    char path[300], cmd[4096];
    snprintf(path, sizeof path, "/proc/%.32s/cmdline", e->d_name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      continue;
    ssize_t n = read(fd, cmd, sizeof cmd - 1);
    close(fd);
    if (n <= 0)
      continue;
    cmd[n] = '\0';
    if (match(cmd, (size_t)n, ctx))
      found = atoi(e->d_name);
  }
  closedir(d);
  return found;
}

/* A gdb run with "-p PID" (ctx: PID as text). */
static int gdb_of(const char *cmd, size_t n, void *ctx) {
  const char *base = strrchr(cmd, '/') ? strrchr(cmd, '/') + 1 : cmd;
  if (strcmp(base, "gdb") != 0)
    return 0;
  for (const char *a = cmd; a < cmd + n; a += strlen(a) + 1)
    if (strcmp(a, "-p") == 0 && a + 3 < cmd + n && strcmp(a + 3, (const char *)ctx) == 0)
      return 1;
  return 0;
}

int att_gdb_for(pid_t pid) {
  char want[32];
  snprintf(want, sizeof want, "%d", (int)pid);
  return att_find_process(gdb_of, want);
}

void att_nice(pid_t pid) {
  char dir[64];
  snprintf(dir, sizeof dir, "/proc/%d/task", (int)pid);
  DIR *d = opendir(dir);
  CHECK(d != NULL, "opendir %s", dir);
  struct dirent *t;
  while ((t = readdir(d)) != NULL)
    if (t->d_name[0] != '.')
      CHECK(setpriority(PRIO_PROCESS, (id_t)atoi(t->d_name), 10) == 0, "setpriority %s",
            t->d_name);
  closedir(d);
}

int att_tmp_fd(const char *tag) {
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/%s.XXXXXX", tl_tmpdir(), tag);
  int fd = mkstemp(path);
  CHECK(fd >= 0, "mkstemp");
  unlink(path);
  return fd;
}

/* ---- profiles ---- */

size_t att_samples_in_module(const tl_profile_t *p, const char *module) {
  /* Mappings: "ID: start/limit/offset FILE ..."; Locations: "ID: 0xADDR
   * M=MID ..."; Samples: "values...: loc loc ...". */
  const char *maps = strstr(p->raw, "\nMappings\n");
  const char *locs = strstr(p->raw, "\nLocations\n");
  const char *samples = strstr(p->raw, "Samples:\n");
  CHECK(maps && locs && samples, "unexpected pprof -raw text:\n%.2000s", p->raw);
  enum { MAXID = 1 << 20 };
  static unsigned char in_map[MAXID], in_loc[MAXID];
  memset(in_map, 0, sizeof in_map), memset(in_loc, 0, sizeof in_loc);
  size_t mlen = strlen(module);
  for (const char *l = maps + 10; *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : "") {
    char *after;
    long id = strtol(l, &after, 10);
    if (id <= 0 || id >= MAXID || *after != ':')
      continue;
    const char *file = after + 1;
    file += strspn(file, " ");
    file += strcspn(file, " \n"); /* start/limit/offset */
    file += strspn(file, " ");
    size_t flen = strcspn(file, " \n");
    if (flen >= mlen && strncmp(file + flen - mlen, module, mlen) == 0)
      in_map[id] = 1;
  }
  for (const char *l = locs + 11; l < maps; l = strchr(l, '\n') + 1) {
    char *end;
    long id = strtol(l, &end, 10);
    const char *m = strstr(l, " M=");
    const char *nl = strchr(l, '\n');
    if (id > 0 && id < MAXID && *end == ':' && m != NULL && m < nl) {
      long mid = strtol(m + 3, NULL, 10);
      if (mid > 0 && mid < MAXID && in_map[mid])
        in_loc[id] = 1;
    }
  }
  size_t count = 0;
  const char *l = strchr(samples, '\n') + 1;
  l = strchr(l, '\n') + 1; /* the sample types */
  for (; l < locs; l = strchr(l, '\n') + 1) {
    const char *colon = strchr(l, ':'), *nl = strchr(l, '\n');
    if (colon == NULL || colon > nl)
      continue;
    int values = 1;
    for (const char *c = l; c < colon; c++)
      if (!isdigit((unsigned char)*c) && *c != ' ' && *c != '-')
        values = 0;
    if (!values)
      continue;
    int hit = 0;
    for (const char *c = colon + 1; c < nl;) {
      char *end;
      long id = strtol(c, &end, 10);
      if (end == c)
        break;
      if (id > 0 && id < MAXID && in_loc[id])
        hit = 1;
      c = end;
    }
    count += (size_t)hit;
  }
  return count;
}

size_t att_samples_with_prefix(const tl_profile_t *p, const char *prefix) {
  size_t n = 0, k = strlen(prefix);
  for (size_t i = 0; i < p->nsamples; i++) {
    int hit = 0;
    for (size_t j = 0; j < p->samples[i].nlocs && !hit; j++)
      hit = strncmp(p->samples[i].funcs[j], prefix, k) == 0;
    n += (size_t)hit;
  }
  return n;
}
