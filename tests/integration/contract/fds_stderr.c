/*
 * fds_stderr — heapprof's stderr lines go to the program's descriptor 2 as
 * it is when the line is written: a program that later redirects stderr
 * (dup2 of its log file over 2, as daemons do) finds heapprof's later lines
 * in its log, and none on the old stderr.
 *
 * The program goes quiet for 2 s before the switch, so that nothing of
 * before is still on its way, and marks the old stderr right after it.
 *
 * usage: fds_stderr LIBHEAPPROF failing|verbose|leak
 *   failing: HEAPPROF_OUT names a missing directory: each SIGUSR2 makes the
 *            dump thread say "cannot write profile ...";
 *   verbose: HEAPPROF_VERBOSE=1: each SIGUSR2 profile is announced
 *            "wrote ...";
 *   leak:    HEAPPROF_LEAKWATCH=1:2 on a leaking program: the leak-watch
 *            line.
 * The first line must reach the stderr the program started with; then the
 * program dup2()s a file over 2 and the next line must reach that file,
 * and nothing more may reach the old stderr. A private copy of the old
 * descriptor 2 (what a thread with a table of its own would hold) fails.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "testlib.h"
#include "fds_util.h"

static const char *want_for(const char *mode) {
  return strcmp(mode, "failing") == 0   ? "heapprof: cannot write profile"
         : strcmp(mode, "verbose") == 0 ? "heapprof: wrote"
                                        : "heapprof: leak watch";
}

/* ---- the program ---- */

static void *leaked[4096];
static int nleaked;

/* Makes heapprof speak: a signal, or a leak that keeps growing. */
static void provoke(const char *mode) {
  if (strcmp(mode, "leak") != 0) {
    raise(SIGUSR2);
    free(fu_malloc(1 << 20)); /* programs allocate: samples happen */
    return;
  }
  if (nleaked < 4096) {
    void *p = malloc(200000);
    __asm__ volatile("" : : "r"(p) : "memory"); /* a real, kept allocation */
    leaked[nleaked++] = p;
  }
}

static int log_has(const char *path, const char *want) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  char *text = fd >= 0 ? fu_slurp(fd, 100, NULL) : NULL;
  int yes = text != NULL && strstr(text, want) != NULL;
  free(text);
  if (fd >= 0)
    close(fd);
  return yes;
}

static int program(const char *mode, const char *dir) {
  alarm(150);
  const char *want = want_for(mode);
  char word[64];
  /* Until the driver has seen the first line on the old stderr. */
  long long end = fu_now_ms() + 60000;
  int told = 0;
  while (!told && fu_now_ms() < end) {
    provoke(mode);
    struct timespec pause = {0, 100 * 1000 * 1000};
    nanosleep(&pause, NULL);
    told = fu_line(0, word, sizeof word, 1) >= 0;
  }
  FU_EXPECT(told, "the driver never saw \"%s\" on the program's stderr", want);

  /* Quiet for 2 s, so that no line of before is still on its way. */
  struct timespec quiet = {2, 0};
  nanosleep(&quiet, NULL);
  char log[1024];
  snprintf(log, sizeof log, "%s/program.log", dir);
  int old = dup(2);
  int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  FU_EXPECT(fd >= 0 && dup2(fd, 2) == 2, "cannot redirect stderr to %s", log);
  close(fd);
  /* Everything on the old stderr after this mark came after the switch. */
  ssize_t ignored = write(old, "@switched\n", 10);
  (void)ignored;
  close(old);
  end = fu_now_ms() + 60000;
  int found = 0;
  while (!found && fu_now_ms() < end) {
    provoke(mode);
    struct timespec pause = {0, 100 * 1000 * 1000};
    nanosleep(&pause, NULL);
    found = log_has(log, want);
  }
  FU_EXPECT(found, "after dup2() of %s over descriptor 2, heapprof's \"%s\" "
                   "line never reached it", log, want);
  int failed = fu_finish("heapprof writes to the program's current stderr");
  printf("@done\n");
  fflush(stdout);
  return failed;
}

/* ---- the driver ---- */

int main(int argc, char **argv) {
  if (argc == 4 && strcmp(argv[1], "--child") == 0)
    return program(argv[2], argv[3]);
  CHECK(argc == 3, "usage: fds_stderr LIBHEAPPROF failing|verbose|leak");
  const char *mode = argv[2], *dir = tl_tmpdir(), *want = want_for(mode);
  char out[1024];
  char **env;
  if (strcmp(mode, "failing") == 0) {
    snprintf(out, sizeof out, "HEAPPROF_OUT=%s/missing/s.%%n.pb.gz", dir);
    env = fu_env(argv[1], out, (char *)NULL);
  } else {
    snprintf(out, sizeof out, "HEAPPROF_OUT=%s/s.%%p.%%n.pb.gz", dir);
    env = strcmp(mode, "verbose") == 0
              ? fu_env(argv[1], out, "HEAPPROF_VERBOSE=1", (char *)NULL)
              : fu_env(argv[1], out, "HEAPPROF_RATE=1",
                       "HEAPPROF_LEAKWATCH=1:2", (char *)NULL);
  }
  char *args[] = {(char *)fu_self(), "--child", (char *)mode, (char *)dir, NULL};
  fu_proc_t p = fu_start(args, env, FU_IN | FU_OUT | FU_ERR);

  /* The first line, on the stderr the program started with. */
  char line[2048];
  int seen = 0;
  long long end = fu_now_ms() + 60000;
  while (!seen && fu_now_ms() < end &&
         fu_line(p.err, line, sizeof line, (int)(end - fu_now_ms())) >= 0)
    seen = strstr(line, want) != NULL;
  FU_EXPECT(seen, "no \"%s\" line on the program's stderr in 60 s", want);
  fu_collect_t *errs = fu_collect(p.err);
  ssize_t ignored = write(p.in, "switched\n", 9);
  (void)ignored;
  FU_EXPECT(fu_expect_line(p.out, "@done", 150000) == 0,
            "the program did not finish");
  int status = fu_wait(p.pid, 60);
  char *rest = fu_collected(errs, 5000);
  char *mark = strstr(rest, "@switched\n");
  FU_EXPECT(mark != NULL, "no switch mark on the old stderr:\n%s", rest);
  FU_EXPECT(mark == NULL || strstr(mark, want) == NULL,
            "\"%s\" lines reached the old stderr after the program had "
            "redirected descriptor 2:\n%s", want, mark ? mark : "");
  FU_EXPECT(status == 0, "the program's exit status %d (its checks above)",
            status);
  return fu_finish(mode);
}
