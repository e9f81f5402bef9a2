/*
 * buckets — per-(stack, size) allocation counters, kept forever.
 *
 * A bucket is created the first time a sampled allocation has its stack,
 * requested size and sampling rate, and every later sample with the same key updates it. A
 * bucket, once published, never changes its key and is never freed; its
 * counters only grow. In-use = allocs - frees.
 */
#ifndef HEAPPROF_BUCKETS_H
#define HEAPPROF_BUCKETS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Deepest stack a bucket can hold; HEAPPROF_DEPTH is clamped to it. */
#define BUCKET_MAX_FRAMES 256

typedef struct bucket {
  struct bucket *_Atomic next_in_chain; /* hash chain */
  struct bucket *_Atomic next_in_all;   /* every bucket, newest first */
  uint64_t hash;
  uint64_t size; /* requested bytes of each object */
  int64_t rate;  /* the sampling rate its samples were taken at (≥ 1) */
  uint32_t nframes;
  _Atomic uint64_t allocs; /* sampled allocations */
  _Atomic uint64_t frees;  /* frees of those */
  uintptr_t pcs[];         /* return addresses, leaf first */
} bucket_t;

/* A bucket's counters read at one moment; frees <= allocs always. */
typedef struct bucket_count {
  const bucket_t *bucket;
  uint64_t allocs;
  uint64_t frees;
} bucket_count_t;

/*
 * The bucket for (pcs, size, rate), created if needed. The rate is part of
 * the key so that every sample keeps the weight it was taken with: a later
 * heapprof_set_rate() never re-weights history (tcmalloc keeps each
 * sample's period for the same reason). NULL only when profiler
 * memory is exhausted (the caller counts a drop). Existing buckets are
 * found without taking a lock.
 */
bucket_t *bucket_get(const uintptr_t *pcs, uint32_t nframes, uint64_t size,
                     int64_t rate);

static inline void bucket_note_alloc(bucket_t *b) {
  atomic_fetch_add_explicit(&b->allocs, 1, memory_order_relaxed);
}

static inline void bucket_note_free(bucket_t *b) {
  atomic_fetch_add_explicit(&b->frees, 1, memory_order_release);
}

/*
 * Copies the counters of every bucket into a new malloc'd array (freed by
 * the caller). Returns the count, or (size_t)-1 if malloc failed.
 */
size_t bucket_snapshot(bucket_count_t **out);

/* Buckets created so far, and the buckets that could not be created. */
uint64_t bucket_total(void);
uint64_t bucket_dropped(void);

void bucket_fork_prepare(void);
void bucket_fork_parent(void);
void bucket_fork_child(void);

#endif /* HEAPPROF_BUCKETS_H */
