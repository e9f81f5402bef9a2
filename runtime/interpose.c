/*
 * interpose — the malloc family, forwarded to the next allocator.
 *
 * Each entry point spends one compare and one subtract on the thread's
 * sample countdown and tail-calls the next allocator in link order (glibc,
 * or a jemalloc/tcmalloc loaded after us). Only an allocation that reaches
 * the countdown's end leaves for the out-of-line slow path, which decides
 * whether to sample it and, if so, allocates it with a header and records
 * it (sampled.h). free() reads the word below the pointer — on the cache
 * line the next allocator's free reads anyway — and leaves the fast path
 * only when it holds the block's tag.
 *
 * Bootstrap: `next` starts out pointing at stubs that resolve the real
 * functions with dlsym(RTLD_NEXT). dlsym itself may call calloc/malloc;
 * those recursive calls are served from a static buffer. Its blocks carry
 * the sampled tag (never the map bit), so free, realloc and
 * malloc_usable_size send them to the slow path, which recognises them by
 * address and never hands them to the next allocator.
 *
 * Reentrancy: while hp_self.busy is set (inside the slow path, the dump
 * thread, the API), allocations are forwarded and never sampled, so memory
 * the unwinder, protobuf-c, zlib or libdw ask for is invisible to profiles.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "buckets.h"
#include "control.h"
#include "inuse.h"
#include "triggers.h"
#include "sampled.h"
#include "sampler.h"
#include "stack.h"
#include "stats.h"
#include "thread.h"

#define EXPORT __attribute__((visibility("default")))
#define SLOW __attribute__((noinline, cold))
#define unlikely(x) __builtin_expect(!!(x), 0)
#define likely(x) __builtin_expect(!!(x), 1)

/* While sampling is off, threads look at the rate again after this many
 * bytes, so heapprof_set_rate() reaches them. */
#define OFF_RECHECK_BYTES ((uint64_t)16 << 20)

__thread hp_thread_t hp_self __attribute__((tls_model("initial-exec")));

/* ---- bootstrap ---- */

#define BOOT_BYTES ((size_t)128 * 1024)
#define BOOT_HEADER 16

static _Alignas(64) char boot_buf[BOOT_BYTES];
static _Atomic size_t boot_used;
static __thread int resolving __attribute__((tls_model("initial-exec")));

static inline int boot_owns(const void *p) {
  return (uintptr_t)p - (uintptr_t)boot_buf < BOOT_BYTES;
}

/* Static-buffer allocation for calls made while dlsym runs. Its header
 * keeps the size for realloc and malloc_usable_size. */
static void *boot_alloc(size_t n, size_t align) {
  if (align < BOOT_HEADER)
    align = BOOT_HEADER;
  size_t used = atomic_load(&boot_used), start, end;
  do {
    start = (used + BOOT_HEADER + align - 1) & ~(align - 1);
    end = start + n;
    if (n > BOOT_BYTES || end > BOOT_BYTES) {
      errno = ENOMEM;
      return NULL;
    }
  } while (!atomic_compare_exchange_weak(&boot_used, &used, end));
  char *p = boot_buf + start; /* the buffer is zero and never reused */
  memcpy(p - sizeof n, &n, sizeof n);
  uint64_t tag = sampled_tag((uintptr_t)p); /* route frees to the slow path */
  memcpy(p - 2 * sizeof n, &tag, sizeof tag);
  return p;
}

static size_t boot_size(const void *p) {
  size_t n;
  memcpy(&n, (const char *)p - sizeof n, sizeof n);
  return n;
}

/* ---- the next allocator ---- */

static void *stub_malloc(size_t);
static void stub_free(void *);
static void *stub_calloc(size_t, size_t);
static void *stub_realloc(void *, size_t);
static int stub_posix_memalign(void **, size_t, size_t);
static void *stub_aligned_alloc(size_t, size_t);
static void *stub_memalign(size_t, size_t);
static void *stub_valloc(size_t);
static void *stub_pvalloc(size_t);
static size_t stub_malloc_usable_size(void *);

static struct {
  void *(*malloc)(size_t);
  void (*free)(void *);
  void *(*calloc)(size_t, size_t);
  void *(*realloc)(void *, size_t);
  int (*posix_memalign)(void **, size_t, size_t);
  void *(*aligned_alloc)(size_t, size_t);
  void *(*memalign)(size_t, size_t);
  void *(*valloc)(size_t);
  void *(*pvalloc)(size_t);
  size_t (*malloc_usable_size)(void *);
} next = {stub_malloc,         stub_free,          stub_calloc,
          stub_realloc,        stub_posix_memalign, stub_aligned_alloc,
          stub_memalign,       stub_valloc,         stub_pvalloc,
          stub_malloc_usable_size};

static void *lookup(const char *name, void *fallback) {
  void *f = dlsym(RTLD_NEXT, name);
  return f != NULL ? f : fallback;
}

extern void *__libc_malloc(size_t), *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t), *__libc_memalign(size_t, size_t);
extern void *__libc_valloc(size_t), *__libc_pvalloc(size_t);
extern void __libc_free(void *);

/* Resolves every forwarded function. The glibc-internal names are the
 * fallback when RTLD_NEXT finds nothing (e.g. a static dlsym failure). */
static SLOW void resolve(void) {
  int saved = errno;
  resolving = 1;
  /* The tag key, set before the first bootstrap block is tagged with it.
   * Not AT_RANDOM's bytes: glibc's stack canary and pointer guard are made
   * of them, and a sampled block's header would hand them out (tag xor
   * address). getrandom never allocates; should it fail, ASLR's addresses
   * and the clock make a key that reveals nothing else. */
  uint64_t key;
  if (getrandom(&key, sizeof key, GRND_NONBLOCK) != (ssize_t)sizeof key) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    key = sampler_mix((uintptr_t)&key ^ (uintptr_t)&resolving,
                      (uint64_t)now.tv_nsec ^ ((uint64_t)now.tv_sec << 30));
  }
  sampled_init(key);
  next.calloc = lookup("calloc", __libc_calloc);
  next.realloc = lookup("realloc", __libc_realloc);
  next.posix_memalign = lookup("posix_memalign", NULL);
  next.aligned_alloc = lookup("aligned_alloc", __libc_memalign);
  next.memalign = lookup("memalign", __libc_memalign);
  next.valloc = lookup("valloc", __libc_valloc);
  next.pvalloc = lookup("pvalloc", __libc_pvalloc);
  next.malloc_usable_size = lookup("malloc_usable_size", NULL);
  next.free = lookup("free", __libc_free);
  next.malloc = lookup("malloc", __libc_malloc);
  resolving = 0;
  errno = saved;
}

static SLOW void *stub_malloc(size_t n) {
  if (resolving)
    return boot_alloc(n, 16);
  resolve();
  return next.malloc(n);
}

static SLOW void stub_free(void *p) {
  if (p == NULL || boot_owns(p))
    return;
  resolve();
  next.free(p);
}

static SLOW void *stub_calloc(size_t c, size_t n) {
  size_t bytes;
  if (!resolving) {
    resolve();
    return next.calloc(c, n);
  }
  if (__builtin_mul_overflow(c, n, &bytes)) {
    errno = ENOMEM;
    return NULL;
  }
  return boot_alloc(bytes, 16);
}

static SLOW void *stub_realloc(void *p, size_t n) {
  resolve();
  return next.realloc(p, n);
}

static SLOW int stub_posix_memalign(void **out, size_t align, size_t n) {
  resolve();
  if (next.posix_memalign == NULL)
    return ENOSYS;
  return next.posix_memalign(out, align, n);
}

static SLOW void *stub_aligned_alloc(size_t align, size_t n) {
  if (resolving)
    return boot_alloc(n, align);
  resolve();
  return next.aligned_alloc(align, n);
}

static SLOW void *stub_memalign(size_t align, size_t n) {
  if (resolving)
    return boot_alloc(n, align);
  resolve();
  return next.memalign(align, n);
}

static SLOW void *stub_valloc(size_t n) {
  resolve();
  return next.valloc(n);
}

static SLOW void *stub_pvalloc(size_t n) {
  resolve();
  return next.pvalloc(n);
}

static SLOW size_t stub_malloc_usable_size(void *p) {
  resolve();
  return next.malloc_usable_size ? next.malloc_usable_size(p) : 0;
}

/* ---- deciding and recording samples ---- */

static _Atomic uint64_t thread_streams;

/* A new gap at `rate`, remembered as the rate the next sample is taken at. */
static uint64_t draw(hp_thread_t *t, int64_t rate) {
  t->gap_rate = rate;
  return rate > 0 ? (uint64_t)sampler_gap(&t->rng, rate) : OFF_RECHECK_BYTES;
}

/*
 * Called when an allocation of `n` bytes ran the countdown out (or the
 * thread has not drawn a gap in the current epoch): the rate it is sampled
 * at — the rate of the gap that ended here — or 0 if it is not sampled.
 * Either way the countdown is set for the next allocation.
 */
static SLOW int64_t should_sample(hp_thread_t *t, size_t n) {
  uint32_t epoch = atomic_load_explicit(&control_epoch, memory_order_acquire);
  if (epoch == 0) /* not started: look again at the next allocation */
    return 0;
  if (t->busy) /* the countdown is left as it was: not ours to spend */
    return 0;
  if (unlikely(!t->registered)) { /* its counts join heapprof_read_stats */
    t->busy++;
    stats_thread_register(t);
    t->busy--;
  }
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
  if (unlikely(atomic_load_explicit(&triggers_start_pending,
                                    memory_order_relaxed)) && sample_rate > 0) {
    hp_own_work_t own = hp_own_begin(t); /* its memory is not the program's */
    triggers_start_thread(); /* the first sample wants the dump thread */
    hp_own_end(t, own);
  }
  return sample_rate;
}

/* A sampled block of `b` came (note_alloc) or went (note_free). */
static void note_alloc(bucket_t *b) {
  inuse_keep(b);
  bucket_note_alloc(b);
  inuse_note(b->size, b->rate, +1);
}

static void note_free(bucket_t *b) {
  inuse_keep(b);
  bucket_note_free(b);
  inuse_note(b->size, b->rate, -1);
}

/* Inlined into the slow paths, so that they are the only frame of ours
 * the unwinder steps through (stack.h). */
#define UNWOUND static inline __attribute__((always_inline))

/* The bucket for a sampled allocation of `size` bytes made here. */
/* Cancellation is held off while libunwind works: its memory validation
 * calls read and write, which are cancellation points, and a pending
 * cancellation must never act inside malloc (POSIX does not make malloc
 * one; a thread cancelled there leaves the program's mutexes locked). */
UNWOUND bucket_t *bucket_here(size_t size, int64_t rate) {
  uintptr_t pcs[BUCKET_MAX_FRAMES];
  int cancel;
  pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel);
  int nframes = stack_capture(pcs, control_depth);
  pthread_setcancelstate(cancel, NULL);
  return bucket_get(pcs, (uint32_t)nframes, size, rate);
}

/* Marks `raw` + `align` as a sampled block of `b`; NULL (nothing marked)
 * if the sampled map has no memory. */
static void *mark(void *raw, size_t align, bucket_t *b) {
  char *p = (char *)raw + align;
  if (sampled_mark(p, b, (unsigned)__builtin_ctzl(align) - 4) != 0)
    return NULL;
  note_alloc(b);
  return p;
}

enum raw_kind { RAW_MALLOC, RAW_CALLOC, RAW_ALIGNED };

static void *raw_alloc(enum raw_kind how, size_t align, size_t total) {
  void *raw = NULL;
  switch (how) {
  case RAW_MALLOC: return next.malloc(total);
  case RAW_CALLOC: return next.calloc(1, total);
  case RAW_ALIGNED: return next.posix_memalign(&raw, align, total) ? NULL : raw;
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
  bucket_t *b = bucket_here(size, rate);
  void *raw = b != NULL ? raw_alloc(how, align, total) : NULL;
  if (raw != NULL && (p = mark(raw, align, b)) == NULL) {
    next.free(raw);
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
  note_free(b);
  next.free((char *)p - offset);
}

/* ---- the exported family ---- */

/* Takes `n` bytes off the countdown if they do not reach its end. */
static inline int try_charge(hp_thread_t *t, size_t n) {
  uint64_t left = t->bytes_left;
  if (likely(n < left)) {
    t->bytes_left = left - n;
    return 1;
  }
  return 0;
}

/* Charges an allocation of `n` bytes to the countdown, which counts them
 * for heapprof_read_stats (thread.h); false when they reach its end. */
static inline int charge(hp_thread_t *t, size_t n) {
  if (likely(try_charge(t, n)))
    return 1;
  hp_count_bytes(t, n); /* counted, but not charged */
  return 0;
}

static SLOW void *malloc_slow(size_t n) {
  void *p;
  int64_t rate = should_sample(&hp_self, n);
  if (rate > 0 &&
      (p = sampled_alloc(n, n, SAMPLED_HEADER, RAW_MALLOC, rate)) != NULL)
    return p;
  return next.malloc(n);
}

EXPORT void *malloc(size_t n) {
  hp_thread_t *t = &hp_self;
  t->mallocs++;
  if (likely(charge(t, n)))
    return next.malloc(n);
  return malloc_slow(n);
}

static SLOW void free_slow(void *p) {
  int saved = errno;
  if (boot_owns(p))
    ; /* a bootstrap block: never given to the next allocator */
  else if (sampled_is(p))
    sampled_free(p);
  else
    next.free(p);
  errno = saved;
}

/* sampled_maybe(), spelt out so that the count needs no test of its own:
 * a pointer near a page start (NULL among them) takes the rare branch. */
EXPORT void free(void *p) {
  if (likely(sampled_can_peek((uintptr_t)p))) {
    hp_self.frees++;
    if (likely(!sampled_tagged(p))) {
      next.free(p);
      return;
    }
  } else if (p == NULL) {
    return;
  } else {
    hp_self.frees++;
  }
  free_slow(p);
}

static SLOW void *calloc_slow(size_t c, size_t n) {
  size_t bytes;
  void *p;
  int64_t rate;
  if (!__builtin_mul_overflow(c, n, &bytes) &&
      (rate = should_sample(&hp_self, bytes)) > 0 &&
      (p = sampled_alloc(bytes, bytes, SAMPLED_HEADER, RAW_CALLOC, rate)) != NULL)
    return p;
  return next.calloc(c, n);
}

EXPORT void *calloc(size_t c, size_t n) {
  size_t bytes;
  hp_thread_t *t = &hp_self;
  int overflow = __builtin_mul_overflow(c, n, &bytes);
  t->mallocs++;
  if (likely(!overflow && charge(t, bytes)))
    return next.calloc(c, n);
  return calloc_slow(c, n);
}

static SLOW void *boot_realloc(void *p, size_t n) {
  void *q = malloc(n);
  if (q != NULL) {
    size_t old = boot_size(p);
    memcpy(q, p, old < n ? old : n);
  }
  return q;
}

/* The bytes of live block `p` that belong to the program: all of its
 * malloc_usable_size, not just what was asked for. glibc documents them as
 * the program's, and programs use them (redis's sds strings keep data in
 * the slack), so a realloc that moves a block must carry every one. */
static size_t usable(void *p, int sampled) {
  size_t offset;
  if (!sampled)
    return next.malloc_usable_size(p);
  sampled_peek(p, &offset);
  return next.malloc_usable_size((char *)p - offset) - offset;
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
    next.free(p);
  return q;
}

/* Grows or shrinks sampled block `p` in place-capable next.realloc, as a
 * new sample of `b`. NULL: failed, `p` still recorded and untouched. */
static void *realloc_sampled(void *p, size_t n, bucket_t *b) {
  size_t offset, old_usable = usable(p, 1);
  bucket_t *old = sampled_unmark(p, &offset);
  char *raw = next.realloc((char *)p - offset, n + SAMPLED_HEADER);
  if (raw == NULL) {
    sampled_mark(p, old, 0); /* the region exists: this cannot fail */
    return NULL;
  }
  note_free(old);
  void *q = mark(raw, SAMPLED_HEADER, b);
  if (q == NULL) { /* cannot record: hand it out as an ordinary block */
    size_t room = next.malloc_usable_size(raw) - SAMPLED_HEADER;
    memmove(raw, raw + SAMPLED_HEADER, old_usable < room ? old_usable : room);
    control_count_drop();
    return raw;
  }
  return q;
}

/* realloc when the old block may be sampled or the new one is to be. */
static SLOW void *realloc_slow(void *p, size_t n) {
  if (boot_owns(p))
    return boot_realloc(p, n);
  hp_thread_t *t = &hp_self;
  int saved = errno, old_sampled = p != NULL && sampled_is(p);
  int64_t rate = !charge(t, n) && n != 0 && n <= SIZE_MAX - 4096
                     ? should_sample(t, n) : 0;
  size_t offset = 0;
  if (old_sampled)
    sampled_peek(p, &offset);
  void *q = NULL;
  if (rate > 0 && old_sampled && offset == SAMPLED_HEADER) {
    t->busy++;
    bucket_t *b = bucket_here(n, rate);
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
    return next.realloc(p, n);
  if (n == 0) { /* the allocator's realloc(p, 0), on the raw block */
    note_free(sampled_unmark(p, &offset));
    return next.realloc((char *)p - offset, 0);
  }
  return move(p, usable(p, 1), next.malloc(n), 0, 1);
}

EXPORT void *realloc(void *p, size_t n) {
  hp_thread_t *t = &hp_self;
  void *q;
  if (likely(!sampled_maybe(p) && try_charge(t, n))) /* else the slow path
                                                        charges (and counts) */
    q = next.realloc(p, n);
  else
    q = realloc_slow(p, n);
  /* A realloc is a free of the old block and an allocation of the new;
   * realloc(p, 0) that returns NULL (glibc) only frees. */
  if (q != NULL) {
    t->mallocs++;
    t->frees += p != NULL;
  } else {
    hp_count_bytes(t, -(uint64_t)n); /* charged above, but nothing came */
    t->frees += n == 0 && p != NULL;
  }
  return q;
}

EXPORT void *reallocarray(void *p, size_t c, size_t n) {
  size_t bytes;
  if (__builtin_mul_overflow(c, n, &bytes)) {
    errno = ENOMEM;
    return NULL;
  }
  return realloc(p, bytes);
}

/* A sampled aligned block, or NULL for the ordinary path. `align` must be a
 * power of two; anything else is left to the allocator to judge. */
static SLOW void *aligned_slow(size_t align, size_t size, size_t alloc) {
  int64_t rate;
  if (align == 0 || (align & (align - 1)) != 0 || align > ((size_t)1 << 40) ||
      (rate = should_sample(&hp_self, size)) == 0)
    return NULL;
  return sampled_alloc(size, alloc, align < SAMPLED_HEADER ? SAMPLED_HEADER : align,
                       RAW_ALIGNED, rate);
}

EXPORT int posix_memalign(void **out, size_t align, size_t n) {
  hp_self.mallocs++;
  void *p;
  if (unlikely(!charge(&hp_self, n)) && align % sizeof(void *) == 0 &&
      (p = aligned_slow(align, n, n)) != NULL) {
    *out = p;
    return 0;
  }
  return next.posix_memalign(out, align, n);
}

EXPORT void *aligned_alloc(size_t align, size_t n) {
  hp_self.mallocs++;
  void *p;
  if (unlikely(!charge(&hp_self, n)) && (p = aligned_slow(align, n, n)) != NULL)
    return p;
  return next.aligned_alloc(align, n);
}

EXPORT void *memalign(size_t align, size_t n) {
  hp_self.mallocs++;
  void *p;
  if (unlikely(!charge(&hp_self, n)) && (p = aligned_slow(align, n, n)) != NULL)
    return p;
  return next.memalign(align, n);
}

static size_t page_size(void) { return (size_t)sysconf(_SC_PAGESIZE); }

EXPORT void *valloc(size_t n) {
  hp_self.mallocs++;
  void *p;
  if (unlikely(!charge(&hp_self, n)) &&
      (p = aligned_slow(page_size(), n, n)) != NULL)
    return p;
  return next.valloc(n);
}

EXPORT void *pvalloc(size_t n) {
  hp_self.mallocs++;
  void *p;
  size_t page = page_size(), rounded = n == 0 ? page : (n + page - 1) & ~(page - 1);
  if (unlikely(!charge(&hp_self, n)) && rounded >= n &&
      (p = aligned_slow(page, n, rounded)) != NULL)
    return p;
  return next.pvalloc(n);
}

static SLOW size_t usable_slow(void *p) {
  if (boot_owns(p))
    return boot_size(p);
  return usable(p, sampled_is(p));
}

EXPORT size_t malloc_usable_size(void *p) {
  if (unlikely(sampled_maybe(p)))
    return usable_slow(p);
  return next.malloc_usable_size(p);
}
