/*
 * fds_lowest — open() in the program returns the lowest free number, and
 * /proc/self/fd lists only the program's own descriptors, with every
 * trigger on (behaviour B2).
 *
 * usage: fds_lowest LIBHEAPPROF main|fd0|forked
 *   main:   the program starts with 0, 1, 2; at the top of main, after a
 *           SIGUSR2 profile was written, and all along 2.5 s of interval,
 *           growth, peak and leak-watch work, open("/dev/null") returns 3
 *           and /proc/self/fd lists 0, 1, 2 and nothing else;
 *   fd0:    the driver starts the program with descriptor 0 closed: it is
 *           still closed in main (open() gives 0), and children the program
 *           starts with posix_spawn and with fork+exec, with 0 closed, find
 *           it closed too (CPython's test_posix test_close_file);
 *   forked: a child forked without exec, whose first allocations start its
 *           own dump thread, sees only 0, 1, 2 and gets 3 from open().
 *
 * The program runs preloaded with HEAPPROF_RATE=1, HEAPPROF_HTTP=127.0.0.1:0,
 * HEAPPROF_INTERVAL=1, HEAPPROF_GROWTH=1M, HEAPPROF_LEAKWATCH=1,
 * HEAPPROF_PEAK=1 and HEAPPROF_OUT in a fresh directory.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testlib.h"
#include "fds_util.h"

extern char **environ;

/* ---- the program ---- */

/* open() gives 3 and the table is 0, 1, 2: 1, else a FAIL line. */
static int check_table(const char *when, int quiet) {
  int fd = open("/dev/null", O_RDONLY);
  if (fd >= 0)
    close(fd);
  int fds[256], n = fu_list_fds(fds, 256);
  char text[1024];
  fu_fds_text(fds, n, text, sizeof text);
  int ok = fd == 3 && n == 3 && fds[0] == 0 && fds[1] == 1 && fds[2] == 2;
  if (!ok && !quiet)
    FU_EXPECT(ok, "%s: open(\"/dev/null\") returned %d (want 3) and "
                  "/proc/self/fd lists %s (want 0 1 2)", when, fd, text);
  return ok;
}

static void churn(size_t total) {
  enum { N = 256 };
  static void *blocks[N];
  for (size_t i = 0, done = 0; done < total; i++, done += 4096) {
    free(blocks[i % N]);
    blocks[i % N] = fu_malloc(4096 + i % 64);
  }
}

static void dump_and_wait(const char *dir, const char *when) {
  char prefix[64];
  snprintf(prefix, sizeof prefix, "l.%d.", (int)getpid());
  int before = fu_count_files(dir, prefix);
  raise(SIGUSR2);
  FU_EXPECT(fu_wait_files(dir, prefix, before + 1, 30000) == 0,
            "%s: no profile 30 s after SIGUSR2", when);
}

static void main_mode(const char *dir) {
  check_table("at the top of main", 0);
  churn(8 << 20); /* growth profiles, peak copies */
  dump_and_wait(dir, "main");
  check_table("after a SIGUSR2 profile", 0);
  /* While interval dumps (every second), leak-watch looks, peak copies
   * and growth profiles go on. */
  long long end = fu_now_ms() + 2500;
  int bad = 0, looks = 0;
  while (fu_now_ms() < end) {
    churn(1 << 20);
    bad += !check_table("", 1);
    looks++;
  }
  FU_EXPECT(bad == 0, "%d of %d looks during 2.5 s of interval/growth/peak/"
                      "leak-watch work saw a descriptor that is not the "
                      "program's (or open() did not return 3)", bad, looks);
  if (bad)
    check_table("the last look", 0);
}

static int fd0_closed(void) { return fcntl(0, F_GETFD) < 0 && errno == EBADF; }

/* A child started with 0 closed: exit status 0 if it finds 0 closed. */
static int probe(void) {
  int closed = fd0_closed();
  free(fu_malloc(100000));
  if (!closed) {
    char target[256] = "";
    ssize_t n = readlink("/proc/self/fd/0", target, sizeof target - 1);
    fprintf(stderr, "probe: descriptor 0 is open: %s\n", n > 0 ? target : "?");
  }
  return closed ? 0 : 1;
}

static void fd0_mode(void) {
  FU_EXPECT(fd0_closed(), "the driver closed descriptor 0, but the program "
                          "finds it open at the top of main");
  int fd = open("/dev/null", O_RDONLY);
  FU_EXPECT(fd == 0, "open(\"/dev/null\") returned %d, want 0", fd);
  if (fd >= 0)
    close(fd);
  churn(2 << 20);
  char *args[] = {(char *)fu_self(), "--probe", NULL};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addclose(&fa, 0);
  pid_t pid;
  int rc = posix_spawn(&pid, args[0], &fa, NULL, args, environ);
  FU_EXPECT(rc == 0, "posix_spawn: %s", strerror(rc));
  if (rc == 0)
    FU_EXPECT(fu_wait(pid, 60) == 0,
              "a child posix_spawn'ed with 0 closed found 0 open");
  posix_spawn_file_actions_destroy(&fa);
  pid = fork();
  if (pid == 0) {
    close(0);
    execve(args[0], args, environ);
    _exit(127);
  }
  FU_EXPECT(fu_wait(pid, 60) == 0,
            "a child fork+exec'ed with 0 closed found 0 open");
}

static void forked_mode(const char *dir) {
  check_table("the parent, at the top of main", 0);
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    fu_failures = 0;
    churn(4 << 20); /* its first allocations start its own dump thread */
    dump_and_wait(dir, "forked child");
    churn(4 << 20);
    check_table("a forked child, after its allocations and a profile", 0);
    fflush(stdout);
    _exit(fu_failures);
  }
  FU_EXPECT(fu_wait(pid, 90) == 0, "the forked child's checks failed");
}

static int program(const char *mode, const char *dir) {
  alarm(150);
  if (strcmp(mode, "main") == 0)
    main_mode(dir);
  else if (strcmp(mode, "fd0") == 0)
    fd0_mode();
  else
    forked_mode(dir);
  return fu_finish(mode);
}

/* ---- the driver ---- */

int main(int argc, char **argv) {
  if (argc == 2 && strcmp(argv[1], "--probe") == 0)
    return probe();
  if (argc == 4 && strcmp(argv[1], "--child") == 0)
    return program(argv[2], argv[3]);
  CHECK(argc == 3, "usage: fds_lowest LIBHEAPPROF main|fd0|forked");
  const char *dir = tl_tmpdir();
  char out[1024];
  snprintf(out, sizeof out, "HEAPPROF_OUT=%s/l.%%p.%%n.pb.gz", dir);
  char **env = fu_env(argv[1], "HEAPPROF_RATE=1", "HEAPPROF_HTTP=127.0.0.1:0",
                      "HEAPPROF_INTERVAL=1", "HEAPPROF_GROWTH=1M",
                      "HEAPPROF_LEAKWATCH=1", "HEAPPROF_PEAK=1", out,
                      (char *)NULL);
  char *args[] = {(char *)fu_self(), "--child", argv[2], (char *)dir, NULL};
  int close0 = strcmp(argv[2], "fd0") == 0;
  fu_proc_t p = fu_start(args, env, FU_OUT | FU_ERR | (close0 ? FU_CLOSE0 : 0));
  fu_collect_t *errs = fu_collect(p.err);
  FU_EXPECT(fu_relay(p.out, 120000) == 0, "the program did not finish in 120 s");
  int status = fu_wait(p.pid, 60);
  char *err = fu_collected(errs, 5000);
  FU_EXPECT(status == 0, "the program's exit status %d (its checks above); "
                         "its stderr:\n%s", status, err);
  return fu_finish(argv[2]);
}
