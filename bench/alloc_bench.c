/*
 * alloc_bench — malloc/free pairs of mixed sizes (16 B – 4 KiB) from 8
 * distinct call sites with a live working set, on one or more threads.
 * With several threads, one allocation in eight is swapped through a
 * shared ring, so that its block is freed by another thread.
 * Prints the elapsed seconds of its loops and the CPU seconds the process
 * spent meanwhile (all threads: what neighbours on a shared machine move
 * less than the wall time); run it under each configuration and compare.
 *
 * With ALLOC_BENCH_LABELS=N (1..8) in the environment, each worker pushes
 * N heapprof labels before its loop (heapprof_label_push, found with
 * dlsym so that the program is not linked with heapprof and runs the same
 * without it), so that every sample is taken under a label set. The
 * pushes happen outside run(), the function the suite's callgrind counts.
 *
 * With ALLOC_BENCH_ATTACH=/path/libheapprof.so, heapprof is attached in
 * process before anything is timed or counted, as `heapprof attach` does
 * it from gdb (issue 15), minus gdb: dlopen(RTLD_NOW | RTLD_LOCAL), then
 * heapprof_attach_start() with every HEAPPROF_* variable of the
 * environment as a "NAME=VALUE\n" line (HEAPPROF_RATE, HEAPPROF_SEED, ...:
 * the library loaded late reads no environment itself), and says on stderr
 * how long the two calls took. Its GOT patching
 * then sends run()'s malloc and free to attach mode's entry points, so
 * that callgrind counts the same loop attached and preloaded.
 *
 * With ALLOC_BENCH_WAIT=1, it prints "ready" on stdout once set up and
 * waits for one byte on stdin before it starts the clock and the workers
 * (bench/attach_cost.py runs `heapprof attach` at that moment; the main
 * thread then waits in read(), where gdb may call into it).
 *
 * usage: alloc_bench PAIRS THREADS LIVE
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SITE(k)                                                                \
  static __attribute__((noipa)) void *site##k(size_t n) { return malloc(n); }
SITE(0) SITE(1) SITE(2) SITE(3) SITE(4) SITE(5) SITE(6) SITE(7)
static void *(*const sites[8])(size_t) = {site0, site1, site2, site3,
                                          site4, site5, site6, site7};

#define RING 1024
static _Atomic(void *) ring[RING];
static int threads = 1;

typedef struct job {
  long pairs;
  long live;
  uint64_t seed;
  char tenant[16]; /* its label, with ALLOC_BENCH_LABELS */
} job_t;

static uint64_t next(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

/* Sizes 16 B – 4 KiB, log-uniform: small sizes dominate, as in real heaps. */
static size_t size_of(uint64_t r) {
  return (size_t)16 << (r % 9) | (r >> 8) % 16;
}

/* The profiler's label push, when labels were asked for (else NULL). */
static int (*label_push)(const char *key, const char *value);
static int labels;

/* What it counts: only this function's loop (callgrind --toggle-collect=run),
 * so it is kept out of line whatever calls it. */
static __attribute__((noinline)) void *run(void *arg) {
  job_t *j = arg;
  void **slots = calloc((size_t)j->live, sizeof *slots);
  uint64_t s = j->seed;
  for (long i = 0; i < j->pairs; i++) {
    uint64_t r = next(&s);
    long k = (long)(r >> 20) % j->live;
    free(slots[k]);
    void *p = sites[i & 7](size_of(r));
    if (threads > 1 && (r >> 40) % 8 == 0) /* hand it to another thread */
      p = atomic_exchange(&ring[(r >> 8) % RING], p);
    slots[k] = p;
  }
  for (long k = 0; k < j->live; k++)
    free(slots[k]);
  free(slots);
  return NULL;
}

/* A worker: its labels first (4 of a realistic shape: a tenant, an
 * endpoint, a region and a subsystem, the tenant naming the worker), then
 * the counted loop, by a tail call: run()'s stack is the one it had when
 * it was the thread's start routine, so that a sample unwinds the same
 * frames with or without labels, and as before labels existed. Nothing of
 * the worker's own frame may be addressable (its strings are in the job)
 * or the compiler cannot make the call a jump. */
static void *worker(void *arg) {
  static const char *const keys[8] = {"tenant", "endpoint", "region", "subsystem",
                                      "shard", "priority", "build", "zone"};
  static const char *const values[8] = {NULL, "/api/v1/orders", "eu-west-1", "cache",
                                        "17", "high", "2026.12", "b"};
  job_t *j = arg;
  for (int i = 0; i < labels; i++) {
    int rc = label_push(keys[i], i == 0 ? j->tenant : values[i]);
    if (rc != 0) {
      fprintf(stderr, "alloc_bench: heapprof_label_push(%s) = %d\n", keys[i], rc);
      exit(1);
    }
  }
  return run(arg);
}

static void die(const char *what, const char *detail) {
  fprintf(stderr, "alloc_bench: %s%s\n", what, detail);
  exit(2);
}

/* heapprof attached as ALLOC_BENCH_ATTACH says (see the top); returns the
 * library's handle, where its API is found (it is not in the global
 * scope). */
static void *attach(const char *lib) {
  extern char **environ;
  static char settings[8192];
  size_t len = 0;
  for (char **e = environ; *e != NULL; e++) {
    size_t n = strlen(*e);
    if (strncmp(*e, "HEAPPROF_", 9) != 0)
      continue;
    if (strchr(*e, '\n') != NULL || len + n + 2 > sizeof settings)
      die("a HEAPPROF_ variable that cannot be a setting line: ", *e);
    memcpy(settings + len, *e, n);
    settings[len + n] = '\n';
    len += n + 1;
  }
  settings[len] = '\0';
  struct timespec t0, t1, t2;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
  if (h == NULL)
    die("ALLOC_BENCH_ATTACH: ", dlerror());
  int (*start)(const char *);
  *(void **)&start = dlsym(h, "heapprof_attach_start");
  if (start == NULL)
    die("ALLOC_BENCH_ATTACH: no heapprof_attach_start in ", lib);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  int rc = start(settings);
  clock_gettime(CLOCK_MONOTONIC, &t2);
  if (rc != 0) {
    fprintf(stderr, "alloc_bench: heapprof_attach_start = %d (preloaded too?)\n", rc);
    exit(2);
  }
  fprintf(stderr, "alloc_bench: attached in process: dlopen %.3f ms, "
                  "heapprof_attach_start %.3f ms\n",
          (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6,
          (double)(t2.tv_sec - t1.tv_sec) * 1e3 + (double)(t2.tv_nsec - t1.tv_nsec) / 1e6);
  return h;
}

int main(int argc, char **argv) {
  long pairs = argc > 1 ? atol(argv[1]) : 20000000;
  threads = argc > 2 ? atoi(argv[2]) : 1;
  long live = argc > 3 ? atol(argv[3]) : 100000;
  const char *want = getenv("ALLOC_BENCH_LABELS");
  labels = want != NULL ? atoi(want) : 0;
  if (labels < 0 || labels > 8) {
    fprintf(stderr, "alloc_bench: ALLOC_BENCH_LABELS is 0..8\n");
    return 2;
  }
  const char *lib = getenv("ALLOC_BENCH_ATTACH");
  void *heapprof = lib != NULL && *lib != '\0' ? attach(lib) : RTLD_DEFAULT;
  if (labels > 0) {
    *(void **)&label_push = dlsym(heapprof, "heapprof_label_push");
    if (label_push == NULL) {
      fprintf(stderr, "alloc_bench: ALLOC_BENCH_LABELS without heapprof "
                      "(no heapprof_label_push: preload libheapprof.so, or "
                      "set ALLOC_BENCH_ATTACH)\n");
      return 2;
    }
  }
  const char *wait = getenv("ALLOC_BENCH_WAIT");
  if (wait != NULL && strcmp(wait, "1") == 0) {
    char go;
    printf("ready\n");
    fflush(stdout);
    if (read(0, &go, 1) != 1)
      die("ALLOC_BENCH_WAIT: stdin closed before the go byte", "");
  }
  pthread_t t[64];
  job_t jobs[64];
  struct timespec a, b, ca, cb;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ca);
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (int i = 0; i < threads; i++) {
    jobs[i] = (job_t){.pairs = pairs / threads, .live = live / threads,
                      .seed = 0x9e3779b97f4a7c15ULL * (uint64_t)(i + 1)};
    snprintf(jobs[i].tenant, sizeof jobs[i].tenant, "tenant-%d", i);
    pthread_create(&t[i], NULL, worker, &jobs[i]);
  }
  for (int i = 0; i < threads; i++)
    pthread_join(t[i], NULL);
  for (int i = 0; i < RING; i++)
    free(atomic_load(&ring[i]));
  clock_gettime(CLOCK_MONOTONIC, &b);
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cb);
  printf("%.4f %.4f\n", (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9,
         (double)(cb.tv_sec - ca.tv_sec) + (double)(cb.tv_nsec - ca.tv_nsec) / 1e9);
  return 0;
}
