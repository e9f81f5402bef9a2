/*
 * alloc_next — the next allocator: the malloc family below heapprof in
 * link order (glibc's, or a jemalloc/tcmalloc loaded after us).
 *
 * The table is always callable. Until the first call resolves it, each
 * entry points at a stub that looks the real functions up with
 * dlsym(RTLD_NEXT) and then calls on; how that works, and where dlsym's own
 * allocations go meanwhile, is alloc_next.c's business alone.
 *
 * Bootstrap blocks (what dlsym asked for while it ran) are never given to
 * the next allocator. They carry the sampled tag but never the map bit, so
 * free, realloc and malloc_usable_size send them to the slow path, which
 * asks alloc_next_boot_owns().
 */
#ifndef HEAPPROF_ALLOC_NEXT_H
#define HEAPPROF_ALLOC_NEXT_H

#include <stddef.h>
#include <stdint.h>

struct alloc_next {
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
};

/* Hidden, and said so here (-fvisibility=hidden covers definitions only):
 * the fast path then reaches an entry with one %rip-relative load, with no
 * GOT entry between. Written only while it is resolved (word stores of
 * the same values, should two threads race), read without locks. */
extern struct alloc_next alloc_next __attribute__((visibility("hidden")));

/* The boot arena, whose blocks are bootstrap blocks: its bounds only, for
 * the test below (its layout is alloc_next.c's). */
#define ALLOC_NEXT_BOOT_BYTES ((size_t)128 * 1024)
extern char alloc_next_boot_buf[] __attribute__((visibility("hidden")));

/* Whether `p` is a bootstrap block (any address may be asked). Inline:
 * free's slow path asks it of every pointer near a page start. */
static inline int alloc_next_boot_owns(const void *p) {
  return (uintptr_t)p - (uintptr_t)alloc_next_boot_buf < ALLOC_NEXT_BOOT_BYTES;
}

/* The size bootstrap block `p` was asked with: all of it is usable. */
size_t alloc_next_boot_size(const void *p);

/* realloc of bootstrap block `p`: a new block from the exported malloc,
 * holding min(n, its size) of its bytes; `p` stays where it is (the
 * bootstrap buffer is never reused). NULL: failed (errno ENOMEM). */
void *alloc_next_boot_realloc(void *p, size_t n);

#endif /* HEAPPROF_ALLOC_NEXT_H */
