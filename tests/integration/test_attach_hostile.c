/*
 * test_attach_hostile — `heapprof attach`/`detach` with the real library
 * against targets a hostile reviewer found wanting (issue 15).
 *
 * usage: test_attach_hostile MODE HEAPPROF BUSY [ALLOCATOR]
 *   busy_rate1  a process that never blocks, attached with --rate 1:
 *               `heapprof detach` must succeed (every allocator call then
 *               passes through libheapprof, so a safe point rule that
 *               refuses every libheapprof frame finds none), and the
 *               process must end with its blocks intact
 *   peer        the same process with ALLOCATOR (tcmalloc) preloaded:
 *               after an attach, blocks from before are freed and
 *               reallocated by that allocator, never by glibc's (tcmalloc
 *               exports its entry points under aliases: dladdr names
 *               malloc "__libc_malloc", which must not be mistaken for a
 *               canonical PLT stub)
 *   dump_after_detach  attach, detach, then `heapprof dump PID`: the
 *               library stays loaded but its dump signal was given back,
 *               so the dump must not send SIGUSR2 (its default action
 *               kills the process); the process must end normally
 *
 * Every command and the target run under a hang detector (waitpid with a
 * deadline of 120 s), never a timed assertion.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testlib.h"

#define DEADLINE_S 120

static char *cli, *busy, *peer;
static int busy_out; /* the read end of the target's stdout */
static char dir[4096], go[4200], outs[4200];

/* waitpid with a deadline: the status, or -1 after killing a hung child. */
static int wait_for(pid_t pid, const char *what) {
  for (int i = 0; i < DEADLINE_S * 50; i++) {
    int st;
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid)
      return st;
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  CHECK(0, "%s hung for %d s", what, DEADLINE_S);
}

static int command(char *const argv[]) {
  pid_t pid = fork();
  CHECK(pid >= 0, "fork: %s", strerror(errno));
  if (pid == 0) {
    execv(argv[0], argv);
    _exit(127);
  }
  int st = wait_for(pid, argv[1]);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* The target, preloading `preload` if not NULL; returns once it is ready. */
static pid_t start_busy(const char *preload) {
  int fds[2];
  CHECK(pipe(fds) == 0, "pipe: %s", strerror(errno));
  unlink(go);
  pid_t pid = fork();
  CHECK(pid >= 0, "fork: %s", strerror(errno));
  if (pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    close(fds[1]);
    unsetenv("LD_PRELOAD");
    if (preload != NULL)
      setenv("LD_PRELOAD", preload, 1);
    execl(busy, busy, go, (char *)NULL);
    _exit(127);
  }
  close(fds[1]);
  char line[16] = {0};
  CHECK(read(fds[0], line, sizeof line - 1) > 0 && strncmp(line, "ready", 5) == 0,
        "the target did not start");
  busy_out = fds[0]; /* open until it ends: what it says last must not
                        meet a closed pipe (SIGPIPE) */
  return pid;
}

/* Lets the target check its blocks and end; its exit status. */
static int finish_busy(pid_t pid) {
  int fd = open(go, O_WRONLY | O_CREAT, 0600);
  CHECK(fd >= 0, "%s: %s", go, strerror(errno));
  close(fd);
  int st = wait_for(pid, "the target");
  close(busy_out);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void test_busy_rate1(void) {
  pid_t pid = start_busy(NULL);
  char p[16];
  snprintf(p, sizeof p, "%d", (int)pid);
  char *attach[] = {cli, "attach", p, "--rate", "1", "--signal", "none", "--out", outs, NULL};
  CHECK(command(attach) == 0, "attach --rate 1 to a busy process failed");
  char *detach[] = {cli, "detach", p, NULL};
  int rc = command(detach);
  int st = finish_busy(pid);
  CHECK(rc == 0, "detach of a busy process attached at --rate 1 failed (status %d)", rc);
  CHECK(st == 0, "the target ended with status %d", st);
}

static void test_peer(void) {
  pid_t pid = start_busy(peer);
  char p[16];
  snprintf(p, sizeof p, "%d", (int)pid);
  char *attach[] = {cli, "attach", p, "--rate", "64", "--signal", "none", "--out", outs, NULL};
  int rc = command(attach);
  int st = finish_busy(pid);
  CHECK(rc == 0, "attach to a process under %s failed (status %d)", peer, rc);
  CHECK(st == 0, "the process under %s ended with status %d after the attach", peer, st);
}

static void test_dump_after_detach(void) {
  pid_t pid = start_busy(NULL);
  char p[16];
  snprintf(p, sizeof p, "%d", (int)pid);
  char *attach[] = {cli, "attach", p, "--out", outs, NULL};
  CHECK(command(attach) == 0, "attach failed");
  char *detach[] = {cli, "detach", p, NULL};
  int rc = command(detach);
  char *dump[] = {cli, "dump", p, NULL};
  command(dump); /* its status is not the point: the process's fate is */
  int st = finish_busy(pid);
  CHECK(rc == 0, "detach failed (status %d)", rc);
  CHECK(st == 0, "`heapprof dump` after a detach: the process ended with status %d "
        "(128 + %d is SIGUSR2)", st, SIGUSR2);
}

int main(int argc, char **argv) {
  CHECK(argc >= 4, "usage: test_attach_hostile MODE HEAPPROF BUSY [ALLOCATOR]");
  cli = argv[2];
  busy = argv[3];
  peer = argc > 4 ? argv[4] : NULL;
  CHECK(access("/usr/bin/gdb", X_OK) == 0, "gdb is missing: run scripts/setup.sh");
  const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  snprintf(dir, sizeof dir, "%s/attach_hostile.XXXXXX", tmp);
  CHECK(mkdtemp(dir) != NULL, "mkdtemp %s: %s", dir, strerror(errno));
  snprintf(go, sizeof go, "%s/go", dir);
  snprintf(outs, sizeof outs, "%s/p.%%p.%%n.pb.gz", dir);
  if (strcmp(argv[1], "busy_rate1") == 0)
    test_busy_rate1();
  else if (strcmp(argv[1], "dump_after_detach") == 0)
    test_dump_after_detach();
  else if (strcmp(argv[1], "peer") == 0) {
    CHECK(peer != NULL && access(peer, R_OK) == 0, "no allocator to preload");
    test_peer();
  } else
    CHECK(0, "unknown mode %s", argv[1]);
  printf("ok\n");
  return 0;
}
