/*
 * alloc_sampled — the malloc family's slow path: what an exported function
 * (alloc_api.c) calls when its fast path cannot finish the call alone.
 *
 * Two halves of one decision. The fast half is inline here: an allocation
 * is charged to the thread's countdown (thread.h) with one compare and one
 * subtract. Only the allocation that reaches the countdown's end enters
 * one of the *_slow functions, which decides whether it is sampled and, if
 * so, allocates it with a header and records it (sampled.h). free, realloc
 * and malloc_usable_size also come here for any pointer that carries the
 * sampled tag: a sampled block, a bootstrap block (alloc_next.h), or data
 * that matches by chance.
 *
 * Every *_slow function keeps the contract of the exported function that
 * calls it: the result and errno are the next allocator's, as if heapprof
 * were not there, whatever heapprof does on the way (it drops a sample
 * rather than fail an allocation). They are out of line and cold, so that
 * the fast paths stay straight-line code.
 */
#ifndef HEAPPROF_ALLOC_SAMPLED_H
#define HEAPPROF_ALLOC_SAMPLED_H

#include <stddef.h>

#include "thread.h"

#define ALLOC_SLOW __attribute__((noinline, cold))

/* Takes `n` bytes off the countdown if they do not reach its end: true
 * then, and the call is not sampled. False leaves the countdown as it was
 * (the caller then counts the bytes, or its slow path charges them). */
static inline int alloc_try_charge(hp_thread_t *t, size_t n) {
  uint64_t left = t->bytes_left;
  if (__builtin_expect(n < left, 1)) {
    t->bytes_left = left - n;
    return 1;
  }
  return 0;
}

/* Charges an allocation of `n` bytes to the countdown, which counts them
 * for heapprof_read_stats (thread.h); false when they reach its end (they
 * are counted then too, but not charged: the slow path sets a new
 * countdown). */
static inline int alloc_charge(hp_thread_t *t, size_t n) {
  if (__builtin_expect(alloc_try_charge(t, n), 1))
    return 1;
  hp_count_bytes(t, n);
  return 0;
}

/* malloc(n) whose `n` reached the countdown's end (already counted). */
ALLOC_SLOW void *alloc_malloc_slow(size_t n);

/* calloc(c, n) whose product overflowed or reached the countdown's end
 * (already counted). */
ALLOC_SLOW void *alloc_calloc_slow(size_t c, size_t n);

/* free(p) of a non-NULL `p` that carries the sampled tag or sits in the
 * first 16 bytes of a page (sampled_maybe); errno kept. */
ALLOC_SLOW void alloc_free_slow(void *p);

/* realloc(p, n) when `p` may be sampled (sampled_maybe) or `n` reached the
 * countdown's end; charges `n` itself. The caller counts the call. */
ALLOC_SLOW void *alloc_realloc_slow(void *p, size_t n);

/* A sampled block of `alloc` usable bytes (the program asked for `size`)
 * aligned to `align`, when the allocation that ran the countdown out is to
 * be sampled; NULL when it is not, or cannot be (`align` not a power of
 * two, the profiler short of memory): the caller then makes the ordinary
 * call, which judges `align` itself. */
ALLOC_SLOW void *alloc_aligned_slow(size_t align, size_t size, size_t alloc);

/* malloc_usable_size(p) of a `p` that sampled_maybe. */
ALLOC_SLOW size_t alloc_usable_slow(void *p);

/* Every allocating slow path, preload's and attach mode's (alloc_attach.h),
 * comes in here with the `n` bytes that ran the calling thread's countdown
 * out: the rate the allocation is sampled at, or 0 (always 0 before
 * start-up and while the thread is inside heapprof: busy). Sets the next
 * countdown. */
ALLOC_SLOW int64_t alloc_slow_enter(size_t n);

#ifdef ALLOC_SLOW_PATH
/*
 * For the slow paths only (alloc_sampled.c, alloc_attach.c), which define
 * ALLOC_SLOW_PATH: recording a sample. Kept out of the fast paths' view,
 * which need none of these headers.
 */
#include <pthread.h>

#include "buckets.h"
#include "control.h"
#include "inuse.h"
#include "labels.h"
#include "stack.h"

/* A sampled block of `b` came (alloc_note_alloc) or went
 * (alloc_note_free). Lock-free, except that an allocation that makes a new
 * high-water mark takes peak_lock (inuse.c): call it with busy set. */
static inline void alloc_note_alloc(bucket_t *b) {
  inuse_keep(b);
  bucket_note_alloc(b);
  inuse_note(b->size, b->rate, +1);
}

static inline void alloc_note_free(bucket_t *b) {
  inuse_keep(b);
  bucket_note_free(b);
  inuse_note(b->size, b->rate, -1);
}

/* Inlined into the slow paths, so that they are the only frame of ours
 * the unwinder steps through (stack.h). */
#define UNWOUND static inline __attribute__((always_inline))

/* The bucket for a sampled allocation of `size` bytes made here, under
 * the thread's labels; NULL if there is no memory for it (counted by
 * buckets.c). Call with busy set.
 * Cancellation is held off while libunwind works: its memory validation
 * calls read and write, which are cancellation points, and a pending
 * cancellation must never act inside malloc (POSIX does not make malloc
 * one; a thread cancelled there leaves the program's mutexes locked). */
UNWOUND bucket_t *alloc_bucket_here(size_t size, int64_t rate) {
  uintptr_t pcs[BUCKET_MAX_FRAMES];
  int cancel;
  pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel);
  int nframes = stack_capture(pcs, control_depth);
  pthread_setcancelstate(cancel, NULL);
  const label_node_t *labels = hp_self.labels;
  return bucket_get(pcs, (uint32_t)nframes, size, rate,
                    labels != NULL ? labels->set_id : 0);
}
#endif /* ALLOC_SLOW_PATH */

#endif /* HEAPPROF_ALLOC_SAMPLED_H */
