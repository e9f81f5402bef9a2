/*
 * alloc_api — the exported malloc family: the fast paths, and nothing else.
 *
 * Each allocating function counts the call, spends one compare and one
 * subtract on the thread's sample countdown (alloc_sampled.h) and
 * tail-calls the next allocator (alloc_next.h); free and the functions that
 * take a block read the word below the pointer — on the cache line the
 * next allocator reads anyway — and compare it with the block's tag
 * (sampled.h). Anything else leaves for an out-of-line *_slow function.
 *
 * The contract every fast path keeps (each function adds its own below):
 * - No lock, no system call, no allocation of heapprof's own: the fast
 *   path writes only the calling thread's initial-exec TLS block (hp_self,
 *   no __tls_get_addr) and reads two hidden globals, the next-allocator
 *   table and the tag key. Threads never share a written cache line.
 * - errno: untouched by heapprof. The caller sees what the next allocator
 *   set (ENOMEM on failure), and the slow paths put errno back after
 *   heapprof's own work.
 * - Results are the next allocator's as glibc documents them; a sampled
 *   block honours the same promises (alignment, zeroing, every
 *   malloc_usable_size byte the program's).
 * - Reentrancy. From inside heapprof (hp_self.busy set: the slow path, the
 *   dump thread, the API): the same fast path, and at the countdown's end
 *   the slow path forwards the call without sampling it. From a signal
 *   handler: heapprof adds no lock a handler could wait on (every lock it
 *   takes on a program thread is taken with busy set, and a handler's
 *   allocation that finds busy set is forwarded); at worst the handler's
 *   allocation interleaves with the interrupted one's countdown update or
 *   gap draw, which moves sampling points, never results. Whether malloc
 *   is safe in a handler at all stays the next allocator's business (POSIX
 *   says it is not). During the dlsym bootstrap: the table's stubs resolve
 *   it on first use, and dlsym's own allocations come back through these
 *   same functions to be served from the boot arena (alloc_next.c).
 *
 * HEAPPROF_EXPORT (default visibility) is defined by CMake; everything
 * else in the library is hidden.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "alloc_next.h"
#include "alloc_sampled.h"
#include "sampled.h"
#include "thread.h"

#ifndef HEAPPROF_EXPORT
#error "HEAPPROF_EXPORT is defined by CMake (target_compile_definitions)"
#endif

#define unlikely(x) __builtin_expect(!!(x), 0)
#define likely(x) __builtin_expect(!!(x), 1)

/*
 * malloc(n): the next malloc's block, or at the countdown's end perhaps a
 * sampled one (n + 16 bytes below, the pointer 16 bytes in: the same
 * alignment). malloc(0) is the next allocator's answer, or a sampled
 * block with usable bytes.
 * Fast path: count, charge, tail-call.
 */
HEAPPROF_EXPORT void *malloc(size_t n) {
  hp_thread_t *t = &hp_self;
  t->mallocs++;
  if (likely(alloc_charge(t, n)))
    return alloc_next.malloc(n);
  return alloc_malloc_slow(n);
}

/*
 * free(p): free(NULL) does nothing; a sampled block's record goes before
 * the next allocator sees its raw block; a bootstrap block is never handed
 * on. errno: the slow path keeps it; on the fast path it is the next
 * free's to keep (glibc's does).
 * Fast path: sampled_maybe() spelt out, so that the count needs no test of
 * its own: a pointer near a page start (NULL among them) takes the rare
 * branch; otherwise one load below `p` and one compare, then tail-call.
 */
HEAPPROF_EXPORT void free(void *p) {
  if (likely(sampled_can_peek((uintptr_t)p))) {
    hp_self.frees++;
    if (likely(!sampled_tagged(p))) {
      alloc_next.free(p);
      return;
    }
  } else if (p == NULL) {
    return;
  } else {
    hp_self.frees++;
  }
  alloc_free_slow(p);
}

/*
 * calloc(c, n): zeroed, c·n bytes. An overflowing product goes to the
 * slow path, which hands the call unchanged to the next calloc (NULL,
 * ENOMEM). Counted as one allocation.
 * Fast path: count, multiply, charge, tail-call.
 */
HEAPPROF_EXPORT void *calloc(size_t c, size_t n) {
  size_t bytes;
  hp_thread_t *t = &hp_self;
  int overflow = __builtin_mul_overflow(c, n, &bytes);
  t->mallocs++;
  if (likely(!overflow && alloc_charge(t, bytes)))
    return alloc_next.calloc(c, n);
  return alloc_calloc_slow(c, n);
}

/*
 * realloc(p, n), glibc's semantics whatever `p` is: realloc(NULL, n) is
 * malloc(n); realloc(p, 0) is the next allocator's (glibc frees `p` and
 * returns NULL); on failure NULL, errno ENOMEM, `p` untouched. A block that
 * moves keeps min(its malloc_usable_size, the new one's) bytes — the
 * slack too, which programs use. Counted as a free of `p` and an
 * allocation, or as a free only when realloc(p, 0) returns NULL.
 * Fast path (ordinary `p`, no sample due): the next realloc, then the
 * counts; it is a call, not a tail call, because the counts depend on the
 * result.
 */
HEAPPROF_EXPORT void *realloc(void *p, size_t n) {
  hp_thread_t *t = &hp_self;
  void *q;
  if (likely(!sampled_maybe(p) && alloc_try_charge(t, n))) /* else the slow
                                                path charges (and counts) */
    q = alloc_next.realloc(p, n);
  else
    q = alloc_realloc_slow(p, n);
  if (q != NULL) {
    t->mallocs++;
    t->frees += p != NULL;
  } else {
    hp_count_bytes(t, -(uint64_t)n); /* charged above, but nothing came */
    t->frees += n == 0 && p != NULL;
  }
  return q;
}

/*
 * reallocarray(p, c, n): realloc(p, c·n), or NULL with ENOMEM and `p`
 * untouched when the product overflows (glibc's). Its own fast path is
 * realloc's.
 */
HEAPPROF_EXPORT void *reallocarray(void *p, size_t c, size_t n) {
  size_t bytes;
  if (__builtin_mul_overflow(c, n, &bytes)) {
    errno = ENOMEM;
    return NULL;
  }
  return realloc(p, bytes);
}

/*
 * posix_memalign(out, align, n): 0 and *out, or an error number with *out
 * untouched. Only a valid alignment (a power of two, a multiple
 * of sizeof(void *)) may be sampled; any other goes to the next
 * posix_memalign, which answers EINVAL.
 * Fast path: count, charge, tail-call.
 */
HEAPPROF_EXPORT int posix_memalign(void **out, size_t align, size_t n) {
  hp_self.mallocs++;
  void *p;
  if (unlikely(!alloc_charge(&hp_self, n)) && align % sizeof(void *) == 0 &&
      (p = alloc_aligned_slow(align, n, n)) != NULL) {
    *out = p;
    return 0;
  }
  return alloc_next.posix_memalign(out, align, n);
}

/*
 * aligned_alloc(align, n), memalign(align, n): a block aligned to `align`.
 * Only a power-of-two alignment may be sampled; the next allocator judges
 * any other, as it would without heapprof.
 * Fast path: count, charge, tail-call.
 */
HEAPPROF_EXPORT void *aligned_alloc(size_t align, size_t n) {
  hp_self.mallocs++;
  void *p;
  if (unlikely(!alloc_charge(&hp_self, n)) &&
      (p = alloc_aligned_slow(align, n, n)) != NULL)
    return p;
  return alloc_next.aligned_alloc(align, n);
}

HEAPPROF_EXPORT void *memalign(size_t align, size_t n) {
  hp_self.mallocs++;
  void *p;
  if (unlikely(!alloc_charge(&hp_self, n)) &&
      (p = alloc_aligned_slow(align, n, n)) != NULL)
    return p;
  return alloc_next.memalign(align, n);
}

static size_t page_size(void) { return (size_t)sysconf(_SC_PAGESIZE); }

/*
 * valloc(n): page-aligned. pvalloc(n): page-aligned, n rounded up to whole
 * pages (pvalloc(0): one page), all of them usable. A sampled pvalloc
 * block is keyed by `n`, as asked, and has the rounded size usable.
 * Fast path: count, charge, tail-call (pvalloc first rounds `n`; both ask
 * sysconf for the page size, which neither locks nor allocates).
 */
HEAPPROF_EXPORT void *valloc(size_t n) {
  hp_self.mallocs++;
  void *p;
  if (unlikely(!alloc_charge(&hp_self, n)) &&
      (p = alloc_aligned_slow(page_size(), n, n)) != NULL)
    return p;
  return alloc_next.valloc(n);
}

HEAPPROF_EXPORT void *pvalloc(size_t n) {
  hp_self.mallocs++;
  void *p;
  size_t page = page_size(), rounded = n == 0 ? page : (n + page - 1) & ~(page - 1);
  if (unlikely(!alloc_charge(&hp_self, n)) && rounded >= n &&
      (p = alloc_aligned_slow(page, n, rounded)) != NULL)
    return p;
  return alloc_next.pvalloc(n);
}

/*
 * malloc_usable_size(p): every byte from `p` to the end of its block, all
 * the program's (glibc documents the slack as usable, and realloc keeps
 * it). A sampled block's is its raw block's less the header offset; a
 * bootstrap block's is its size; malloc_usable_size(NULL) is the next
 * allocator's 0. Not counted.
 * Fast path: the tag test, tail-call.
 */
HEAPPROF_EXPORT size_t malloc_usable_size(void *p) {
  if (unlikely(sampled_maybe(p)))
    return alloc_usable_slow(p);
  return alloc_next.malloc_usable_size(p);
}
