/*
 * fds_errno — what heapprof runs on a program thread outside the malloc
 * family's own results (the dump signal's handler, the growth trigger's
 * wake-up inside malloc) leaves errno as it was, and heapprof's threads
 * never change what strerror() gave the program.
 *
 * usage: fds_errno LIBHEAPPROF signal|growth
 *   signal: 2,000 times, the program sets errno to a marker and raises
 *           SIGUSR2 (heapprof's handler wakes the dump thread, whose dumps
 *           fail and say why with strerror()); errno must still hold the
 *           marker, and strerror(12345)'s text, taken before, is intact;
 *   growth: with HEAPPROF_GROWTH=1M and HEAPPROF_RATE=1, 4,000 mallocs of
 *           64 KiB, each crossing of a megabyte waking the dump thread;
 *           errno must hold the marker after every successful malloc.
 *
 * The driver runs the same program without heapprof first: if it fails
 * there, the test itself is wrong and says so.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testlib.h"
#include "fds_util.h"

/* ---- the program ---- */

static void signal_mode(void) {
  for (int i = 0; i < 8; i++) /* samples: heapprof is fully up */
    free(fu_malloc(1 << 20));
  const char *unknown = strerror(12345);
  char copy[64];
  snprintf(copy, sizeof copy, "%s", unknown);
  int bad = 0, first = 0, got = 0;
  for (int i = 0; i < 2000; i++) {
    int marker = 1000 + i;
    errno = marker;
    raise(SIGUSR2);
    int now = errno;
    if (now != marker && bad++ == 0)
      first = marker, got = now;
    if (i % 100 == 0)
      usleep(2000); /* let dumps run meanwhile */
  }
  FU_EXPECT(bad == 0, "errno changed across raise(SIGUSR2) %d times of 2000; "
                      "first: %d became %d (%s)", bad, first, got, strerror(got));
  FU_EXPECT(strcmp(unknown, copy) == 0,
            "strerror(12345)'s text changed from \"%s\" to \"%s\"", copy, unknown);
}

static void growth_mode(void) {
  enum { N = 4000 };
  static void *keep[N];
  int bad = 0, first = 0, got = 0;
  for (int i = 0; i < N; i++) {
    int marker = 1000 + i;
    errno = marker;
    keep[i] = fu_malloc(64 << 10);
    int now = errno;
    if (keep[i] != NULL && now != marker && bad++ == 0)
      first = marker, got = now;
    if (i % 16 == 15) /* in use stays near 1 MB: growth dumps keep coming */
      for (int j = i - 15; j < i - 1; j++)
        free(keep[j]), keep[j] = NULL;
  }
  for (int i = 0; i < N; i++)
    free(keep[i]);
  FU_EXPECT(bad == 0, "errno changed across a successful malloc %d times of "
                      "%d; first: %d became %d (%s)", bad, N, first, got,
            strerror(got));
}

static int program(const char *mode) {
  alarm(120);
  if (strcmp(mode, "signal") == 0)
    signal_mode();
  else
    growth_mode();
  return fu_finish(mode);
}

/* ---- the driver ---- */

static int run(char **env, const char *mode, const char *what) {
  char *args[] = {(char *)fu_self(), "--child", (char *)mode, NULL};
  fu_proc_t p = fu_start(args, env, FU_OUT | FU_ERR);
  fu_collect_t *errs = fu_collect(p.err);
  printf("%s:\n", what);
  FU_EXPECT(fu_relay(p.out, 120000) == 0, "the program did not finish");
  int status = fu_wait(p.pid, 60);
  free(fu_collected(errs, 5000));
  return status;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "--child") == 0)
    return program(argv[2]);
  CHECK(argc == 3, "usage: fds_errno LIBHEAPPROF signal|growth");
  const char *mode = argv[2];
  /* Without heapprof the default SIGUSR2 ends the process: the control
   * run ignores it instead (SIG_IGN survives exec; heapprof, which only
   * installs its handler over SIG_DFL, is not in that run). */
  signal(SIGUSR2, SIG_IGN);
  int control = run(fu_env(NULL, (char *)NULL), mode, "without heapprof");
  signal(SIGUSR2, SIG_DFL);
  CHECK(control == 0, "the program fails without heapprof (status %d): the "
                      "test is wrong", control);
  char out[1024];
  snprintf(out, sizeof out, "HEAPPROF_OUT=%s/missing/e.%%n.pb.gz", tl_tmpdir());
  char **env = strcmp(mode, "signal") == 0
                   ? fu_env(argv[1], out, (char *)NULL)
                   : fu_env(argv[1], out, "HEAPPROF_RATE=1",
                            "HEAPPROF_GROWTH=1M", (char *)NULL);
  int status = run(env, mode, "with heapprof");
  FU_EXPECT(status == 0, "the program's exit status %d under heapprof (its "
                         "checks above)", status);
  return fu_finish(mode);
}
