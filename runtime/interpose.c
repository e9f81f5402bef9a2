/*
 * interpose — the malloc family, forwarded to the next allocator.
 *
 * Each entry point calls the next allocator in link order (glibc, or a
 * jemalloc/tcmalloc loaded after us) and then spends one compare and one
 * subtract on the thread's sample countdown; only when an allocation
 * reaches the countdown's end does it leave for the out-of-line slow path,
 * which captures the stack and records the block. free() asks the sampled
 * map whether a block was sampled (two loads, no lock) before anything else.
 *
 * Bootstrap: `next` starts out pointing at stubs that resolve the real
 * functions with dlsym(RTLD_NEXT). dlsym itself may call calloc/malloc;
 * those recursive calls are served from a static buffer whose blocks are
 * recognised by address in free, realloc and malloc_usable_size and never
 * handed to the next allocator.
 *
 * Reentrancy: while hp_self.busy is set (inside the slow path, the dump
 * thread, the API), allocations are forwarded and never sampled, so memory
 * libunwind, protobuf-c, zlib or libdw ask for is invisible to profiles.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../profile/buckets.h"
#include "control.h"
#include "sampled.h"
#include "sampler.h"
#include "stack.h"
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
  memcpy(boot_buf + start - sizeof n, &n, sizeof n);
  return boot_buf + start; /* the buffer is zero and never reused */
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

/* ---- the sampled slow paths ---- */

static _Atomic uint64_t thread_streams;

/* Records `p`, just allocated with `n` bytes, as a sample. */
static void record_alloc(void *p, size_t n) {
  uintptr_t pcs[BUCKET_MAX_FRAMES];
  int nframes = stack_capture(pcs, control_depth);
  bucket_t *b = bucket_get(pcs, (uint32_t)nframes, n);
  if (b == NULL || sampled_add(p, b) != 0) {
    control_count_drop();
    return;
  }
  bucket_note_alloc(b);
}

static uint64_t draw(hp_thread_t *t, int64_t rate) {
  return rate > 0 ? (uint64_t)sampler_gap(&t->rng, rate) : OFF_RECHECK_BYTES;
}

/*
 * Reached when an allocation of `n` bytes ran the countdown out (or the
 * thread has not drawn a gap in the current epoch). Returns `p`.
 */
static SLOW void *sample_slow(hp_thread_t *t, void *p, size_t n) {
  if (t->busy) /* the countdown is left as it was: not ours to spend */
    return p;
  uint32_t epoch = atomic_load_explicit(&control_epoch, memory_order_acquire);
  if (epoch == 0) /* not started: look again at the next allocation */
    return p;
  int saved = errno;
  int64_t rate = atomic_load_explicit(&control_rate, memory_order_relaxed);
  t->busy++;
  if (t->epoch != epoch) {
    if (t->epoch == 0)
      sampler_seed(&t->rng, sampler_mix(control_seed,
                                        atomic_fetch_add(&thread_streams, 1)));
    t->epoch = epoch;
    uint64_t gap = draw(t, rate);
    if (rate == 0 || n < gap) { /* the new gap does not end here */
      t->bytes_left = gap - (rate == 0 ? 0 : n);
      goto out;
    }
  }
  if (rate > 0 && p != NULL)
    record_alloc(p, n);
  t->bytes_left = draw(t, rate);
out:
  t->busy--;
  errno = saved;
  return p;
}

/* Accounts one allocation of `n` bytes at `p` against the countdown. */
static inline void *account(void *p, size_t n) {
  hp_thread_t *t = &hp_self;
  uint64_t left = t->bytes_left;
  if (likely(n < left)) {
    t->bytes_left = left - n;
    return p;
  }
  return sample_slow(t, p, n);
}

static SLOW void free_slow(void *p) {
  int saved = errno;
  bucket_t *b = sampled_take(p);
  if (b != NULL)
    bucket_note_free(b);
  next.free(p);
  errno = saved;
}

/* ---- the exported family ---- */

EXPORT void *malloc(size_t n) { return account(next.malloc(n), n); }

EXPORT void free(void *p) {
  if (unlikely(sampled_maybe(p)))
    free_slow(p);
  else if (likely(!boot_owns(p)))
    next.free(p);
}

EXPORT void *calloc(size_t c, size_t n) {
  void *p = next.calloc(c, n);
  return p != NULL ? account(p, c * n) : p;
}

static SLOW void *boot_realloc(void *p, size_t n) {
  void *q = malloc(n);
  if (q != NULL) {
    size_t old = boot_size(p);
    memcpy(q, p, old < n ? old : n);
  }
  return q;
}

/* Settles the record of sampled block `p` after next.realloc returned `q`:
 * the old block is gone unless realloc failed (then `p` is untouched). */
static SLOW void realloc_settle(void *p, void *q, size_t n, bucket_t *b) {
  int saved = errno;
  if (q == NULL && n != 0 && sampled_add(p, b) == 0) {
    errno = saved;
    return; /* failed: p lives on, recorded again */
  }
  bucket_note_free(b);
  errno = saved;
}

EXPORT void *realloc(void *p, size_t n) {
  if (unlikely(boot_owns(p)))
    return boot_realloc(p, n);
  bucket_t *old = NULL;
  if (unlikely(sampled_maybe(p)))
    old = sampled_take(p);
  void *q = next.realloc(p, n);
  if (unlikely(old != NULL))
    realloc_settle(p, q, n, old);
  return q != NULL ? account(q, n) : q;
}

EXPORT void *reallocarray(void *p, size_t c, size_t n) {
  size_t bytes;
  if (__builtin_mul_overflow(c, n, &bytes)) {
    errno = ENOMEM;
    return NULL;
  }
  return realloc(p, bytes);
}

EXPORT int posix_memalign(void **out, size_t align, size_t n) {
  int rc = next.posix_memalign(out, align, n);
  if (rc == 0)
    account(*out, n);
  return rc;
}

EXPORT void *aligned_alloc(size_t align, size_t n) {
  void *p = next.aligned_alloc(align, n);
  return p != NULL ? account(p, n) : p;
}

EXPORT void *memalign(size_t align, size_t n) {
  void *p = next.memalign(align, n);
  return p != NULL ? account(p, n) : p;
}

EXPORT void *valloc(size_t n) {
  void *p = next.valloc(n);
  return p != NULL ? account(p, n) : p;
}

EXPORT void *pvalloc(size_t n) {
  void *p = next.pvalloc(n);
  return p != NULL ? account(p, n) : p;
}

EXPORT size_t malloc_usable_size(void *p) {
  if (unlikely(boot_owns(p)))
    return boot_size(p);
  return next.malloc_usable_size(p);
}
