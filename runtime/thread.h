/*
 * thread — the allocation path's per-thread state.
 *
 * Initial-exec TLS: reaching it is one %fs-relative access that never calls
 * __tls_get_addr (which may itself call malloc). The fast path touches only
 * this block, so threads never share a written cache line.
 */
#ifndef HEAPPROF_THREAD_H
#define HEAPPROF_THREAD_H

#include <pthread.h>
#include <sched.h>
#include <stdint.h>

#include "sampler.h"

typedef struct hp_thread {
  uint64_t bytes_left; /* bytes until this thread's next sample */
  uint32_t busy;       /* > 0 inside the profiler: allocations not sampled */
  uint32_t epoch;      /* the sampling epoch bytes_left was drawn in */
  int64_t gap_rate;    /* the rate bytes_left was drawn at */
  /* Exact counts for heapprof_read_stats: written only by this thread,
   * read by others (stats.c) without locks. */
  uint64_t mallocs;    /* allocation calls */
  uint64_t frees;      /* frees of non-NULL pointers */
  /* The bytes those allocations asked for are bytes_base − bytes_left, so
   * the fast path counts them by charging the countdown, with no store of
   * its own. Whatever else moves bytes_left moves bytes_base with it
   * (hp_countdown_set), inside an odd `seq`, so that a reader never pairs
   * an old base with a new countdown. */
  uint64_t bytes_base;
  uint32_t seq;
  /* 0: not yet known to stats.c; 1: in its registry, which sums the
   * counts here; -1: out of it (folded into its totals at thread exit, or
   * no room), so that counting must go elsewhere. */
  int registered;
  /* Sampled blocks this thread marked and unmarked (sampled.c) while
   * registered: their difference summed over threads is the live count,
   * with no line that every sampling thread writes. */
  uint64_t marked, unmarked;
  sampler_rng_t rng;
  /* The thread's labels (heapprof_label_push): a node of labels.h, which
   * is immortal, so nothing needs undoing when the thread exits. Read
   * only when an allocation is sampled; last, so that no field of the
   * allocation fast path moved when it was added. */
  const struct label_node *labels;
} hp_thread_t;

extern __thread hp_thread_t hp_self __attribute__((tls_model("initial-exec")));

/* Sets the countdown to `left`; the bytes count stays as it was. */
static inline void hp_countdown_set(hp_thread_t *t, uint64_t left) {
  uint32_t s = t->seq;
  __atomic_store_n(&t->seq, s + 1, __ATOMIC_RELAXED);
  __atomic_thread_fence(__ATOMIC_RELEASE);
  __atomic_store_n(&t->bytes_base, t->bytes_base + (left - t->bytes_left),
                   __ATOMIC_RELAXED);
  __atomic_store_n(&t->bytes_left, left, __ATOMIC_RELAXED);
  __atomic_store_n(&t->seq, s + 2, __ATOMIC_RELEASE);
}

/* Moves the bytes count by `n` (mod 2^64) without touching the countdown. */
static inline void hp_count_bytes(hp_thread_t *t, uint64_t n) {
  __atomic_store_n(&t->bytes_base, t->bytes_base + n, __ATOMIC_RELAXED);
}

/* Thread `t`'s bytes count, read from any thread while `t` lives: a block
 * caught in the middle of an update (a few instructions, which never wait
 * for anything) is read again until it is not. */
static inline uint64_t hp_thread_bytes(const hp_thread_t *t) {
  for (unsigned tries = 1;; tries++) {
    uint32_t s = __atomic_load_n(&t->seq, __ATOMIC_ACQUIRE);
    uint64_t base = __atomic_load_n(&t->bytes_base, __ATOMIC_RELAXED);
    uint64_t left = __atomic_load_n(&t->bytes_left, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    if (!(s & 1) && s == __atomic_load_n(&t->seq, __ATOMIC_RELAXED))
      return base - left;
    if (tries % 64 == 0) /* its thread was descheduled mid-update */
      sched_yield();
  }
}

/* The same for a block whose thread is gone (a fork child's view of the
 * parent's other threads): it may have stopped mid-update, and is read as
 * it stands. */
static inline uint64_t hp_thread_bytes_frozen(const hp_thread_t *t) {
  return t->bytes_base - t->bytes_left;
}

/* The profiler's own work on a program thread (a dump, a stats call): its
 * allocations are never sampled, and the thread's counts are put back
 * afterwards, because they are the profiler's, not the program's. */
typedef struct hp_own_work {
  uint64_t mallocs, frees, bytes;
  int cancel; /* the thread's cancelability, restored at the end */
} hp_own_work_t;

/* Cancellation is held off for the whole of it: the profiler's own I/O
 * (files, libdw, libunwind) is full of cancellation points, and a thread
 * cancelled there would leave dump_lock held and a temp file behind. */
static inline hp_own_work_t hp_own_begin(hp_thread_t *t) {
  hp_own_work_t w = {t->mallocs, t->frees, t->bytes_base - t->bytes_left, 0};
  pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &w.cancel);
  t->busy++;
  return w;
}

static inline void hp_own_end(hp_thread_t *t, hp_own_work_t saved) {
  t->mallocs = saved.mallocs, t->frees = saved.frees;
  hp_count_bytes(t, saved.bytes - (t->bytes_base - t->bytes_left));
  t->busy--;
  pthread_setcancelstate(saved.cancel, NULL);
}

#endif /* HEAPPROF_THREAD_H */
