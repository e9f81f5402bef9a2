/*
 * test_stats — heapprof_read_stats counts exactly, whatever the rate.
 *
 * Bytes are not counted by a store of their own but read off the sampling
 * countdown (runtime/thread.h), so every way the countdown moves is walked
 * here: each allocating function, calls that fail, calls that reach the
 * slow path and calls that do not, and realloc of sampled and ordinary
 * blocks (rate 1 never moves the countdown, so the variants at 4096 and the
 * default rate are the ones that test it). Then threads allocate while this
 * one reads the stats over and over: a reader that paired one moment's base
 * with another's countdown would see the byte count jump back, or past what
 * has been allocated. That window is a few instructions wide, so this part
 * can only catch such a reader by chance; the exact counts cannot be
 * right by chance.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "heapprof.h"
#include "testlib.h"

#define THREADS 2
#define PER_THREAD 400000

static heapprof_stats_t now(void) {
  heapprof_stats_t s;
  CHECK(heapprof_read_stats(&s) == 0, "heapprof_read_stats");
  return s;
}

/* What the program did, as it should show in the stats. */
static uint64_t want_mallocs, want_frees, want_bytes;

static void *counted(void *p, size_t n) {
  want_mallocs++, want_bytes += n;
  return p;
}

static void release(void *p) {
  want_frees += p != NULL;
  free(p);
}

static void expect(const heapprof_stats_t *a, const heapprof_stats_t *b,
                   const char *what) {
  uint64_t m = b->mallocs - a->mallocs, f = b->frees - a->frees,
           by = b->total_alloc_bytes - a->total_alloc_bytes;
  CHECK(m == want_mallocs && f == want_frees && by == want_bytes,
        "%s: mallocs %llu frees %llu bytes %llu, want %llu %llu %llu", what,
        (unsigned long long)m, (unsigned long long)f, (unsigned long long)by,
        (unsigned long long)want_mallocs, (unsigned long long)want_frees,
        (unsigned long long)want_bytes);
  printf("%s: %llu mallocs, %llu frees, %llu bytes, as done\n", what,
         (unsigned long long)m, (unsigned long long)f, (unsigned long long)by);
  want_mallocs = want_frees = want_bytes = 0;
}

/* Every entry point once per size, many times over, so that at any rate
 * some calls end the countdown (the slow path) and most do not. */
static void every_family(void) {
  heapprof_stats_t a = now();
  for (int i = 0; i < 2000; i++) {
    size_t n = 24 + (size_t)(i % 97) * 40;
    void *p[9];
    p[0] = counted(malloc(n), n);
    p[1] = counted(calloc(3, n), 3 * n);
    CHECK(posix_memalign(&p[2], 64, n) == 0, "posix_memalign");
    counted(p[2], n);
    p[3] = counted(aligned_alloc(256, 256 * (n / 256 + 1)), 256 * (n / 256 + 1));
    p[4] = counted(memalign(32, n), n);
    p[5] = counted(valloc(n), n);
    p[6] = counted(pvalloc(n), n);
    p[7] = counted(realloc(NULL, n), n); /* a malloc */
    /* Grown and shrunk: an allocation of the new size and a free of the
     * old block, whether either is sampled or not. */
    void *q = realloc(p[0], 4 * n);
    CHECK(q != NULL, "realloc grow");
    counted(q, 4 * n), want_frees++;
    p[0] = realloc(q, n / 2);
    CHECK(p[0] != NULL, "realloc shrink");
    counted(p[0], n / 2), want_frees++;
    p[8] = NULL;
    for (int k = 0; k < 9; k++)
      release(p[k]);
  }
  heapprof_stats_t b = now();
  expect(&a, &b, "every family");
}

/* Calls that fail: a malloc counts (as documented), a calloc overflow counts
 * as a call for 0 bytes, a failed realloc leaves everything as it was,
 * realloc(p, 0) frees, free(NULL) is nothing. */
static void failures(void) {
  volatile size_t overflowing = SIZE_MAX / 2; /* out of the compiler's sight */
  heapprof_stats_t a = now();
  for (int i = 0; i < 100; i++) {
    size_t huge = (size_t)1 << 50; /* beyond the address space */
    void *p = malloc(huge);
    CHECK(p == NULL && errno == ENOMEM, "malloc(2^50) gave %p", p);
    counted(p, huge);
    p = calloc(overflowing, 4);
    CHECK(p == NULL, "calloc overflow gave %p", p);
    counted(p, 0);
    void *keep = counted(malloc(100), 100);
    p = realloc(keep, huge);
    CHECK(p == NULL, "realloc(2^50) gave %p", p);
    p = realloc(keep, 0); /* glibc: frees, returns NULL */
    if (p == NULL)
      want_frees++;
    else
      counted(p, 0), want_frees++, release(p);
    free(NULL);
  }
  heapprof_stats_t b = now();
  expect(&a, &b, "failures");
}

/* ---- readers against writers ---- */

static atomic_int finished;

static void *writer(void *arg) {
  uint64_t s = (uintptr_t)arg * 0x9e3779b97f4a7c15ULL;
  void *keep[64] = {0};
  for (int i = 0; i < PER_THREAD; i++) {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    free(keep[s % 64]);
    keep[s % 64] = malloc(16 + s % 8192);
  }
  for (int k = 0; k < 64; k++)
    free(keep[k]);
  atomic_fetch_add(&finished, 1);
  return NULL;
}

static void readers_see_no_jumps(void) {
  pthread_t t[THREADS];
  heapprof_stats_t first = now(), prev = first;
  for (int i = 0; i < THREADS; i++)
    pthread_create(&t[i], NULL, writer, (void *)(uintptr_t)(i + 7));
  long reads = 0;
  while (atomic_load(&finished) < THREADS) {
    heapprof_stats_t s = now();
    reads++;
    CHECK(s.total_alloc_bytes >= prev.total_alloc_bytes &&
              s.mallocs >= prev.mallocs,
          "read %ld: bytes went from %llu to %llu, mallocs from %llu to %llu",
          reads, (unsigned long long)prev.total_alloc_bytes,
          (unsigned long long)s.total_alloc_bytes,
          (unsigned long long)prev.mallocs, (unsigned long long)s.mallocs);
    /* Never ahead of what was asked for: at most 8207 bytes a call, and a
     * few calls of pthread_create's own. */
    CHECK(s.total_alloc_bytes - first.total_alloc_bytes <=
              (s.mallocs - first.mallocs) * 8207 + 65536,
          "read %ld: %llu bytes in %llu mallocs", reads,
          (unsigned long long)(s.total_alloc_bytes - first.total_alloc_bytes),
          (unsigned long long)(s.mallocs - first.mallocs));
    prev = s;
  }
  for (int i = 0; i < THREADS; i++)
    pthread_join(t[i], NULL);
  heapprof_stats_t end = now();
  uint64_t m = end.mallocs - first.mallocs, want = (uint64_t)THREADS * PER_THREAD;
  CHECK(m >= want && m <= want + 64, "threads: %llu mallocs, want %llu "
        "(+ pthread_create's few)", (unsigned long long)m,
        (unsigned long long)want);
  CHECK(reads > 10, "only %ld reads while the threads ran", reads);
  printf("%ld reads while %d threads allocated: the counts never went back\n",
         reads, THREADS);
}

/* A thread that frees what another allocated and never allocates itself
 * (so it never joins the registry): its frees of sampled blocks must still
 * reach live_samples, as strays. The thread is
 * up before the first reading and still up at the last, so that glibc's
 * own allocations for starting and joining it stay out of the counts. */
#define HANDED 2000
static void *handed[HANDED];
static atomic_int stage; /* 1: free them, 2: freed, 3: exit */

static void *free_only(void *arg) {
  (void)arg;
  while (atomic_load(&stage) != 1)
    ;
  for (int i = 0; i < HANDED; i++)
    free(handed[i]);
  atomic_store(&stage, 2);
  while (atomic_load(&stage) != 3)
    ;
  return NULL;
}

static void freed_elsewhere(void) {
  pthread_t t;
  pthread_create(&t, NULL, free_only, NULL);
  heapprof_stats_t a = now();
  for (int i = 0; i < HANDED; i++)
    handed[i] = malloc(4096);
  heapprof_stats_t b = now();
  atomic_store(&stage, 1);
  while (atomic_load(&stage) != 2)
    ;
  heapprof_stats_t c = now();
  atomic_store(&stage, 3);
  pthread_join(t, NULL);
  CHECK(c.live_samples == a.live_samples,
        "live samples %llu before, %llu with the blocks, %llu after another "
        "thread freed them all", (unsigned long long)a.live_samples,
        (unsigned long long)b.live_samples, (unsigned long long)c.live_samples);
  printf("freed by a thread that never allocated: live samples %llu -> %llu "
         "-> %llu\n", (unsigned long long)a.live_samples,
         (unsigned long long)b.live_samples, (unsigned long long)c.live_samples);
}

/* A block freed by a thread-specific-data destructor that runs after
 * heapprof's own (which folds the thread's counts into the totals): its
 * unmark is counted as a stray, so live_samples comes back to where it
 * was. The thread starts before the first reading, as above. */
static pthread_key_t late_key;
static atomic_int late_go;

static void late_free(void *p) { free(p); }

static void *exits_holding(void *arg) {
  (void)arg;
  while (!atomic_load(&late_go))
    ;
  pthread_setspecific(late_key, malloc(1 << 20)); /* sampled at rate 4096 */
  return NULL;
}

static void freed_at_thread_exit(void) {
  CHECK(pthread_key_create(&late_key, late_free) == 0, "pthread_key_create");
  pthread_t t;
  pthread_create(&t, NULL, exits_holding, NULL);
  heapprof_stats_t a = now();
  atomic_store(&late_go, 1);
  pthread_join(t, NULL);
  heapprof_stats_t b = now();
  CHECK(b.live_samples == a.live_samples, "live samples %llu before, %llu "
        "after a thread's exit freed its block",
        (unsigned long long)a.live_samples, (unsigned long long)b.live_samples);
  printf("freed at thread exit: live samples %llu -> %llu\n",
         (unsigned long long)a.live_samples, (unsigned long long)b.live_samples);
}

/* Detached threads that never allocate and only wait: when one exits,
 * glibc frees cached stacks' TLS vectors from it, after its TSD
 * destructors ran; some of those were allocated (and sampled) elsewhere.
 * Registering the exiting thread then would leave the registry pointing
 * into a stack that is unmapped later: the stats must still read. */
static atomic_int waiters_go;

static void *waiter(void *arg) {
  (void)arg;
  while (!atomic_load(&waiters_go))
    usleep(1000);
  return NULL;
}

static void detached_waiters(void) {
  heapprof_stats_t s = now();
  for (int round = 0; round < 30; round++) {
    atomic_store(&waiters_go, 0);
    for (int i = 0; i < 16; i++) {
      pthread_t t;
      pthread_attr_t at;
      pthread_attr_init(&at);
      pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
      pthread_attr_setstacksize(&at, (size_t)(1 + round % 3) << 22);
      CHECK(pthread_create(&t, &at, waiter, NULL) == 0, "pthread_create");
      pthread_attr_destroy(&at);
    }
    usleep(20000);
    atomic_store(&waiters_go, 1);
    usleep(30000);
    s = now();
  }
  printf("480 detached waiters came and went: stats still read (%llu live "
         "samples)\n", (unsigned long long)s.live_samples);
}

int main(void) {
  printf("rate %lld\n", (long long)heapprof_get_rate());
  every_family();
  failures();
  freed_elsewhere();
  freed_at_thread_exit();
  detached_waiters();
  readers_see_no_jumps();
  every_family(); /* and exact again, with exited threads folded in */
  printf("ok\n");
  return 0;
}
