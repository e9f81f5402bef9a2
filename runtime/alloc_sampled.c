/*
 * alloc_sampled — the slow path of the malloc family: deciding whether an
 * allocation is sampled, allocating and freeing sampled blocks, and realloc
 * between sampled and ordinary blocks.
 *
 * Invariants:
 * - Sampling is a Poisson process over each thread's allocated bytes: an
 *   allocation is sampled when its bytes reach the end of the gap drawn at
 *   the thread's last sample (sampler.h), at that gap's rate, which the
 *   sample keeps for life, so a rate change never re-weights a sample
 *   already taken. should_sample is that decision and nothing else.
 * - Nothing of heapprof's own is sampled: while hp_self.busy is set (here,
 *   on the dump thread, in the API), allocations are forwarded, so memory
 *   that the unwinder, protobuf-c, zlib or libdw ask for is invisible to
 *   profiles; and every profiler lock taken on a program thread is taken
 *   with busy set.
 * - A sampled block is recorded (its header and map bit, sampled.h) from
 *   before its allocation returns until before the next allocator sees its
 *   free; the program sees the next allocator's results and errno, and
 *   every malloc_usable_size byte of a block, sampled or not, is its own.
 */
#define _GNU_SOURCE
#define ALLOC_SLOW_PATH /* alloc_sampled.h's shared slow-path helpers */
#include "alloc_sampled.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "alloc_next.h"
#include "buckets.h"
#include "control.h"
#include "inuse.h"
#include "labels.h"
#include "triggers.h"
#include "sampled.h"
#include "sampler.h"
#include "stack.h"
#include "stats.h"
#include "thread.h"

#define unlikely(x) __builtin_expect(!!(x), 0)

/* While sampling is off, threads look at the rate again after this many
 * bytes, so heapprof_set_rate() reaches them. */
#define OFF_RECHECK_BYTES ((uint64_t)16 << 20)

__thread hp_thread_t hp_self __attribute__((tls_model("initial-exec")));

/* ---- the decision ---- */

static _Atomic uint64_t thread_streams;

/* A new gap at `rate`, remembered as the rate the next sample is taken at. */
static uint64_t draw(hp_thread_t *t, int64_t rate) {
  t->gap_rate = rate;
  return rate > 0 ? (uint64_t)sampler_gap(&t->rng, rate) : OFF_RECHECK_BYTES;
}

/*
 * Whether an allocation of `n` bytes that ran thread `t`'s countdown out
 * (or is its first since sampling epoch `epoch` began) is sampled: the rate
 * it is sampled at — the rate of the gap that ended here — or 0. Either
 * way the countdown is set for the next allocation. Touches only `t`'s
 * countdown, generator and epoch; `epoch` is nonzero (sampling started).
 */
static int64_t should_sample(hp_thread_t *t, size_t n, uint32_t epoch) {
  int64_t rate = atomic_load_explicit(&control_rate, memory_order_relaxed);
  if (t->epoch != epoch) {
    if (t->epoch == 0)
      sampler_seed(&t->rng, sampler_mix(control_seed,
                                        atomic_fetch_add(&thread_streams, 1)));
    t->epoch = epoch;
    uint64_t gap = draw(t, rate);
    if (rate == 0 || n < gap) { /* the new gap does not end here */
      hp_countdown_set(t, gap - (rate == 0 ? 0 : n));
      return 0;
    }
  }
  int64_t sample_rate = t->gap_rate;
  hp_countdown_set(t, draw(t, rate));
  return sample_rate;
}

/* ---- the slow path's side jobs, kept out of the decision ---- */

/* Once per thread, at its first slow path after start-up: its counts join
 * heapprof_read_stats (stats.c). Before the decision, so that the
 * registry's own allocations (forwarded: busy) are charged to the
 * countdown that the decision replaces, not to the new gap. */
static void thread_first_slow(hp_thread_t *t) {
  if (unlikely(!t->registered)) {
    t->busy++;
    stats_thread_register(t);
    t->busy--;
  }
}

/* At a sample while the dump thread is wanted but not running (the first
 * sample after start-up, after fork, after triggers_stop_thread): starts it
 * (triggers.h). Its memory and counts are not the program's (hp_own_begin);
 * after the decision, its allocations are charged to the new gap. */
static void sample_first_slow(hp_thread_t *t) {
  if (unlikely(atomic_load_explicit(&triggers_start_pending,
                                    memory_order_relaxed))) {
    hp_own_work_t own = hp_own_begin(t);
    triggers_start_thread();
    hp_own_end(t, own);
  }
}

/*
 * Every allocating slow path comes in here with the `n` bytes that ran the
 * countdown out: the rate the allocation is sampled at, or 0. Nothing is
 * sampled before start-up (the countdown is looked at again at the next
 * allocation) or while the thread is inside heapprof (the countdown is
 * left as it was: not ours to spend).
 */
static ALLOC_SLOW int64_t slow_enter(hp_thread_t *t, size_t n) {
  uint32_t epoch = atomic_load_explicit(&control_epoch, memory_order_acquire);
  if (epoch == 0 || t->busy)
    return 0;
  thread_first_slow(t);
  int64_t rate = should_sample(t, n, epoch);
  if (rate > 0)
    sample_first_slow(t);
  return rate;
}

/* The same for attach mode's slow paths (alloc_attach.c): a function of
 * its own, so that the code generated for preload's calls stays as it was
 * (slow_enter is specialised for hp_self). */
ALLOC_SLOW int64_t alloc_slow_enter(size_t n) {
  return slow_enter(&hp_self, n);
}

/* ---- recording sampled blocks ---- */

/* (alloc_note_alloc, alloc_note_free and alloc_bucket_here are
 * alloc_sampled.h's: attach mode's slow paths share them.) */

/* Marks `raw` + `align` as a sampled block of `b`; NULL (nothing marked)
 * if the sampled map has no memory. */
static void *mark(void *raw, size_t align, bucket_t *b) {
  char *p = (char *)raw + align;
  if (sampled_mark(p, b, (unsigned)__builtin_ctzl(align) - 4) != 0)
    return NULL;
  alloc_note_alloc(b);
  return p;
}

enum raw_kind { RAW_MALLOC, RAW_CALLOC, RAW_ALIGNED };

static void *raw_alloc(enum raw_kind how, size_t align, size_t total) {
  void *raw = NULL;
  switch (how) {
  case RAW_MALLOC: return alloc_next.malloc(total);
  case RAW_CALLOC: return alloc_next.calloc(1, total);
  case RAW_ALIGNED:
    return alloc_next.posix_memalign(&raw, align, total) ? NULL : raw;
  }
  return NULL;
}

/*
 * Allocates a sampled block: `size` bytes as the program asked (the bucket
 * key), `alloc` bytes usable, aligned to `align` (a power of two ≥ 16),
 * with its header below. NULL means nothing was allocated or recorded (the
 * drop is counted when the profiler was short of memory): the caller then
 * makes the ordinary allocation, so results and errno are the allocator's.
 */
UNWOUND void *sampled_alloc(size_t size, size_t alloc, size_t align,
                            enum raw_kind how, int64_t rate) {
  size_t total;
  if (__builtin_add_overflow(alloc, align, &total))
    return NULL;
  hp_thread_t *t = &hp_self;
  int saved = errno;
  void *p = NULL;
  t->busy++;
  bucket_t *b = alloc_bucket_here(size, rate);
  void *raw = b != NULL ? raw_alloc(how, align, total) : NULL;
  if (raw != NULL && (p = mark(raw, align, b)) == NULL) {
    alloc_next.free(raw);
    control_count_drop(); /* (a bucket that could not be made is counted
                             by buckets.c) */
  }
  t->busy--;
  errno = saved;
  return p;
}

/* Frees live sampled block `p`: record first, then the allocator. A thread
 * that has not registered with stats.c is not registered here: glibc frees
 * exiting threads' TLS vectors after their TSD destructors have run, too
 * late for a registry node to be taken back, and such a thread's unmark
 * is counted as a stray anyway (sampled.c). */
static void sampled_free(void *p) {
  size_t offset;
  bucket_t *b = sampled_unmark(p, &offset);
  alloc_note_free(b);
  alloc_next.free((char *)p - offset);
}

/* ---- malloc, calloc, free ---- */

ALLOC_SLOW void *alloc_malloc_slow(size_t n) {
  void *p;
  int64_t rate = slow_enter(&hp_self, n);
  if (rate > 0 &&
      (p = sampled_alloc(n, n, SAMPLED_HEADER, RAW_MALLOC, rate)) != NULL)
    return p;
  return alloc_next.malloc(n);
}

ALLOC_SLOW void *alloc_calloc_slow(size_t c, size_t n) {
  size_t bytes;
  void *p;
  int64_t rate;
  if (!__builtin_mul_overflow(c, n, &bytes) &&
      (rate = slow_enter(&hp_self, bytes)) > 0 &&
      (p = sampled_alloc(bytes, bytes, SAMPLED_HEADER, RAW_CALLOC, rate)) != NULL)
    return p;
  return alloc_next.calloc(c, n);
}

/* A sampled block is asked first: a bootstrap block never has the map bit
 * (alloc_next.h), so the order changes no answer, and a sampled free then
 * pays for one test only. */
ALLOC_SLOW void alloc_free_slow(void *p) {
  int saved = errno;
  if (sampled_is(p))
    sampled_free(p);
  else if (!alloc_next_boot_owns(p)) /* a boot block is never freed */
    alloc_next.free(p);
  errno = saved;
}

/* ---- realloc ---- */

/* The bytes of live block `p` that belong to the program: all of its
 * malloc_usable_size, not just what was asked for. glibc documents them as
 * the program's, and programs use them (redis's sds strings keep data in
 * the slack), so a realloc that moves a block must carry every one. */
static size_t usable(void *p, int sampled) {
  size_t offset;
  if (!sampled)
    return alloc_next.malloc_usable_size(p);
  sampled_peek(p, &offset);
  return alloc_next.malloc_usable_size((char *)p - offset) - offset;
}

/* Moves block `p` (`old` usable bytes) to new allocation `q` (NULL:
 * failed, `p` untouched), copying min(old, q's usable size) bytes — as
 * glibc's realloc does. */
static void *move(void *p, size_t old, void *q, int q_sampled, int p_sampled) {
  if (q == NULL || p == NULL)
    return q;
  size_t room = usable(q, q_sampled);
  memcpy(q, p, old < room ? old : room);
  if (p_sampled)
    sampled_free(p);
  else
    alloc_next.free(p);
  return q;
}

/* Grows or shrinks sampled block `p` in place-capable next realloc, as a
 * new sample of `b`. NULL: failed, `p` still recorded and untouched. */
static void *realloc_sampled(void *p, size_t n, bucket_t *b) {
  size_t offset, old_usable = usable(p, 1);
  bucket_t *old = sampled_unmark(p, &offset);
  char *raw = alloc_next.realloc((char *)p - offset, n + SAMPLED_HEADER);
  if (raw == NULL) {
    sampled_mark(p, old, 0); /* the region exists: this cannot fail */
    return NULL;
  }
  alloc_note_free(old);
  void *q = mark(raw, SAMPLED_HEADER, b);
  if (q == NULL) { /* cannot record: hand it out as an ordinary block */
    size_t room = alloc_next.malloc_usable_size(raw) - SAMPLED_HEADER;
    memmove(raw, raw + SAMPLED_HEADER, old_usable < room ? old_usable : room);
    control_count_drop();
    return raw;
  }
  return q;
}

/*
 * The transitions, by what `p` is and whether the new block is sampled:
 * boot → a new block (alloc_next_boot_realloc); sampled → sampled, in
 * place when the offset allows (realloc_sampled), else by moving; ordinary
 * → sampled, by moving; sampled → ordinary, by moving, or realloc(p, 0) on
 * the raw block; ordinary → ordinary, the next realloc.
 */
ALLOC_SLOW void *alloc_realloc_slow(void *p, size_t n) {
  if (alloc_next_boot_owns(p))
    return alloc_next_boot_realloc(p, n);
  hp_thread_t *t = &hp_self;
  int saved = errno, old_sampled = p != NULL && sampled_is(p);
  int64_t rate = !alloc_charge(t, n) && n != 0 && n <= SIZE_MAX - 4096
                     ? slow_enter(t, n) : 0;
  size_t offset = 0;
  if (old_sampled)
    sampled_peek(p, &offset);
  void *q = NULL;
  if (rate > 0 && old_sampled && offset == SAMPLED_HEADER) {
    t->busy++;
    bucket_t *b = alloc_bucket_here(n, rate);
    t->busy--;
    errno = saved;
    if (b != NULL)
      return realloc_sampled(p, n, b); /* else counted by buckets.c */
  } else if (rate > 0) {
    q = sampled_alloc(n, n, SAMPLED_HEADER, RAW_MALLOC, rate);
  }
  if (q != NULL) /* into a new sampled block */
    return move(p, p ? usable(p, old_sampled) : 0, q, 1, old_sampled);
  if (!old_sampled)
    return alloc_next.realloc(p, n);
  if (n == 0) { /* the allocator's realloc(p, 0), on the raw block */
    alloc_note_free(sampled_unmark(p, &offset));
    return alloc_next.realloc((char *)p - offset, 0);
  }
  return move(p, usable(p, 1), alloc_next.malloc(n), 0, 1);
}

/* ---- the aligned family, malloc_usable_size ---- */

ALLOC_SLOW void *alloc_aligned_slow(size_t align, size_t size, size_t alloc) {
  int64_t rate;
  if (align == 0 || (align & (align - 1)) != 0 || align > ((size_t)1 << 40) ||
      (rate = slow_enter(&hp_self, size)) == 0)
    return NULL;
  return sampled_alloc(size, alloc, align < SAMPLED_HEADER ? SAMPLED_HEADER : align,
                       RAW_ALIGNED, rate);
}

ALLOC_SLOW size_t alloc_usable_slow(void *p) {
  if (alloc_next_boot_owns(p))
    return alloc_next_boot_size(p);
  return usable(p, sampled_is(p));
}
