/*
 * buckets — per-(stack, size, labels) allocation counters, kept forever.
 *
 * A bucket is created the first time a sampled allocation has its stack,
 * requested size, sampling rate and label set (labels.h), and every later
 * sample with the same key updates it. A
 * bucket, once published, never changes its key and is never freed; its
 * counters only grow. In-use = allocs - frees.
 */
#ifndef HEAPPROF_BUCKETS_H
#define HEAPPROF_BUCKETS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "alloc.h"

/* Deepest stack a bucket can hold; HEAPPROF_DEPTH is clamped to it. */
#define BUCKET_MAX_FRAMES 256

typedef struct bucket {
  struct bucket *_Atomic next_in_chain; /* hash chain */
  struct bucket *_Atomic next_in_all;   /* every bucket, newest first */
  uint64_t hash;
  uint64_t size; /* requested bytes of each object */
  int64_t rate;  /* the sampling rate its samples were taken at (≥ 1) */
  uint32_t nframes;
  uint32_t labels; /* the label set in force at the allocation (0: none) */
  uint64_t serial; /* creation number: buckets created before it (0, 1, …) */
  _Atomic uint64_t allocs; /* sampled allocations */
  _Atomic uint64_t frees;  /* frees of those */
  /* The counters as they stood when keeping epoch `kept_epoch` began
   * (bucket_keep): copied on the bucket's first change in that epoch, so a
   * moment's counts are kept without copying every bucket at that moment.
   * An odd kept_epoch means a copy is being written. */
  _Atomic uint32_t kept_epoch;
  uint64_t kept_allocs, kept_frees;
  uintptr_t pcs[];         /* return addresses, leaf first */
} bucket_t;

/* A bucket's counters read at one moment; frees <= allocs always. */
typedef struct bucket_count {
  const bucket_t *bucket;
  uint64_t allocs;
  uint64_t frees;
} bucket_count_t;

/* Where buckets come from: `alloc_permanent` returns zeroed memory aligned
 * for a bucket_t that is never given back (buckets live forever), or NULL
 * when there is no more. Set once, before the first bucket_get. */
void bucket_set_memory(void *(*alloc_permanent)(size_t bytes));

/*
 * The bucket for (pcs, size, rate, labels), created if needed. The rate is part of
 * the key so that every sample keeps the weight it was taken with: a later
 * heapprof_set_rate() never re-weights history (tcmalloc keeps each
 * sample's period for the same reason). NULL only when profiler
 * memory is exhausted (the caller counts a drop). Existing buckets are
 * found without taking a lock.
 */
bucket_t *bucket_get(const uintptr_t *pcs, uint32_t nframes, uint64_t size,
                     int64_t rate, uint32_t labels);

static inline void bucket_note_alloc(bucket_t *b) {
  atomic_fetch_add_explicit(&b->allocs, 1, memory_order_relaxed);
}

static inline void bucket_note_free(bucket_t *b) {
  atomic_fetch_add_explicit(&b->frees, 1, memory_order_release);
}

/*
 * Copy-on-write moments (the peak profile): epoch `e` (even, ≥ 2) starts at
 * a moment worth keeping; a writer calls bucket_keep(b, e) before it changes
 * b's counters, which saves them the first time in each epoch. The counts at
 * the moment are then each bucket's kept ones if kept in `e`, else its
 * current ones (unchanged since). O(1) per change, nothing at the moment.
 */
static inline void bucket_keep(bucket_t *b, uint32_t epoch) {
  uint32_t seen = atomic_load_explicit(&b->kept_epoch, memory_order_acquire);
  if (seen == epoch || (seen & 1) ||
      !atomic_compare_exchange_strong_explicit(&b->kept_epoch, &seen,
                                               epoch | 1,
                                               memory_order_acquire,
                                               memory_order_relaxed))
    return; /* kept already, or another thread is keeping it */
  b->kept_frees = atomic_load_explicit(&b->frees, memory_order_acquire);
  b->kept_allocs = atomic_load_explicit(&b->allocs, memory_order_relaxed);
  atomic_store_explicit(&b->kept_epoch, epoch, memory_order_release);
}

/* The counters of every bucket at one moment, newest bucket first. */
typedef struct bucket_snapshot {
  bucket_count_t *counts;
  size_t n, cap; /* counts[0..n) hold; cap is what `a` gave */
} bucket_snapshot_t;

/*
 * Copies the counters of every bucket into memory from `a`: as they are now
 * (epoch 0), or as they stood at the start of keeping epoch `epoch`. 0, or
 * -1 with errno ENOMEM (then *out is empty). Free it with
 * bucket_snapshot_free.
 */
int bucket_snapshot(const prof_alloc_t *a, uint32_t epoch,
                    bucket_snapshot_t *out);
void bucket_snapshot_free(const prof_alloc_t *a, bucket_snapshot_t *s);

/* Buckets created so far, and the buckets that could not be created. */
uint64_t bucket_total(void);
uint64_t bucket_dropped(void);

void bucket_fork_prepare(void);
void bucket_fork_parent(void);
void bucket_fork_child(void);

#endif /* HEAPPROF_BUCKETS_H */
