/*
 * test_att_race — `heapprof attach` racing the target's life.
 *
 * usage: test_att_race exit|reuse HEAPPROF_CLI ATT_RACE
 *   exit   att_race spin: a process with no safe point, so the attach's
 *          gdb keeps it under ptrace looking for one; once gdb is attached
 *          (TracerPid set) the test lets it exit. attach must end with
 *          status 1 and the one line "heapprof: PID exited during the
 *          attach", the process's exit status must be its own (0), and no
 *          gdb may be left: the test is a child subreaper, so a gdb the
 *          command left behind would be its child, and /proc must show no
 *          gdb with "-p PID". Three times.
 *   reuse  the pid is reused between the command's checks and gdb's
 *          attach. The command has no option to pass an expected start
 *          time: it reads the target's start time itself before running
 *          gdb, and its gdb script compares. To make the race happen every
 *          time, the test puts a `gdb` of its own first in the command's
 *          PATH (the command runs the first gdb on PATH): a shell script
 *          that tells the test it is about to run and waits for a go.
 *          Meanwhile the test kills the first process, waits two clock
 *          ticks (start times are in ticks), and creates a new one with
 *          the SAME pid (clone3 with set_tid: root); then lets the real
 *          gdb run. attach must refuse with "heapprof: PID exited; a new
 *          process now has that number (it was not touched)", and the new
 *          process must be untouched (no libheapprof mapped, not stopped,
 *          not traced), then end normally.
 *
 * Hang detectors only (att_util.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "att_util.h"

static char *cli, *prog;
static char *plain_env[] = {"PATH=/usr/bin:/bin", NULL};

static void pause_ms(long ms) {
  struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&t, NULL);
}

typedef struct running {
  pid_t pid;
  int out, err;
} running_t;


/* `heapprof attach PID --rate 1 --out ...` in the background. */
static running_t attach_start(pid_t pid, const char *path) {
  running_t r = {0, att_tmp_fd("cli.out"), att_tmp_fd("cli.err")};
  char pids[16], out[PATH_MAX];
  snprintf(pids, sizeof pids, "%d", (int)pid);
  snprintf(out, sizeof out, "%s/race.%%n.pb.gz", tl_tmpdir());
  char *argv[] = {cli, "attach", pids, "--rate", "1", "--out", out, NULL};
  char **env = att_cli_env(path);
  fflush(NULL);
  r.pid = fork();
  CHECK(r.pid >= 0, "fork");
  if (r.pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int null = open("/dev/null", O_RDONLY);
    dup2(null, 0), dup2(r.out, 1), dup2(r.err, 2);
    execve(argv[0], argv, env);
    _exit(127);
  }
  return r;
}

static char *slurp(int fd) {
  char *s = calloc(1, 65536);
  lseek(fd, 0, SEEK_SET);
  ssize_t n = read(fd, s, 65535);
  s[n > 0 ? n : 0] = '\0';
  close(fd);
  return s;
}

/* Whether the command has ended (without waiting). */
static int ended(running_t *r, int *status) { return waitpid(r->pid, status, WNOHANG) == r->pid; }

static att_result_t attach_finish(running_t *r) {
  int status = 0;
  for (int i = 0; !ended(r, &status); i++) {
    CHECK(i < ATT_DEADLINE_S * 100, "heapprof attach hung (more than %d s)", ATT_DEADLINE_S);
    pause_ms(10);
  }
  att_result_t res = {WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(r->out),
                      slurp(r->err)};
  return res;
}

/* No gdb left: none with -p PID in /proc, and no orphan reparented to
 * this subreaper (every child of ours has been reaped). */
static void no_gdb_left(pid_t pid) {
  int gdb = att_gdb_for(pid);
  CHECK(gdb == 0, "gdb %d for %d is still running", gdb, (int)pid);
  int status;
  pid_t orphan = waitpid(-1, &status, WNOHANG);
  CHECK(orphan == -1 && errno == ECHILD, "a process (%d) was left behind, now ours",
        (int)orphan);
}

static void test_exit(void) {
  CHECK(prctl(PR_SET_CHILD_SUBREAPER, 1) == 0, "PR_SET_CHILD_SUBREAPER: %s", strerror(errno));
  char flagpath[PATH_MAX];
  snprintf(flagpath, sizeof flagpath, "%s/flag", tl_tmpdir());
  for (int round = 0; round < 3; round++) {
    int fd = open(flagpath, O_RDWR | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0 && ftruncate(fd, 4096) == 0, "flag file");
    unsigned char *flag = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(flag != MAP_FAILED, "mmap");
    close(fd);
    att_proc_t t;
    char *argv[] = {prog, "spin", flagpath, NULL};
    att_start(&t, argv, plain_env);
    const char *ready = att_line(&t);
    CHECK(ready && strcmp(ready, "ready") == 0, "att_race spin: %s", ready ? ready : "EOF");
    running_t r = attach_start(t.pid, NULL);
    int status;
    for (int i = 0; att_tracer(t.pid) == 0; i++) {
      CHECK(!ended(&r, &status), "attach ended (status %#x) before gdb attached:\n%s", status,
            slurp(r.err));
      CHECK(i < ATT_DEADLINE_S * 100, "gdb did not attach to %d within %d s", (int)t.pid,
            ATT_DEADLINE_S);
      pause_ms(10);
    }
    flag[0] = 1; /* the target exits now, under gdb */
    att_result_t res = attach_finish(&r);
    char want[128];
    snprintf(want, sizeof want, "heapprof: %d exited during the attach\n", (int)t.pid);
    CHECK(res.status == 1 && strcmp(res.err, want) == 0 && res.out[0] == '\0',
          "round %d: status %d, want 1 and the line '%s':\n%s%s", round, res.status, want,
          res.err, res.out);
    status = att_wait(&t);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "the target's own exit status is lost: %#x", status);
    no_gdb_left(t.pid);
    munmap(flag, 4096);
    printf("ok: round %d: %s", round, res.err);
    free(res.out), free(res.err);
  }
}

/* ---- reuse ---- */

static unsigned long long start_time(pid_t pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  int fd = open(path, O_RDONLY);
  CHECK(fd >= 0, "open %s", path);
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  CHECK(n > 0, "read %s", path);
  buf[n] = '\0';
  char *p = strrchr(buf, ')');
  CHECK(p != NULL, "%s: %s", path, buf);
  unsigned long long v = 0;
  p += 2; /* field 3 */
  for (int field = 3; field < 22; field++)
    p = strchr(p, ' ') + 1;
  sscanf(p, "%llu", &v);
  return v;
}

static unsigned long long ticks_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_BOOTTIME, &t);
  long hz = sysconf(_SC_CLK_TCK);
  return (unsigned long long)t.tv_sec * (unsigned long long)hz +
         (unsigned long long)t.tv_nsec / (1000000000ull / (unsigned long long)hz);
}

struct clone_args_v1 {
  uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
  uint64_t set_tid, set_tid_size;
};

/* argv as a new child with the pid `want`: clone3 with set_tid. stdin and
 * stdout pipes as att_start makes them. */
static void start_as(att_proc_t *p, pid_t want, char *const argv[]) {
  int in[2], out[2];
  CHECK(pipe2(in, O_CLOEXEC) == 0 && pipe2(out, O_CLOEXEC) == 0, "pipe");
  snprintf(p->errpath, sizeof p->errpath, "%s/reused.err", tl_tmpdir());
  int err = open(p->errpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  pid_t tid = want;
  struct clone_args_v1 a;
  memset(&a, 0, sizeof a);
  a.exit_signal = SIGCHLD;
  a.set_tid = (uint64_t)(uintptr_t)&tid;
  a.set_tid_size = 1;
  fflush(NULL);
  long pid = syscall(SYS_clone3, &a, sizeof a);
  CHECK(pid >= 0, "clone3 with set_tid %d: %s (the test needs root, for "
        "CAP_CHECKPOINT_RESTORE)", (int)want, strerror(errno));
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    dup2(in[0], 0), dup2(out[1], 1), dup2(err, 2);
    execve(argv[0], argv, plain_env);
    _exit(127);
  }
  close(in[0]), close(out[1]), close(err);
  p->pid = (pid_t)pid, p->in = in[1], p->out = out[0], p->len = 0;
  CHECK(p->pid == want, "clone3 gave pid %d, not %d", (int)p->pid, (int)want);
}

static void test_reuse(void) {
  const char *dir = tl_tmpdir();
  char bin[PATH_MAX], wrapper[PATH_MAX + 8], fifo_a[PATH_MAX], fifo_b[PATH_MAX];
  char path[PATH_MAX + 32];
  snprintf(bin, sizeof bin, "%s/bin", dir);
  snprintf(wrapper, sizeof wrapper, "%s/gdb", bin);
  snprintf(fifo_a, sizeof fifo_a, "%s/about-to-run-gdb", dir);
  snprintf(fifo_b, sizeof fifo_b, "%s/run-gdb", dir);
  snprintf(path, sizeof path, "%s:/usr/bin:/bin", bin);
  CHECK(mkdir(bin, 0700) == 0 && mkfifo(fifo_a, 0600) == 0 && mkfifo(fifo_b, 0600) == 0,
        "mkdir, mkfifo: %s", strerror(errno));
  FILE *f = fopen(wrapper, "w");
  CHECK(f != NULL, "create %s", wrapper);
  fprintf(f, "#!/bin/sh\n# test_att_race: the pid is reused while this waits\n"
             "echo about-to-run > '%s'\nread go < '%s'\nexec /usr/bin/gdb \"$@\"\n",
          fifo_a, fifo_b);
  CHECK(fclose(f) == 0 && chmod(wrapper, 0700) == 0, "write %s", wrapper);

  att_proc_t old;
  char *argv[] = {prog, "plain", NULL};
  att_start(&old, argv, plain_env);
  const char *line = att_line(&old);
  CHECK(line && strcmp(line, "ready") == 0, "att_race plain: %s", line ? line : "EOF");
  pid_t pid = old.pid;
  unsigned long long old_start = start_time(pid);

  int a = open(fifo_a, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  CHECK(a >= 0, "open %s", fifo_a);
  running_t r = attach_start(pid, path);
  char buf[64];
  int status;
  for (int i = 0;; i++) {
    struct pollfd pf = {.fd = a, .events = POLLIN};
    if (poll(&pf, 1, 10) == 1 && read(a, buf, sizeof buf) > 0)
      break;
    CHECK(!ended(&r, &status), "attach ended (status %#x) before running gdb:\n%s", status,
          slurp(r.err));
    CHECK(i < ATT_DEADLINE_S * 100, "the command did not run gdb within %d s", ATT_DEADLINE_S);
  }
  /* The command has checked the process and read its start time. */
  kill(pid, SIGKILL);
  status = att_wait(&old);
  CHECK(WIFSIGNALED(status), "the first process ended with %#x", status);
  while (ticks_now() < old_start + 2)
    pause_ms(5);
  att_proc_t reused;
  char *argv2[] = {prog, "plain", NULL};
  start_as(&reused, pid, argv2);
  line = att_line(&reused);
  CHECK(line && strcmp(line, "ready") == 0, "the new process: %s", line ? line : "EOF");
  CHECK(start_time(pid) != old_start, "same start time %llu", old_start);
  int b = open(fifo_b, O_WRONLY | O_CLOEXEC);
  CHECK(b >= 0 && write(b, "go\n", 3) == 3, "write %s", fifo_b);
  close(b);
  att_result_t res = attach_finish(&r);
  close(a);
  char want[128];
  snprintf(want, sizeof want, "heapprof: %d exited; a new process now has that number (it "
           "was not touched)\n", (int)pid);
  CHECK(res.status == 1 && strcmp(res.err, want) == 0 && res.out[0] == '\0',
        "status %d, want 1 and the line '%s':\n%s%s", res.status, want, res.err, res.out);
  printf("ok: %s", res.err);
  CHECK(!att_has_heapprof(pid), "libheapprof was loaded into the new process %d", (int)pid);
  char st = att_state(pid);
  long tracer = att_tracer(pid);
  CHECK(st != 'T' && st != 't' && tracer == 0, "the new process: state %c, tracer %ld", st,
        tracer);
  CHECK(att_gdb_for(pid) == 0, "a gdb for %d is left", (int)pid);
  close(reused.in);
  reused.in = -1;
  status = att_wait(&reused);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the new process ended with %#x",
        status);
  printf("ok: the new process with pid %d was left alone and ended normally\n", (int)pid);
}

int main(int argc, char **argv) {
  CHECK(argc == 4, "usage: test_att_race exit|reuse HEAPPROF_CLI ATT_RACE");
  att_require("/usr/bin/gdb", "gdb, which heapprof attach runs");
  att_set_cli(argv[2]);
  cli = argv[2], prog = argv[3];
  att_require(prog, "the target program");
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (strcmp(argv[1], "exit") == 0)
    test_exit();
  else if (strcmp(argv[1], "reuse") == 0)
    test_reuse();
  else
    CHECK(0, "unknown mode %s", argv[1]);
  return 0;
}
