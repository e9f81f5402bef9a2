/*
 * thread — the allocation path's per-thread state.
 *
 * Initial-exec TLS: reaching it is one %fs-relative access that never calls
 * __tls_get_addr (which may itself call malloc). The fast path touches only
 * this block, so threads never share a written cache line.
 */
#ifndef HEAPPROF_THREAD_H
#define HEAPPROF_THREAD_H

#include <stdint.h>

#include "sampler.h"

typedef struct hp_thread {
  uint64_t bytes_left; /* bytes until this thread's next sample */
  uint32_t busy;       /* > 0 inside the profiler: allocations not sampled */
  uint32_t epoch;      /* the sampling epoch bytes_left was drawn in */
  /* Exact counts for heapprof_read_stats: written only by this thread,
   * read by others (stats.c) without locks. */
  uint64_t mallocs;    /* allocation calls */
  uint64_t frees;      /* frees of non-NULL pointers */
  uint64_t bytes;      /* bytes those allocations asked for */
  int registered;      /* known to stats.c */
  sampler_rng_t rng;
} hp_thread_t;

extern __thread hp_thread_t hp_self __attribute__((tls_model("initial-exec")));

/* The profiler's own work on a program thread (a dump, a stats call): its
 * allocations are never sampled, and the thread's counts are put back
 * afterwards, because they are the profiler's, not the program's. */
typedef struct hp_own_work {
  uint64_t mallocs, frees, bytes;
} hp_own_work_t;

static inline hp_own_work_t hp_own_begin(hp_thread_t *t) {
  t->busy++;
  return (hp_own_work_t){t->mallocs, t->frees, t->bytes};
}

static inline void hp_own_end(hp_thread_t *t, hp_own_work_t saved) {
  t->mallocs = saved.mallocs, t->frees = saved.frees, t->bytes = saved.bytes;
  t->busy--;
}

#endif /* HEAPPROF_THREAD_H */
