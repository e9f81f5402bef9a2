/*
 * proc_common — deadlines, child processes and soft checks for the
 * process-contract tests (see proc_common.h).
 */
#define _GNU_SOURCE
#include "proc_common.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testlib.h"

static char stage[512] = "starting";

static void on_alarm(int sig) {
  (void)sig;
  static const char head[] = "HANG: deadline passed while ";
  ssize_t ignored = write(2, head, sizeof head - 1);
  ignored = write(2, stage, strlen(stage));
  ignored = write(2, "\n", 1);
  (void)ignored;
  _exit(2);
}

void pc_deadline(unsigned seconds) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGALRM, &sa, NULL);
  alarm(seconds);
}

void pc_stage(const char *fmt, ...) {
  char buf[sizeof stage];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  memcpy(stage, buf, sizeof stage); /* one copy: the handler reads whole */
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int pc_wait(pid_t pid, unsigned deadline_s, int *status) {
  int64_t end = now_ms() + (int64_t)deadline_s * 1000;
  struct timespec pause = {0, 5000000};
  for (;;) {
    pid_t r = waitpid(pid, status, WNOHANG);
    if (r == pid)
      return 0;
    if (r < 0 && errno != EINTR) {
      *status = -1;
      return 0;
    }
    if (now_ms() >= end)
      break;
    nanosleep(&pause, NULL);
  }
  kill(pid, SIGKILL);
  while (waitpid(pid, status, 0) < 0 && errno == EINTR)
    ;
  return -1;
}

static char *slurp_path(const char *path) {
  FILE *f = fopen(path, "re");
  if (f == NULL)
    return strdup("");
  size_t cap = 1 << 16, len = 0;
  char *buf = malloc(cap);
  size_t got;
  while ((got = fread(buf + len, 1, cap - len - 1, f)) > 0) {
    len += got;
    if (cap - len < 4096)
      buf = realloc(buf, cap *= 2);
  }
  buf[len] = '\0';
  fclose(f);
  return buf;
}

void pc_run(char *const argv[], char *const env[], const char *cwd,
            const sigset_t *mask, int ignore_usr2, unsigned deadline_s,
            pc_result_t *r) {
  static unsigned runs;
  char outp[600], errp[600];
  unsigned n = runs++;
  snprintf(outp, sizeof outp, "%s/pc-run-%u.out", tl_tmpdir(), n);
  snprintf(errp, sizeof errp, "%s/pc-run-%u.err", tl_tmpdir(), n);
  memset(r, 0, sizeof *r);
  fflush(NULL);
  pid_t pid = fork();
  CHECK(pid >= 0, "fork: %s", strerror(errno));
  if (pid == 0) {
    setpgid(0, 0);
    int o = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int e = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
      _exit(126);
    close(o);
    close(e);
    if (cwd != NULL && chdir(cwd) != 0)
      _exit(126);
    alarm(0);
    signal(SIGALRM, SIG_DFL);
    signal(SIGUSR2, ignore_usr2 ? SIG_IGN : SIG_DFL);
    if (mask != NULL)
      sigprocmask(SIG_SETMASK, mask, NULL);
    execve(argv[0], argv, env);
    dprintf(2, "cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  int status;
  r->hung = pc_wait(pid, deadline_s, &status) != 0;
  kill(-pid, SIGKILL); /* whatever it left behind */
  r->exited = !r->hung && WIFEXITED(status);
  r->status = r->exited ? WEXITSTATUS(status)
              : WIFSIGNALED(status) ? WTERMSIG(status) : -1;
  r->out = slurp_path(outp);
  r->err = slurp_path(errp);
  unlink(outp);
  unlink(errp);
}

void pc_result_free(pc_result_t *r) {
  free(r->out);
  free(r->err);
  memset(r, 0, sizeof *r);
}

const char *pc_describe(const pc_result_t *r) {
  static char buf[128];
  if (r->hung)
    return "hung (killed after the deadline)";
  if (r->exited)
    snprintf(buf, sizeof buf, "exit %d", r->status);
  else
    snprintf(buf, sizeof buf, "signal %d (%s)", r->status,
             strsignal(r->status));
  return buf;
}

char **pc_env(const char *lib, char *const vars[], size_t nvars) {
  char **env = calloc(nvars + 4, sizeof *env);
  size_t k = 0;
  env[k++] = "PATH=/usr/local/bin:/usr/bin:/bin";
  if (getenv("TMPDIR") != NULL) {
    char *t = malloc(strlen(getenv("TMPDIR")) + 8);
    sprintf(t, "TMPDIR=%s", getenv("TMPDIR"));
    env[k++] = t;
  }
  if (lib != NULL) {
    char *p = malloc(strlen(lib) + 16);
    sprintf(p, "LD_PRELOAD=%s", lib);
    env[k++] = p;
  }
  for (size_t i = 0; i < nvars; i++)
    env[k++] = vars[i];
  env[k] = NULL;
  return env;
}

void *pc_api(const char *name) { return dlsym(RTLD_DEFAULT, name); }

int pc_lines(const char *s) {
  int n = 0;
  for (const char *c = s; *c; c++)
    if (*c == '\n' || c[1] == '\0')
      n++;
  return n;
}

int pc_wait_file(const char *path, unsigned deadline_s) {
  int64_t end = now_ms() + (int64_t)deadline_s * 1000;
  struct timespec pause = {0, 10000000};
  while (access(path, F_OK) != 0) {
    if (now_ms() >= end)
      return -1;
    nanosleep(&pause, NULL);
  }
  return 0;
}

/* The thread's state letter and, when it sleeps in a system call, the
 * call's number and first argument. */
static int task_in_write(pid_t tid, int fd) {
  char path[96], buf[512];
  snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
  FILE *f = fopen(path, "re");
  if (f == NULL)
    return 0;
  char *ok = fgets(buf, sizeof buf, f);
  fclose(f);
  char *paren = ok ? strrchr(buf, ')') : NULL;
  if (paren == NULL || paren[1] != ' ' || paren[2] != 'S')
    return 0;
  snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)tid);
  f = fopen(path, "re");
  if (f == NULL)
    return 0;
  long nr = -1;
  unsigned long arg0 = 0;
  int got = fscanf(f, "%ld %lx", &nr, &arg0);
  fclose(f);
  return got == 2 && nr == SYS_write &&
         arg0 == (unsigned long)fd;
}

int pc_blocked_in_write(pid_t tid, int fd) {
  struct timespec pause = {0, 2000000};
  if (!task_in_write(tid, fd))
    return 0;
  nanosleep(&pause, NULL);
  return task_in_write(tid, fd);
}

static int failures;

void pc_expect(int ok, const char *fmt, ...) {
  if (ok)
    return;
  failures++;
  fprintf(stderr, "FAIL: ");
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}

int pc_finish(const char *what) {
  if (failures > 0) {
    fprintf(stderr, "%d check(s) failed: %s\n", failures, what);
    return 1;
  }
  printf("ok: %s\n", what);
  return 0;
}
