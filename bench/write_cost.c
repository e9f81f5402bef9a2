/*
 * write_cost — what writing a profile costs, and whom it holds up: with
 * 10,000 and with 100,000 buckets, the time heapprof_write_profile takes,
 * and the longest a thread allocating meanwhile waited for one
 * malloc+free. Linked with -lheapprof; run at HEAPPROF_RATE=1 so that each
 * of the distinct sizes below makes its own bucket. Medians of 5 writes.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "heapprof.h"

#define WRITES 5

static atomic_int phase; /* 1: measuring, 2: stop */
static _Atomic int64_t worst_ns;

static int64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* Allocates 64-byte blocks in a loop at rate 1 (the slow path, with a
 * stack capture each time) and keeps the longest single malloc+free. */
static void *allocator(void *arg) {
  (void)arg;
  while (atomic_load(&phase) != 2) {
    int64_t t0 = now_ns();
    void *p = malloc(64);
    __asm__ volatile("" : : "r"(p) : "memory");
    free(p);
    int64_t d = now_ns() - t0;
    if (atomic_load(&phase) == 1 && d > atomic_load(&worst_ns))
      atomic_store(&worst_ns, d);
  }
  return NULL;
}

static int cmp(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

static __attribute__((noipa)) void *make_bucket(size_t n) {
  void *p = malloc(n);
  __asm__ volatile("" ::: "memory");
  return p;
}

int main(void) {
  static const size_t sizes[] = {10000, 100000};
  char out[] = "/tmp/heapprof-write-cost.XXXXXX";
  int fd = mkstemp(out); /* a regular file the profile replaces each time */
  if (fd < 0)
    return 1;
  close(fd);
  printf("%-9s %14s %22s\n", "buckets", "write ms", "longest alloc wait us");
  size_t made = 0;
  for (int s = 0; s < 2; s++) {
    for (; made < sizes[s]; made++) /* distinct sizes: one bucket each */
      make_bucket(16 + made);
    int64_t took[WRITES], waited[WRITES];
    for (int w = 0; w < WRITES; w++) {
      pthread_t t;
      atomic_store(&worst_ns, 0);
      atomic_store(&phase, 0);
      pthread_create(&t, NULL, allocator, NULL);
      usleep(20000);
      atomic_store(&phase, 1);
      int64_t t0 = now_ns();
      if (heapprof_write_profile(out, HEAPPROF_HEAP) != 0)
        return 1;
      took[w] = now_ns() - t0;
      atomic_store(&phase, 2);
      pthread_join(t, NULL);
      waited[w] = atomic_load(&worst_ns);
    }
    qsort(took, WRITES, sizeof *took, cmp);
    qsort(waited, WRITES, sizeof *waited, cmp);
    printf("%-9zu %14.1f %22.1f\n", sizes[s], (double)took[WRITES / 2] / 1e6,
           (double)waited[WRITES / 2] / 1e3);
  }
  unlink(out);
  return 0;
}
