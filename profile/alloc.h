/*
 * alloc — where profile/ gets its working memory: handed in by the caller,
 * never malloc. profile/ lives inside the allocator it profiles; the
 * runtime hands it the next allocator's functions directly, so nothing
 * profile/ allocates is ever seen (or sampled) by the interposer, and tests
 * hand it counting or failing allocators.
 *
 * One function allocates (p NULL), resizes, or frees (new_size 0,
 * returning NULL), always told the block's current size — the shape of
 * Lua's lua_Alloc — so that an allocator that counts or caps needs no
 * header. It returns NULL when it cannot allocate, leaving the block as it
 * was (as realloc does).
 */
#ifndef HEAPPROF_PROFILE_ALLOC_H
#define HEAPPROF_PROFILE_ALLOC_H

#include <stddef.h>

typedef struct prof_alloc {
  void *(*resize)(void *ctx, void *p, size_t old_size, size_t new_size);
  void *ctx;
} prof_alloc_t;

static inline void *prof_malloc(const prof_alloc_t *a, size_t n) {
  return a->resize(a->ctx, NULL, 0, n);
}

static inline void prof_free(const prof_alloc_t *a, void *p, size_t n) {
  if (p != NULL)
    a->resize(a->ctx, p, n, 0);
}

#endif /* HEAPPROF_PROFILE_ALLOC_H */
