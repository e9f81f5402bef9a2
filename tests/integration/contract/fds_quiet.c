/*
 * fds_quiet — with HEAPPROF_VERBOSE unset, a program's stdout, stderr and
 * exit status are byte for byte what they are without heapprof, whatever
 * trigger runs meanwhile (tests/test_quiet.c covers the default, rate 1 and
 * rate 0; this covers the triggers).
 *
 * usage: fds_quiet LIBHEAPPROF http|interval|growth|leakwatch|peak|all
 *   http:      HEAPPROF_HTTP on a fixed free port (no "serving" line is
 *              due), and the driver fetches a profile during the run;
 *   interval:  HEAPPROF_INTERVAL=1 over a 3.2 s run;
 *   growth:    HEAPPROF_GROWTH=1M while the program's heap climbs to 8 MB;
 *   leakwatch: HEAPPROF_LEAKWATCH=1:2 at HEAPPROF_RATE=1 on a program whose
 *              heap is flat (it leaks nothing);
 *   peak:      HEAPPROF_PEAK=1 at HEAPPROF_RATE=1 on a program that never
 *              holds 1 MiB (so no peak copy is ever taken, and the peak
 *              profile due at exit has nothing to show);
 *   all:       every trigger at once.
 * HEAPPROF_OUT names a fresh directory in every run, so exit profiles are
 * written there.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "testlib.h"
#include "fds_util.h"

/* ---- the program ---- */

static void flat_churn(long long until_ms) {
  enum { N = 64 };
  void *live[N];
  for (int i = 0; i < N; i++)
    live[i] = fu_malloc(4000);
  for (unsigned i = 0; fu_now_ms() < until_ms; i++) {
    free(live[i % N]); /* in use flat: the same size back at once */
    live[i % N] = fu_malloc(4000);
    if (i % 1024 == 0) {
      struct timespec pause = {0, 1000000};
      nanosleep(&pause, NULL);
    }
  }
  for (int i = 0; i < N; i++)
    free(live[i]);
}

static int program(long big_kb) {
  alarm(60);
  long long start = fu_now_ms();
  printf("line one on stdout, from printf\n");
  fprintf(stderr, "line one on stderr, from fprintf\n");
  fflush(stdout);
  ssize_t ignored = write(1, "line two on stdout, from write\n", 31);
  char **big = NULL;
  size_t nbig = (size_t)big_kb / 64;
  if (nbig > 0) { /* climb, then give it all back */
    big = malloc(nbig * sizeof *big);
    for (size_t i = 0; i < nbig; i++)
      big[i] = fu_malloc(64 << 10);
  }
  flat_churn(start + 3200);
  for (size_t i = 0; i < nbig; i++)
    free(big[i]);
  free(big);
  for (int i = 0; i < 100; i++)
    printf("stdout line %d: %s\n", i, "the quick brown fox jumps over the lazy dog");
  fprintf(stderr, "line two on stderr, before exit\n");
  ignored = write(2, "line three on stderr, from write\n", 33);
  (void)ignored;
  return 3;
}

/* ---- the driver ---- */

typedef struct run {
  int status;
  char *out, *err;
} run_t;

static run_t run(char **env, const char *kb, int http_port) {
  char *args[] = {(char *)fu_self(), "--child", (char *)kb, NULL};
  fu_proc_t p = fu_start(args, env, FU_OUT | FU_ERR);
  fu_collect_t *errs = fu_collect(p.err);
  if (http_port > 0) { /* a client of heapprof's server during the run */
    struct timespec pause = {1, 0};
    nanosleep(&pause, NULL);
    char *body = NULL;
    size_t len = 0;
    int status = fu_get(http_port, "/debug/pprof/heap", &body, &len);
    FU_EXPECT(status == 200 && len > 0, "GET on port %d during the run: %d",
              http_port, status);
    free(body);
  }
  run_t r;
  r.out = fu_slurp(p.out, 60000, NULL);
  r.err = fu_collected(errs, 60000);
  r.status = fu_wait(p.pid, 60);
  return r;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "--child") == 0)
    return program(atol(argv[2]));
  CHECK(argc == 3, "usage: fds_quiet LIBHEAPPROF "
                   "http|interval|growth|leakwatch|peak|all");
  const char *mode = argv[2];
  char out[1024], http[64];
  snprintf(out, sizeof out, "HEAPPROF_OUT=%s/q.%%p.%%n.pb.gz", tl_tmpdir());
  int port = 0;
  const char *kb = "8192"; /* the heap climbs to 8 MB */
  char **env;
  if (strcmp(mode, "http") == 0 || strcmp(mode, "all") == 0) {
    port = fu_free_port();
    snprintf(http, sizeof http, "HEAPPROF_HTTP=127.0.0.1:%d", port);
  }
  if (strcmp(mode, "http") == 0)
    env = fu_env(argv[1], out, http, (char *)NULL);
  else if (strcmp(mode, "interval") == 0)
    env = fu_env(argv[1], out, "HEAPPROF_INTERVAL=1", (char *)NULL);
  else if (strcmp(mode, "growth") == 0)
    env = fu_env(argv[1], out, "HEAPPROF_GROWTH=1M", (char *)NULL);
  else if (strcmp(mode, "leakwatch") == 0)
    kb = "0", env = fu_env(argv[1], out, "HEAPPROF_RATE=1",
                           "HEAPPROF_LEAKWATCH=1:2", (char *)NULL);
  else if (strcmp(mode, "peak") == 0)
    kb = "0", env = fu_env(argv[1], out, "HEAPPROF_RATE=1", "HEAPPROF_PEAK=1",
                           (char *)NULL);
  else
    env = fu_env(argv[1], out, http, "HEAPPROF_INTERVAL=1",
                 "HEAPPROF_GROWTH=1M", "HEAPPROF_PEAK=1",
                 "HEAPPROF_LEAKWATCH=1:2", (char *)NULL);

  run_t plain = run(fu_env(NULL, (char *)NULL), kb, 0);
  CHECK(plain.status == 3 && strstr(plain.err, "line three") != NULL,
        "the program misbehaves without heapprof (status %d): the test is "
        "wrong", plain.status);
  run_t prof = run(env, kb, port);
  FU_EXPECT(prof.status == plain.status, "exit status %d, %d without heapprof",
            prof.status, plain.status);
  FU_EXPECT(strcmp(prof.out, plain.out) == 0,
            "stdout differs from the run without heapprof:\n%s\n--- without:\n%s",
            prof.out, plain.out);
  FU_EXPECT(strcmp(prof.err, plain.err) == 0,
            "stderr differs from the run without heapprof:\n%s--- without:\n%s",
            prof.err, plain.err);
  printf("stdout %zu bytes, stderr %zu bytes, status %d in both runs? %s\n",
         strlen(plain.out), strlen(plain.err), plain.status,
         fu_failures ? "no" : "yes");
  return fu_finish(mode);
}
